// task<T>: grove's coroutine type.
#pragma once

#include <cassert>
#include <coroutine>
#include <exception>
#include <grove/detail/frame_pool.hpp>
#include <grove/detail/protocol.hpp>
#include <grove/detail/reaper.hpp>
#include <grove/detail/trace.hpp>
#include <grove/outcome.hpp>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace grove {

template <class T = void>
class task;

namespace detail {

struct promise_base {
  // Frames come from the per-thread pool (sized delete is what makes that cheap).
  static void* operator new(std::size_t n) { return frame_pool::allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_pool::deallocate(p, n); }

  cancel_node* node = nullptr;          // cancellation context
  frame_parent* parent = nullptr;       // told when this frame ends
  awaiting_base* waiting_on = nullptr;  // set while suspended cancellably
  std::exception_ptr error;
  task_state state = task_state::running;
  // Start even when the awaiting frame is already cancelled (always_start in
  // settle.hpp: run_tasks must report every job). It costs no space: it
  // sits in what would be padding after `state`.
  bool starts_when_cancelled = false;
  // The co_await in progress met a cancelled frame and was not started:
  // its adapter's await_ready sets it, its await_suspend reads it at once.
  // A frame has one co_await in progress at a time, so the flag lives here,
  // in padding, rather than in every adapter (where it cost 8 bytes).
  bool early_cancelled = false;
  // The frame has an entry in the debug table (a name, an id, a time):
  // destroying it drops the entry (detail/trace.hpp). In padding too.
  bool traced = false;
  // A runner attached it: it counts in tl_attached until it is destroyed,
  // so a loop can tell when one of its tasks outlives it. In padding too.
  bool attached = false;

  promise_base() noexcept = default;
  promise_base(const promise_base&) = delete;
  promise_base& operator=(const promise_base&) = delete;
  ~promise_base() {
    if (attached) --tl_attached;
    if (traced) [[unlikely]]
      forget_frame(*this);
  }

  // Cancellation reaches this frame. true: it is now cancelled synchronously
  // (nothing will resume it; it may be destroyed). false: it is running, ready
  // to run, or waiting on something that finishes first; the cancellation is
  // noticed by the level-triggered check at its next suspension point.
  // While the cancellation is delivered down the chain, nothing is destroyed
  // (see detail/reaper.hpp): a destructor that cancels again cannot pull a
  // frame out from under the walk.
  bool cancel() noexcept {
    if (waiting_on == nullptr) {
      trace(*this, frame_event::cancel_requested);
      return false;
    }
    reap_guard delivering;
    bool now = waiting_on->cancel();
    trace(*this, now ? frame_event::cancel_delivered : frame_event::cancel_requested);
    return now;
  }

  // Marks the frame cancelled; returns what to run next (its parent decides).
  std::coroutine_handle<> finish_cancelled() noexcept {
    state = task_state::cancelled;
    waiting_on = nullptr;
    trace(*this, frame_event::unwound);
    return ended();
  }

  // The frame has ended; returns what to run next.
  std::coroutine_handle<> ended() noexcept {
    return parent != nullptr ? parent->child_ended() : std::noop_coroutine();
  }

  bool cancelled() const noexcept { return state == task_state::cancelled; }

  // Makes this frame a child: it runs in `context` and tells `end` when it
  // ends. Every runner (an await, a scope, a group, gather, finally) does
  // this before the frame first runs.
  void attach(cancel_node* context, frame_parent* end) noexcept {
    node = context;
    parent = end;
    if (!attached) ++tl_attached;
    attached = true;
    trace(*this, frame_event::attached);
  }

  void unhandled_exception() noexcept {
    error = std::current_exception();
    state = task_state::error;
  }
};

// Whether an adapter must stand between the awaiter and the frame when the
// awaiter resumes it: only when the answer may be "unwind" (a cancellable
// awaiter with await_must_resume). Otherwise the awaiter is handed the
// frame's own handle and the adapter carries no proxy: 16 bytes less in
// every frame suspended on it (a sleep, a checkpoint, a semaphore wait).
template <class Aw>
inline constexpr bool needs_resume_proxy = valid_cancel<Aw> && valid_must_resume<Aw>;

struct no_proxy {};

template <class Owner, class Aw>
using resume_proxy_for = std::conditional_t<needs_resume_proxy<std::remove_cvref_t<Aw>>,
                                            embedded_proxy<Owner>, no_proxy>;

// Wraps every co_await in a task: the cancellation check at the suspension
// point, and (for awaiters that may confirm a cancellation when they
// resume) the proxy that decides between resuming and unwinding.
template <class Aw, class P>
class adapter final : public awaiting_base, public resume_proxy_for<adapter<Aw, P>, Aw> {
  static_assert(check_awaiter_hooks<Aw>());
  static constexpr bool proxied = needs_resume_proxy<std::remove_cvref_t<Aw>>;

