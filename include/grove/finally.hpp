// finally(body, cleanup): async cleanup that always runs.
#pragma once

#include <coroutine>
#include <exception>
#include <grove/detail/reaper.hpp>
#include <grove/errors.hpp>
#include <grove/event_loop.hpp>
#include <grove/task.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace grove {
namespace detail {

template <class T, class Cleanup>
class finally_awaiter {
 public:
  finally_awaiter(task<T> body, Cleanup cleanup)
      : body_(std::move(body)), make_cleanup_(std::move(cleanup)) {}
  finally_awaiter(const finally_awaiter&) = delete;
  finally_awaiter& operator=(const finally_awaiter&) = delete;

  void await_set_parent(promise_base& p) noexcept { parent_node_ = p.node; }
  void await_set_resumer(frame_parent& r) noexcept { resumer_ = &r; }
  bool await_ready() const noexcept { return false; }

  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
    body_.handle().promise().attach(parent_node_, &body_end_);
    return body_.handle();
  }

  // body: cancel it; if that is synchronous, its frame goes to the reaper
  // and the cleanup starts from the loop (after the reaper ran, so the
  // body's destructors come first). Either way the cleanup's end resumes
  // the awaiting frame, so the answer is false. pending_cleanup: the start
  // is posted: false. cleanup: shielded; only a forced shutdown reaches it.
  bool await_cancel(std::coroutine_handle<> h) noexcept {
    if (phase_ == phase::body) {
      if (body_.handle().promise().cancel()) {
        phase_ = phase::pending_cleanup;  // body_outcome_ stays "cancelled"
        destroy_later(body_.release());
        start_proxy_ = make_proxy<finally_awaiter, &finally_awaiter::start_from_loop>(this);
        start_.target = start_proxy_.handle();
        event_loop::current()->post(start_);
      }
      return false;
    }
    if (phase_ == phase::cleanup && loop_forced() && cleanup_.handle().promise().cancel()) {
      destroy_later(cleanup_.release());
      decide(task_state::cancelled);
      if (!result_error_) return true;
      // Errors win even over a forced shutdown: resume the frame to throw.
      resume_.target = h;
      event_loop::current()->post(resume_);
    }
    return false;
  }

  bool await_must_resume() const noexcept { return !result_cancelled_; }

  T await_resume() {
    if (result_error_) std::rethrow_exception(result_error_);
    if constexpr (!std::is_void_v<T>) return std::move(body_outcome_).value();
  }

  void await_describe(std::string& out, int depth) const {
    indent(out, depth);
    out += phase_ == phase::body              ? "finally (body)\n"
           : phase_ == phase::pending_cleanup ? "finally (cleanup about to start)\n"
                                              : "finally (running cleanup, shielded)\n";
    if (phase_ == phase::body) describe_frame(body_.handle().promise(), out, depth + 1, "body");
    if (phase_ == phase::cleanup)
      describe_frame(cleanup_.handle().promise(), out, depth + 1, "cleanup");
  }

 private:
  enum class phase : unsigned char { body, pending_cleanup, cleanup, done };

  // The body's and the cleanup's frames report their end here.
  struct body_end final : frame_parent {
    finally_awaiter* self;
    explicit body_end(finally_awaiter* s) noexcept : self(s) {}
    std::coroutine_handle<> child_ended() noexcept override { return self->on_body_done(); }
  };
  struct cleanup_end final : frame_parent {
    finally_awaiter* self;
    explicit cleanup_end(finally_awaiter* s) noexcept : self(s) {}
    std::coroutine_handle<> child_ended() noexcept override {
      auto& c = self->cleanup_.handle().promise();
      self->cleanup_error_ = c.error;
      return self->finish(c.state);
    }
  };

  void start_from_loop() noexcept { start_cleanup().resume(); }

