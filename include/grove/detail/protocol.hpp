// Internals of the awaiter protocol (the protocol itself, and what every
// hook means, is in grove/awaitable.hpp): the frame_parent and awaiting_base
// interfaces a task's adapter implements, and the hooks' defaults.
#pragma once

#include <concepts>
#include <coroutine>
#include <grove/awaitable.hpp>
#include <grove/detail/cancel_node.hpp>
#include <grove/detail/proxy_frame.hpp>
#include <string>
#include <type_traits>
#include <utility>

namespace grove::detail {

struct promise_base;

enum class task_state : unsigned char { running, value, error, cancelled };

// Told when a frame ends (value, error, or cancelled). Returns the frame to
// run next by symmetric transfer: the awaiting frame, a cleanup, or
// std::noop_coroutine() to go back to the loop.
class frame_parent {
 public:
  virtual std::coroutine_handle<> child_ended() noexcept = 0;

 protected:
  ~frame_parent() = default;
};

// What a suspended frame is waiting on, seen from the cancellation side.
class awaiting_base : public frame_parent {
 public:
  virtual bool cancel() noexcept = 0;
  // One line per level into `out`, for deadlock and teardown reports.
  virtual void describe(std::string& out, int depth) const = 0;

 protected:
  ~awaiting_base() = default;
};

// Describes a frame into `out`: one line with its role ("task", "child",
// "body", ...), name, state and how long it has been suspended, then what it
// waits on, one level deeper (src/core/debug.cpp).
void describe_frame(const promise_base& p, std::string& out, int depth, const char* role = "task",
                    bool started = true);
std::string demangle(const char* name);
void indent(std::string& out, int depth);

// The hooks with their defaults (check_awaiter_hooks has vetted them).
template <class Aw>
bool early_cancel(Aw& a) noexcept {
  if constexpr (valid_early_cancel<Aw>)
    return a.await_early_cancel();
  else
    return true;
}

template <class Aw>
bool must_resume(Aw& a) noexcept {
  if constexpr (valid_must_resume<Aw>)
    return a.await_must_resume();
  else
    return true;
}

// Maps await_suspend's three legal return types onto symmetric transfer.
template <class Aw>
std::coroutine_handle<> suspend_into(Aw& a, std::coroutine_handle<> given,
                                     std::coroutine_handle<> self) {
  using R = decltype(a.await_suspend(given));
  if constexpr (std::is_void_v<R>) {
    a.await_suspend(given);
    return std::noop_coroutine();
  } else if constexpr (std::same_as<R, bool>) {
    return a.await_suspend(given) ? std::noop_coroutine() : self;
  } else {
    return a.await_suspend(given);
  }
}

}  // namespace grove::detail