 public:
  template <class A>
  adapter(A&& a, P& self) : inner_(get_awaiter(std::forward<A>(a))), self_(&self) {
    if constexpr (requires { inner_.await_set_parent(self); }) inner_.await_set_parent(self);
    if constexpr (requires(frame_parent& r) { inner_.await_set_resumer(r); })
      inner_.await_set_resumer(*this);
  }
  adapter(const adapter&) = delete;
  adapter& operator=(const adapter&) = delete;

  bool await_ready() {
    self_->early_cancelled = effectively_cancelled(self_->node) && early_cancel(inner_);
    return !self_->early_cancelled && inner_.await_ready();
  }

  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
    if (self_->early_cancelled) return self_->finish_cancelled();
    if (self_->traced || tl_trace != nullptr) [[unlikely]]
      note_suspended(*self_);
    if constexpr (valid_cancel<std::remove_cvref_t<Aw>>) {
      self_->waiting_on = this;
      std::coroutine_handle<> next;
      try {
        next = suspend_into(inner_, resume_handle(), h);
      } catch (...) {
        self_->waiting_on = nullptr;  // the exception surfaces at the co_await
        throw;
      }
      if (next == h) self_->waiting_on = nullptr;  // completed without suspending
      return next;
    } else {
      return suspend_into(inner_, h, h);
    }
  }

  decltype(auto) await_resume() {
    // Without a proxy the awaiter resumed the frame itself: the wait is over.
    if constexpr (!proxied) self_->waiting_on = nullptr;
    trace(*self_, frame_event::resumed);
    return static_cast<Aw&&>(inner_).await_resume();
  }

  bool cancel() noexcept override {
    if constexpr (valid_cancel<std::remove_cvref_t<Aw>>) {
      if (!inner_.await_cancel(resume_handle())) return false;
      self_->state = task_state::cancelled;
      self_->waiting_on = nullptr;
      return true;
    } else {
      return false;
    }
  }

  void describe(std::string& out, int depth) const override {
    if constexpr (requires { inner_.await_describe(out, depth); }) {
      inner_.await_describe(out, depth);
    } else {
      indent(out, depth);
      out += demangle(typeid(std::remove_cvref_t<Aw>).name());
      out += '\n';
    }
  }

  // A child frame run by the inner awaiter ended: continue here, or unwind.
  std::coroutine_handle<> child_ended() noexcept override { return next(); }

  // The awaiter resumed the proxy (from the loop): resume the frame, or
  // unwind it. Nothing may touch `this` after that: an unwinding frame's
  // owner destroys it (and this adapter) before the call returns.
  void proxy_resumed(proxy_tag) noexcept { next().resume(); }

 private:
  // What the awaiter resumes: the proxy, or the frame itself.
  std::coroutine_handle<> resume_handle() noexcept {
    if constexpr (proxied)
      return this->proxy_handle();
    else
      return std::coroutine_handle<P>::from_promise(*self_);
  }

  std::coroutine_handle<> next() noexcept {
    self_->waiting_on = nullptr;
    if (must_resume(inner_)) return std::coroutine_handle<P>::from_promise(*self_);
    return self_->finish_cancelled();
  }

  Aw inner_;
  P* self_;
};

template <class T>
struct promise;

struct final_awaiter {
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    trace(h.promise(), frame_event::finished);
    return h.promise().ended();
  }
  void await_resume() const noexcept {}
};

template <class T>
struct promise_storage : promise_base {
  std::optional<T> value;
  template <class U>
    requires std::convertible_to<U&&, T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value.emplace(std::forward<U>(v));
    state = task_state::value;
  }
  // For `co_await task`: the value, or the error rethrown.
  T take() {
    if (state == task_state::error) std::rethrow_exception(error);
    return std::move(*value);
  }
  // For runners that report: how the frame ended (a value whose move throws
  // becomes that error).
  outcome<T> take_outcome() noexcept {
    if (state == task_state::value) {
      try {
        return outcome<T>::from_value(std::move(*value));
      } catch (...) {
        return outcome<T>::from_error(std::current_exception());
      }
    }
    return state == task_state::error ? outcome<T>::from_error(error) : outcome<T>{};
  }
};

