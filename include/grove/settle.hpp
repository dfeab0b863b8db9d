// Awaiting work that must report whatever happens: settle(t) gives a task's
// outcome instead of rethrowing or unwinding, cancellation_requested() asks
// without unwinding, always_start(t) starts a task in a cancelled context.
// run_tasks is built on these; so can any runner that owes a report.
#pragma once

#include <coroutine>
#include <grove/detail/cancel_node.hpp>
#include <grove/detail/reaper.hpp>
#include <grove/event_loop.hpp>
#include <grove/outcome.hpp>
#include <grove/task.hpp>
#include <string>
#include <utility>

namespace grove {
namespace detail {

template <class T>
class settle_awaiter {
 public:
  explicit settle_awaiter(task<T> t) noexcept : task_(std::move(t)) {}
  settle_awaiter(settle_awaiter&& o) noexcept : task_(std::move(o.task_)) {}
  settle_awaiter& operator=(settle_awaiter&&) = delete;

  void await_set_parent(promise_base& p) noexcept { parent_node_ = p.node; }
  void await_set_resumer(frame_parent& r) noexcept { resumer_ = &r; }
  bool await_early_cancel() const noexcept { return false; }  // starts, to report
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept {
    task_.handle().promise().attach(parent_node_, resumer_);
    resume_.target = h;
    return task_.handle();
  }
  // The task's chain is cancelled; if that is synchronous, its frame goes to
  // the reaper (its destructors run before the cancel call returns) and the
  // resumption is posted here, so the answer is always false: the outcome
  // (cancelled) is delivered.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (!task_ || !task_.handle().promise().cancel()) return false;
    destroy_later(task_.release());
    event_loop::current()->post(resume_);
    return false;
  }
  outcome<T> await_resume() noexcept { return outcome_of(task_); }
  void await_describe(std::string& out, int depth) const {
    indent(out, depth);
    out += "settle\n";
    if (task_) describe_frame(task_.handle().promise(), out, depth + 1);
  }

 private:
  task<T> task_;
  cancel_node* parent_node_ = nullptr;
  frame_parent* resumer_ = nullptr;
  ready_node resume_;
};

struct cancellation_probe {
  cancel_node* node = nullptr;
  void await_set_parent(promise_base& p) noexcept { node = p.node; }
  bool await_early_cancel() const noexcept { return false; }  // not a cancellation point
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  bool await_resume() const noexcept { return effectively_cancelled(node); }
};

}  // namespace detail

// `outcome<T> o = co_await settle(t);` runs `t` in the awaiting task's
// context and gives how it ended (value, error or cancelled) instead of
// rethrowing its error or unwinding the awaiting task. It starts even when
// the awaiting task is already cancelled (then `t` meets the cancellation at
// its first suspension point), and it always resumes the awaiting task with
// the outcome: a pending cancellation is met at the task's next suspension
// point. Cancelling the awaiting task cancels `t`. Throws nothing.
template <class T>
[[nodiscard]] detail::settle_awaiter<T> settle(task<T> t) noexcept {
  return detail::settle_awaiter<T>(std::move(t));
}

// `bool c = co_await cancellation_requested();` tells whether the awaiting
// task's context is cancelled, without suspending and without unwinding (it
// is not a cancellation point). For loops that must stop cleanly between
// units of work they owe a report for.
[[nodiscard]] inline detail::cancellation_probe cancellation_requested() noexcept {
  return {};
}

// Marks `t` to start even when the task that awaits it is already cancelled
// (ordinary tasks never start then). For work that owes its caller an
// answer whatever happens, such as run_tasks' report: inside, it meets the
// cancellation at its first ordinary suspension point, so it awaits what it
// must through settle() or shield().
template <class T>
[[nodiscard]] task<T> always_start(task<T> t) noexcept {
  if (t) t.handle().promise().starts_when_cancelled = true;
  return t;
}

}  // namespace grove
