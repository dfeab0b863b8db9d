// to_thread: run blocking code on a worker thread without blocking the loop.
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <grove/detail/protocol.hpp>
#include <grove/detail/thread_pool.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

namespace grove {
namespace detail {

// fn(std::stop_token) is preferred when both forms would compile.
template <class F>
inline constexpr bool takes_stop_token = std::is_invocable_v<F&&, std::stop_token>;

template <class F>
struct thread_fn_result {
  using type = std::invoke_result_t<F&&>;
};
template <class F>
  requires takes_stop_token<F>
struct thread_fn_result<F> {
  using type = std::invoke_result_t<F&&, std::stop_token>;
};

// Where fn's value waits for the loop thread: a value, a reference, or nothing.
template <class R>
class thread_result {
 public:
  template <class G>
  void set(G&& produce) {
    value_.emplace(std::forward<G>(produce)());
  }
  R take() { return std::move(*value_); }

 private:
  std::optional<R> value_;
};
template <class R>
  requires std::is_reference_v<R>
class thread_result<R> {
 public:
  template <class G>
  void set(G&& produce) {
    R&& r = std::forward<G>(produce)();
    ptr_ = std::addressof(r);
  }
  R take() noexcept { return static_cast<R>(*ptr_); }

 private:
  std::remove_reference_t<R>* ptr_ = nullptr;
};
template <>
class thread_result<void> {
 public:
  template <class G>
  void set(G&& produce) {
    std::forward<G>(produce)();
  }
  void take() noexcept {}
};

// The awaiter to_thread returns. It holds fn, the job record the pool queues
// and the result slot, all inside the awaiting frame.
template <class F>
class thread_awaiter final : private thread_job {
 public:
  using result_type = typename thread_fn_result<F>::type;

  template <class G>
  explicit thread_awaiter(G&& fn) : fn_(std::forward<G>(fn)) {
    invoke_ = &run_on_worker;
  }
  // Movable until awaited (so that a combinator can take it by value).
  thread_awaiter(thread_awaiter&& o) noexcept(std::is_nothrow_move_constructible_v<F>)
      : thread_job(), fn_(std::move(o.fn_)) {
    invoke_ = &run_on_worker;
  }
  thread_awaiter& operator=(thread_awaiter&&) = delete;

  bool await_ready() const noexcept { return false; }
  // Nothing starts in a cancelled context: fn never runs (the default).
  bool await_early_cancel() const noexcept { return true; }
  bool await_suspend(std::coroutine_handle<> h) noexcept { return start(h, takes_stop_token<F>); }
  bool await_cancel(std::coroutine_handle<>) noexcept { return cancel(); }
  bool await_must_resume() const noexcept { return must_resume(); }

  result_type await_resume() {
    if (error_) std::rethrow_exception(error_);
    return result_.take();
  }

  void await_describe(std::string& out, int depth) const { describe(out, depth); }

 private:
  // On the worker thread. fn is called once, as an rvalue.
  static void run_on_worker(thread_job& job) noexcept {
    auto& self = static_cast<thread_awaiter&>(job);
    try {
      if constexpr (takes_stop_token<F>)
        self.result_.set(
            [&]() -> result_type { return std::invoke(std::move(self.fn_), self.token()); });
      else
        self.result_.set([&]() -> result_type { return std::invoke(std::move(self.fn_)); });
    } catch (...) {
      self.error_ = std::current_exception();
    }
  }

  F fn_;
  thread_result<result_type> result_;
};

}  // namespace detail

// Runs the blocking callable `fn` on a worker thread and gives its result.
//
// `fn` is called once as `fn(std::stop_token)`, or as `fn()` when it takes
// no argument. It is moved (or copied, from an lvalue) into the awaitable,
// which lives in the awaiting frame, so a call allocates nothing (a
// std::stop_source's shared state, one small allocation, is created only for
// a fn that takes a token). fn itself is destroyed with the awaitable, on the
// loop thread, after the task resumed.
//
// co_await suspends the task until fn has returned on a worker thread; then
// the task resumes on its loop thread with fn's value, or with fn's
// exception rethrown unchanged (the same exception object). Workers come from
// a small process-wide pool, started on demand (up to
// max(2, hardware_concurrency()) threads; further calls queue in FIFO order).
// Workers run with every signal blocked, so signals always reach the loop
// thread. While fn runs, the loop counts it as pending external work: a
// virtual-clock loop waits for it (its time stands still) instead of jumping
// ahead or reporting a deadlock.
//
// Cancellation. A task cancelled before it reaches the co_await never starts
// fn. A call still queued when the task is cancelled is withdrawn at once and
// fn never runs. Once fn runs, it cannot be interrupted: cancellation
// requests stop on fn's std::stop_token and the task *waits for fn to
// return* — nothing fn touches can be destroyed under it. When it returns,
// its value is discarded (destroyed) and the task unwinds as cancelled, even
// if fn ignored the token. If fn threw, its exception propagates instead:
// errors win over cancellation, as in grove::finally, so a failure is never
// lost (a fn that wants "stopped" to count as cancellation returns normally).
// Stop callbacks that fn registers run on the thread that requests stop, the
// loop thread, during the cancellation: keep them short.
//
// Throws: fn's exception; std::system_error when no worker thread exists and
// none can be created. Precondition: awaited from a task on a running loop.
template <class F>
  requires std::constructible_from<std::decay_t<F>, F> &&
           (std::is_invocable_v<std::decay_t<F> &&, std::stop_token> ||
            std::is_invocable_v<std::decay_t<F> &&>)
[[nodiscard]] detail::thread_awaiter<std::decay_t<F>> to_thread(F&& fn) {
  return detail::thread_awaiter<std::decay_t<F>>(std::forward<F>(fn));
}

}  // namespace grove