template <>
struct promise_storage<void> : promise_base {
  void return_void() noexcept { state = task_state::value; }
  void take() {
    if (state == task_state::error) std::rethrow_exception(error);
  }
  outcome<void> take_outcome() noexcept {
    if (state == task_state::value) return outcome<void>::from_value();
    return state == task_state::error ? outcome<void>::from_error(error) : outcome<void>{};
  }
};

template <class T>
struct promise final : promise_storage<T> {
  task<T> get_return_object() noexcept;
  // No hook here: an awaiter holding the promise would add 8 bytes to
  // every frame; the debug hooks learn of a start from the frame's first
  // own event (detail/trace.hpp).
  std::suspend_always initial_suspend() const noexcept { return {}; }
  final_awaiter final_suspend() const noexcept { return {}; }

  template <class A>
  auto await_transform(A&& a) {
    return adapter<awaiter_t<A>, promise>(std::forward<A>(a), *this);
  }
};

// co_await on a task: the child runs in the awaiting frame's context;
// cancelling the awaiter cancels the child.
template <class T>
class task_awaiter {
 public:
  explicit task_awaiter(std::coroutine_handle<promise<T>> h) noexcept : child_(h) {}

  void await_set_parent(promise_base& parent) noexcept { parent_node_ = parent.node; }
  void await_set_resumer(frame_parent& r) noexcept { resumer_ = &r; }
  bool await_ready() const noexcept { return false; }
  // The child never starts, unless it must report even when cancelled.
  bool await_early_cancel() const noexcept { return !child_.promise().starts_when_cancelled; }

  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
    assert(child_ && "co_await on an empty or moved-from grove::task");
    child_.promise().attach(parent_node_, resumer_);
    return child_;
  }
  bool await_cancel(std::coroutine_handle<>) noexcept { return child_.promise().cancel(); }
  bool await_must_resume() const noexcept { return !child_.promise().cancelled(); }
  T await_resume() { return child_.promise().take(); }

  void await_describe(std::string& out, int depth) const {
    describe_frame(child_.promise(), out, depth);
  }

 private:
  std::coroutine_handle<promise<T>> child_;
  cancel_node* parent_node_ = nullptr;
  frame_parent* resumer_ = nullptr;
};

}  // namespace detail

// A lazily started coroutine producing T. It does nothing until awaited (or
// handed to a runner); `co_await t` runs it in the awaiting task's
// cancellation context and returns its value or rethrows its exception
// unchanged. If the awaiting task is cancelled, the child's suspended frame
// is destroyed (its locals' destructors run, innermost first) and the
// awaiting task unwinds too; the cancellation is never an exception.
// Move-only; destroying a task that was never run destroys its frame.
template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::promise<T>;
  using value_type = T;

  task() noexcept = default;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  ~task() {
    if (h_) h_.destroy();
  }

  explicit operator bool() const noexcept { return static_cast<bool>(h_); }

  detail::task_awaiter<T> operator co_await() && noexcept { return detail::task_awaiter<T>(h_); }
  detail::task_awaiter<T> operator co_await() & noexcept { return detail::task_awaiter<T>(h_); }

  // For runners (scopes, groups, the loop): the frame and its promise.
  std::coroutine_handle<promise_type> handle() const noexcept { return h_; }
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

 private:
  std::coroutine_handle<promise_type> h_;
};

template <class T>
task<T> detail::promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}

namespace detail {

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

// What the combinators accept besides a task<T>: any other awaitable
// (shield(t), to_thread(fn), sem.acquire(), ev.wait(), sleep(d), ...),
// passed as an rvalue; it is moved into a task of its own.
template <class A>
concept non_task_awaitable = awaitable<A> && !is_task<std::remove_cvref_t<A>>::value;

// Awaits `a` inside a task of its own: one frame, and the awaitable keeps
// its own cancellation behaviour (the adapter speaks the protocol to it).
template <non_task_awaitable A>
task<await_result_t<A>> as_task(A a) {
  static_assert(!std::is_reference_v<await_result_t<A>>,
                "grove: a combinator cannot carry an awaitable whose result is a reference; "
                "wrap it in a task<T> that returns a value");
  co_return co_await std::move(a);
}

// How a finished task ended; a released task (its frame went after a
// synchronous cancel) reads as cancelled.
template <class T>
outcome<T> outcome_of(task<T>& t) noexcept {
  return t ? t.handle().promise().take_outcome() : outcome<T>{};
}

// A task stays as it is; any other awaitable goes through as_task.
template <class A>
auto to_task(A a) {
  if constexpr (is_task<A>::value)
    return a;
  else
    return as_task(std::move(a));
}

}  // namespace detail

}  // namespace grove
