// Waiting on the loop's clock.
#pragma once

#include <coroutine>
#include <string>

#include <grove/event_loop.hpp>

namespace grove {
namespace detail {

class sleep_awaiter {
 public:
  explicit sleep_awaiter(time_point deadline) noexcept : deadline_(deadline), relative_(false) {}
  explicit sleep_awaiter(duration d) noexcept : delay_(d), relative_(true) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    event_loop* loop = event_loop::current();
    if (relative_) deadline_ = loop->now() + delay_;
    timer_.fire.target = h;
    loop->add_timer(timer_, deadline_);
  }
  // While the timer is pending: synchronous, the timer leaves the heap.
  // Once it fired the task is scheduled, and DESIGN §1.2 applies: it runs
  // on to its next suspension point, where the cancellation takes effect.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (!timer_.armed()) return false;
    timer_.loop->remove_timer(timer_);
    return true;
  }
  void await_resume() const noexcept {}
  void await_describe(std::string& out, int depth) const;

 private:
  time_point deadline_{};
  duration delay_{};
  bool relative_;
  timer_node timer_;
};

class checkpoint_awaiter {
 public:
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    node_.target = h;
    event_loop::current()->post(node_);
  }
  // A task parked here is scheduled: it resumes and meets the
  // cancellation at its next suspension point (DESIGN §1.2).
  bool await_cancel(std::coroutine_handle<>) noexcept { return false; }
  void await_resume() const noexcept {}

 private:
  ready_node node_;
};

}  // namespace detail

// Suspends for `d` on the loop's clock (measured from when it suspends).
// Cancellation: removes the timer at once; the task unwinds.
[[nodiscard]] inline detail::sleep_awaiter sleep(duration d) noexcept { return detail::sleep_awaiter(d); }

// Suspends until `t` on the loop's clock; a time in the past still yields
// once. Cancellation: removes the timer at once; the task unwinds.
[[nodiscard]] inline detail::sleep_awaiter sleep_until(time_point t) noexcept {
  return detail::sleep_awaiter(t);
}

// A cancellation point that also yields: the task goes to the back of the
// ready queue and resumes in the loop's next batch, after I/O and signals
// were polled. If the task is cancelled it unwinds here instead.
[[nodiscard]] inline detail::checkpoint_awaiter checkpoint() noexcept { return {}; }

}  // namespace grove
