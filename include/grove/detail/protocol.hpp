// The cancellation protocol between a suspended task and what it awaits.
//
// Every co_await inside a grove::task goes through promise::await_transform,
// which wraps the awaiter in an `adapter`. The adapter speaks standard C++
// to the compiler and this protocol to the awaiter. An awaiter may provide:
//
//   bool await_early_cancel() noexcept
//       Called instead of await_ready() when the frame is already cancelled
//       as it reaches this co_await. true: the operation was not started and
//       the frame unwinds now. false: start it anyway (a shielded scope does
//       this). Default: true — nothing is started in a cancelled context.
//
//   bool await_cancel(std::coroutine_handle<> h) noexcept
//       Called while suspended when cancellation reaches the frame. true:
//       the operation is cancelled synchronously: `h` will never be resumed
//       and no child frame it runs will end through its resumer; the frame
//       may be destroyed. false: `h` will be resumed later (or a child's end
//       will reach the resumer), and await_must_resume() says how it ended.
//       An awaiter without await_cancel cannot be cancelled while suspended
//       (the task notices the cancellation at its next suspension point).
//
//       The posted-resumption rule. Once the awaiter has scheduled the
//       resumption of `h` (posted it to the ready queue, or handed it to
//       another thread), the answer is false, unless the awaiter takes that
//       resumption back completely first: unlinks it from the queue and
//       passes on anything it held (a semaphore waiter passes its permit on).
//       It must never answer true while a resumption of `h` is pending.
//       An awaiter in that state is "scheduled" (DESIGN §1.2): it resumes,
//       and the task meets the cancellation at its next suspension point.
//
//       Repeats and re-entry. await_cancel may be called again (a graceful
//       cancel followed by a forced one; two scopes cancelled in one step)
//       and may be re-entered while it runs: cancelling a child runs code
//       (a to_thread stop callback) that may call cancel() on any scope or
//       group, which may reach this awaiter again. So: decide from the
//       awaiter's own state, re-check that state after each child it
//       cancelled, and never destroy a frame here: hand it to the reaper
//       (detail/reaper.hpp), which destroys it once the delivery is over.
//       Once it answered true, the adapter never calls it again. The audit of
//       every awaiter against these rules is the table in docs/architecture.md.
//
//   bool await_must_resume() noexcept
//       Called when `h` is resumed. true: the operation produced a result and
//       await_resume() will be called. false: cancellation is confirmed; the
//       frame unwinds without calling await_resume(), so nothing is lost
//       (an awaiter that holds something, e.g. a semaphore permit, must have
//       passed it on before answering false). Default: true.
//
//   void await_set_parent(promise_base&) noexcept
//       Tells the awaiter which frame awaits it (tasks inherit its context).
//
//   void await_set_resumer(frame_parent&) noexcept
//       For awaiters that run a child frame: make it the child's parent, so
//       the child's end transfers straight to the awaiting frame (or unwinds
//       it) by symmetric transfer, without growing the stack.
//
// "Unwinding" is never an exception: the frame is marked cancelled and its
// awaiter is resumed, which asks *its* awaiter the same question, up to the
// boundary that owns the chain (a cancel scope, a task group, the loop);
// the boundary destroys the top frame and C++ destroys the rest, innermost
// first, running every destructor in reverse order. catch (...) never sees it.
#pragma once

#include <concepts>
#include <coroutine>
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

// Describes a frame's current wait (or that it is running) into `out`.
void describe_frame(const promise_base& p, std::string& out, int depth);
std::string demangle(const char* name);
void indent(std::string& out, int depth);

template <class A>
concept has_member_co_await = requires(A&& a) { std::forward<A>(a).operator co_await(); };
template <class A>
concept has_free_co_await = requires(A&& a) { operator co_await(std::forward<A>(a)); };

template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (has_member_co_await<A>)
    return std::forward<A>(a).operator co_await();
  else if constexpr (has_free_co_await<A>)
    return operator co_await(std::forward<A>(a));
  else
    return std::forward<A>(a);
}

template <class A>
using awaiter_t = decltype(get_awaiter(std::declval<A>()));

template <class Aw>
concept cancellable_awaiter = requires(Aw& a, std::coroutine_handle<> h) {
  { a.await_cancel(h) } noexcept -> std::same_as<bool>;
};

template <class Aw>
bool early_cancel(Aw& a) noexcept {
  if constexpr (requires {
                  { a.await_early_cancel() } -> std::same_as<bool>;
                })
    return a.await_early_cancel();
  else
    return true;
}

template <class Aw>
bool must_resume(Aw& a) noexcept {
  if constexpr (requires {
                  { a.await_must_resume() } -> std::same_as<bool>;
                })
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
