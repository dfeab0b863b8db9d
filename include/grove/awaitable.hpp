// grove/awaitable.hpp: the awaiter protocol. Read this first to write an
// awaitable that grove can cancel.
//
// Every co_await inside a grove::task goes through promise::await_transform,
// which wraps the awaiter in an `adapter`. The adapter speaks standard C++
// to the compiler (await_ready / await_suspend / await_resume) and this
// protocol to the awaiter. Every hook is optional; an awaiter may provide:
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
//   void await_set_parent(detail::promise_base&) noexcept
//       Tells the awaiter which frame awaits it (tasks inherit its context).
//
//   void await_set_resumer(detail::frame_parent&) noexcept
//       For awaiters that run a child frame: make it the child's parent, so
//       the child's end transfers straight to the awaiting frame (or unwinds
//       it) by symmetric transfer, without growing the stack.
//
//   void await_describe(std::string& out, int depth) const
//       Appends what it waits on (one line per level, indented by depth) to
//       deadlock and teardown reports. Default: the awaiter's type name.
//
// Enforced: a hook with the wrong signature, the wrong return type or a
// missing noexcept, and a name that looks like a misspelt hook
// (await_cancelled, awaitCancel, ...), is a compile error naming the hook
// (check_awaiter_hooks below). Without that, grove would silently use the
// default, and a cancellation bug would hide until production.
//
// "Unwinding" is never an exception: the frame is marked cancelled and its
// awaiter is resumed, which asks *its* awaiter the same question, up to the
// boundary that owns the chain (a cancel scope, a task group, the loop);
// the boundary destroys the top frame and C++ destroys the rest, innermost
// first, running every destructor in reverse order. catch (...) never sees it.
#pragma once

#include <concepts>
#include <coroutine>
#include <string>
#include <type_traits>
#include <utility>

namespace grove {
namespace detail {

struct promise_base;
class frame_parent;

template <class A>
concept has_member_co_await = requires(A&& a) { std::forward<A>(a).operator co_await(); };
template <class A>
concept has_free_co_await = requires(A&& a) { operator co_await(std::forward<A>(a)); };

// What `co_await a` awaits: a's operator co_await, or a itself.
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

// A hook is "declared" when its name resolves to a member (any signature) or
// when some call to it compiles; it is "valid" when it has the protocol's
// signature, return type and noexcept.
#define GROVE_DETAIL_DECLARES(hook, ...) \
  (requires { &Aw::hook; } || requires(Aw& a) { a.hook(__VA_ARGS__); })

template <class Aw>
concept valid_early_cancel = requires(Aw& a) {
  { a.await_early_cancel() } noexcept -> std::same_as<bool>;
};
template <class Aw>
concept valid_cancel = requires(Aw& a, std::coroutine_handle<> h) {
  { a.await_cancel(h) } noexcept -> std::same_as<bool>;
};
template <class Aw>
concept valid_must_resume = requires(Aw& a) {
  { a.await_must_resume() } noexcept -> std::same_as<bool>;
};
template <class Aw>
concept valid_set_parent = requires(Aw& a, promise_base& p) {
  { a.await_set_parent(p) } noexcept -> std::same_as<void>;
};
template <class Aw>
concept valid_set_resumer = requires(Aw& a, frame_parent& r) {
  { a.await_set_resumer(r) } noexcept -> std::same_as<void>;
};
template <class Aw>
concept valid_describe = requires(const Aw& a, std::string& out, int depth) {
  { a.await_describe(out, depth) } -> std::same_as<void>;
};

#define GROVE_DETAIL_NOT_A_MISSPELLING(name, hook)            \
  static_assert(                                              \
      !requires { &Aw::name; }, "grove: `" #name              \
                                "` looks like a misspelling " \
                                "of the awaiter hook `" #hook \
                                "`, which grove "             \
                                "would otherwise silently replace by its default")

}  // namespace detail

// Checks every protocol hook that the awaiter type `A` declares (see the top
// of this file). Each failure is a static_assert whose message names the
// hook. Every co_await in a grove::task runs this check.
template <class A>
consteval bool check_awaiter_hooks() {
  using Aw = std::remove_cvref_t<A>;
  static_assert(!GROVE_DETAIL_DECLARES(await_early_cancel) || detail::valid_early_cancel<Aw>,
                "grove: await_early_cancel must be declared `bool await_early_cancel() noexcept`");
  static_assert(
      !GROVE_DETAIL_DECLARES(await_cancel, std::coroutine_handle<>{}) || detail::valid_cancel<Aw>,
      "grove: await_cancel must be declared "
      "`bool await_cancel(std::coroutine_handle<>) noexcept`");
  static_assert(!GROVE_DETAIL_DECLARES(await_must_resume) || detail::valid_must_resume<Aw>,
                "grove: await_must_resume must be declared `bool await_must_resume() noexcept`");
  static_assert(!GROVE_DETAIL_DECLARES(await_set_parent) || detail::valid_set_parent<Aw>,
                "grove: await_set_parent must be declared "
                "`void await_set_parent(grove::detail::promise_base&) noexcept`");
  static_assert(!GROVE_DETAIL_DECLARES(await_set_resumer) || detail::valid_set_resumer<Aw>,
                "grove: await_set_resumer must be declared "
                "`void await_set_resumer(grove::detail::frame_parent&) noexcept`");
  static_assert(!GROVE_DETAIL_DECLARES(await_describe) || detail::valid_describe<Aw>,
                "grove: await_describe must be declared "
                "`void await_describe(std::string& out, int depth) const`");
  GROVE_DETAIL_NOT_A_MISSPELLING(await_cancelled, await_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_canceled, await_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_cancle, await_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_on_cancel, await_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(awaitCancel, await_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_early_cancelled, await_early_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_early_canceled, await_early_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_cancel_early, await_early_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(awaitEarlyCancel, await_early_cancel);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_must_resumed, await_must_resume);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_must_resumes, await_must_resume);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_mustresume, await_must_resume);
  GROVE_DETAIL_NOT_A_MISSPELLING(awaitMustResume, await_must_resume);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_set_parents, await_set_parent);
  GROVE_DETAIL_NOT_A_MISSPELLING(awaitSetParent, await_set_parent);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_set_resume, await_set_resumer);
  GROVE_DETAIL_NOT_A_MISSPELLING(awaitSetResumer, await_set_resumer);
  GROVE_DETAIL_NOT_A_MISSPELLING(await_description, await_describe);
  GROVE_DETAIL_NOT_A_MISSPELLING(awaitDescribe, await_describe);
  return true;
}

#undef GROVE_DETAIL_DECLARES
#undef GROVE_DETAIL_NOT_A_MISSPELLING

// An awaiter: what co_await works with (await_ready, await_suspend,
// await_resume), with its protocol hooks checked.
template <class Aw>
concept awaiter = requires(std::remove_cvref_t<Aw>& a) {
  { a.await_ready() } -> std::convertible_to<bool>;
  a.await_resume();
} && check_awaiter_hooks<Aw>();

// Anything `co_await` accepts in a grove task: an awaiter, or a type whose
// operator co_await gives one (grove::task, shield(t), ...).
template <class A>
concept awaitable = awaiter<detail::awaiter_t<A>>;

// An awaiter that can be cancelled while suspended.
template <class Aw>
concept cancellable_awaiter = awaiter<Aw> && detail::valid_cancel<std::remove_cvref_t<Aw>>;

// What `co_await a` gives.
template <awaitable A>
using await_result_t = decltype(std::declval<detail::awaiter_t<A>&>().await_resume());

}  // namespace grove
