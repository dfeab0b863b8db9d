// Waiting on the loop's clock.
#pragma once

#include <cassert>
#include <coroutine>
#include <grove/event_loop.hpp>
#include <string>

namespace grove {
namespace detail {

void describe_sleep(std::string& out, int depth, time_point deadline);

// Relative: the deadline is `delay` after the task suspends; otherwise
// absolute. Kept small: one exists per sleeping task.
template <bool Relative>
class sleep_awaiter {
 public:
  explicit sleep_awaiter(time_point deadline) noexcept
    requires(!Relative)
  {
    timer_.deadline = deadline;
  }
  explicit sleep_awaiter(duration delay) noexcept
    requires Relative
  {
    timer_.deadline = time_point(delay);
  }
  // Movable until awaited (so that a combinator can take it by value).
  sleep_awaiter(sleep_awaiter&& o) noexcept {
    assert(!o.timer_.armed() && "grove::sleep moved while awaited");
    timer_.deadline = o.timer_.deadline;
  }
  sleep_awaiter& operator=(sleep_awaiter&&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    event_loop* loop = event_loop::current();
    time_point deadline = timer_.deadline;
    if constexpr (Relative)
      deadline = add_saturating(loop->now(), timer_.deadline.time_since_epoch());
    timer_.fire().target = h;
    loop->add_timer(timer_, deadline);
  }
  // While the timer is pending: synchronous, the timer leaves the wheel.
  // Once it fired the task is scheduled, and DESIGN §1.2 applies: it runs
  // on to its next suspension point, where the cancellation takes effect.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (!timer_.armed()) return false;
    event_loop::current()->remove_timer(timer_);
    return true;
  }
  void await_resume() const noexcept {}
  void await_describe(std::string& out, int depth) const {
    describe_sleep(out, depth, timer_.deadline);
  }

 private:
  timer_node timer_;
};

class checkpoint_awaiter {
 public:
  checkpoint_awaiter() noexcept = default;
  checkpoint_awaiter(checkpoint_awaiter&&) noexcept {}  // movable until awaited
  checkpoint_awaiter& operator=(checkpoint_awaiter&&) = delete;
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
[[nodiscard]] inline detail::sleep_awaiter<true> sleep(duration d) noexcept {
  return detail::sleep_awaiter<true>(d);
}

// Suspends until `t` on the loop's clock; a time in the past still yields
// once. Cancellation: removes the timer at once; the task unwinds.
[[nodiscard]] inline detail::sleep_awaiter<false> sleep_until(time_point t) noexcept {
  return detail::sleep_awaiter<false>(t);
}

// A cancellation point that also yields: the task goes to the back of the
// ready queue and resumes in the loop's next batch, after I/O and signals
// were polled. If the task is cancelled it unwinds here instead.
[[nodiscard]] inline detail::checkpoint_awaiter checkpoint() noexcept {
  return {};
}

}  // namespace grove