  // The body's frame ended (value, error, or unwound after a cancellation).
  // Its result is kept and the frame destroyed here, so its destructors run
  // before the cleanup starts; a cancel() from one of them is delivered,
  // and what it cancels is reaped later (reap_guard), never under us.
  std::coroutine_handle<> on_body_done() noexcept {
    body_outcome_ = body_.handle().promise().take_outcome();
    phase_ = phase::pending_cleanup;
    {
      reap_guard ending;
      body_ = task<T>();
    }
    return start_cleanup();
  }

  // Returns what to run next: the cleanup's frame, or (if creating it threw)
  // the awaiting frame.
  std::coroutine_handle<> start_cleanup() noexcept {
    try {
      reap_guard user_code;  // make_cleanup_ may cancel; it cannot reap us
      cleanup_ = make_cleanup_();
    } catch (...) {
      cleanup_error_ = std::current_exception();
      return finish(task_state::error);
    }
    phase_ = phase::cleanup;
    shield_node_.parent = parent_node_;
    shield_node_.shield = true;
    cleanup_.handle().promise().attach(&shield_node_, &cleanup_end_);
    trace(cleanup_.handle().promise(), frame_event::cleanup_started);
    return cleanup_.handle();
  }

  // Precedence: errors win over cancellation; a body error and a cleanup
  // error are both reported, as an exception_group {body, cleanup}.
  // Returns the awaiting frame to run next (or its unwinding).
  std::coroutine_handle<> finish(task_state cleanup_state) noexcept {
    decide(cleanup_state);
    return resumer_->child_ended();
  }

  void decide(task_state cleanup_state) noexcept {
    phase_ = phase::done;
    std::exception_ptr body_error = body_outcome_.error();
    if (body_error && cleanup_error_)
      result_error_ = std::make_exception_ptr(exception_group({body_error, cleanup_error_}));
    else
      result_error_ = body_error ? body_error : cleanup_error_;
    bool cancelled = body_outcome_.cancelled() || cleanup_state == task_state::cancelled;
    result_cancelled_ = cancelled && !result_error_;
  }

  task<T> body_;
  Cleanup make_cleanup_;
  task<void> cleanup_;
  cancel_node shield_node_;
  cancel_node* parent_node_ = nullptr;
  frame_parent* resumer_ = nullptr;
  body_end body_end_{this};
  cleanup_end cleanup_end_{this};
  proxy_frame start_proxy_;
  ready_node start_;
  ready_node resume_;        // forced shutdown with an error to deliver
  outcome<T> body_outcome_;  // cancelled until the body ends otherwise
  std::exception_ptr cleanup_error_;
  std::exception_ptr result_error_;
  phase phase_ = phase::body;
  bool result_cancelled_ = false;
};

}  // namespace detail

// Runs `body`, then `cleanup()` whatever the body's outcome — value, error,
// or cancellation — and gives the body's result.
//
// The cleanup runs shielded: after a cancellation its own co_awaits proceed
// normally (a cleanup may sleep, flush, or talk to a server), and only a
// forced shutdown cancels it. The body's frame (and its destructors) is gone
// before the cleanup starts.
//
// Result: body value + cleanup ok → the value. A cleanup error is thrown;
// a body error is rethrown unchanged; both together throw an
// exception_group {body error, cleanup error}. A cancelled body stays
// cancelled after the cleanup, unless the cleanup threw (errors win).
// A finally that is cancelled before it starts runs neither.
template <class T, class Cleanup>
  requires std::is_invocable_r_v<task<void>, Cleanup&>
task<T> finally(task<T> body, Cleanup cleanup) {
  co_return co_await detail::finally_awaiter<T, Cleanup>(std::move(body), std::move(cleanup));
}

// finally with any other awaitable as the body (an rvalue), awaited in a
// task of its own.
template <detail::non_task_awaitable A, class Cleanup>
  requires std::is_invocable_r_v<task<void>, Cleanup&>
auto finally(A body, Cleanup cleanup) {
  return finally(detail::as_task(std::move(body)), std::move(cleanup));
}

}  // namespace grove
