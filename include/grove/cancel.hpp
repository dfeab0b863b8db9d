// Cancel scopes, shields and timeouts (move_on_*, fail_*).
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

class cancel_scope;

namespace detail {

// What a scope's run() returns: std::optional<T>, or bool for void.
template <class T>
using maybe_t = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

class scope_runner {
 public:
  virtual void push_cancel() noexcept = 0;

 protected:
  ~scope_runner() = default;
};

template <class T>
class scope_awaiter;

}  // namespace detail

// A region of code that can be cancelled as a unit (Trio's CancelScope).
//
// `co_await scope.run(body)` runs `body` inside the scope. When the scope is
// cancelled — by cancel(), or by its deadline passing on the loop's clock —
// every suspension point inside it is cancelled from then on (level-
// triggered), the body's frames are destroyed, and run() completes with an
// empty result (std::nullopt, or false for task<void>); cancelled_caught()
// then reports true. A cancellation that comes from *outside* the scope
// passes through it unchanged and the awaiting task unwinds too. When several
// nested scopes are cancelled at once, the outermost of them catches (a
// shielded scope catches its own cancellation: the outer one never reached
// its body; the awaiting task meets it at its next suspension point).
//
// A shielded scope blocks cancellation from outside (forced shutdown
// excepted); its own cancel() and deadline still work.
//
// Not copyable or movable; run() may be used once. Destroying a scope whose
// body is still running is a bug.
class cancel_scope {
 public:
  cancel_scope() noexcept;
  explicit cancel_scope(time_point deadline) noexcept;
  cancel_scope(const cancel_scope&) = delete;
  cancel_scope& operator=(const cancel_scope&) = delete;
  ~cancel_scope();

  // Cancels the scope. Idempotent: cancelling twice delivers once. A scope
  // cancelled before run() cancels its body at the body's first suspension.
  void cancel() noexcept;
  bool cancel_called() const noexcept { return cancel_called_; }

  // True when this scope's cancellation stopped here (run() returned empty).
  bool cancelled_caught() const noexcept { return caught_; }

  // time_point::max() when there is none. Setting a deadline in the past
  // cancels the scope (at the body's next suspension if it is running).
  time_point deadline() const noexcept { return deadline_; }
  void set_deadline(time_point t) noexcept;

  bool shield() const noexcept { return node_.shield; }
  // Changing the shield while the body runs takes effect at once: lowering
  // it under an already cancelled outer scope cancels the body.
  void set_shield(bool on) noexcept;

  // An awaitable: `co_await scope.run(task)` gives maybe_t<T>; an exception
  // from the body propagates unchanged. Suspends until the body is done.
  template <class T>
  [[nodiscard]] detail::scope_awaiter<T> run(task<T> body) noexcept;
  // The same for any other awaitable (an rvalue: shield(t), to_thread(fn),
  // sem.acquire(), ev.wait(), sleep(d), ...), awaited in a task of its own.
  template <detail::non_task_awaitable A>
  [[nodiscard]] auto run(A body) {
    return run(detail::as_task(std::move(body)));
  }

 private:
  template <class T>
  friend class detail::scope_awaiter;
  void arm(detail::cancel_node* parent);
  void disarm() noexcept;
  void on_deadline() noexcept { cancel(); }

  detail::cancel_node node_;
  detail::timer_node timer_;
  detail::proxy_frame deadline_proxy_;
  time_point deadline_ = time_point::max();
  detail::scope_runner* active_ = nullptr;
  bool cancel_called_ = false;
  bool caught_ = false;
};

namespace detail {

template <class T>
class scope_awaiter final : public scope_runner {
 public:
  scope_awaiter(cancel_scope& s, task<T> body) noexcept : scope_(&s), body_(std::move(body)) {}
  scope_awaiter(scope_awaiter&& o) noexcept : scope_(o.scope_), body_(std::move(o.body_)) {}
  ~scope_awaiter() {
    if (scope_->active_ == this) scope_->disarm();
  }

  void await_set_parent(promise_base& p) noexcept { parent_node_ = p.node; }
  void await_set_resumer(frame_parent& r) noexcept { resumer_ = &r; }
  bool await_ready() const noexcept { return false; }
  // A shielded scope starts even in a cancelled context; others do not.
  bool await_early_cancel() const noexcept { return !scope_->node_.shield_holds(); }

  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
    outer_ = h;
    scope_->active_ = this;
    scope_->arm(parent_node_);
    body_.handle().promise().attach(&scope_->node_, resumer_);  // its end: must_resume below
    return body_.handle();
  }

  // Cancellation from outside: a shield holds (the body finishes first).
  // An empty body_ means push_cancel already posted the resumption: false.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (scope_->node_.shield_holds()) return false;
    if (!body_ || !body_.handle().promise().cancel()) return false;
    scope_->disarm();
    return true;
  }

  bool await_must_resume() noexcept {
    scope_->disarm();
    bool cancelled = !body_ || body_.handle().promise().cancelled();
    if (!cancelled) return true;
    // Outermost wins: when the enclosing context is cancelled too, that
    // cancellation also reached the body, so it goes on out. Unless this
    // scope is shielded (and not forced): then only its own cancel did.
    bool outer_reached = effectively_cancelled(parent_node_) && !scope_->node_.shield_holds();
    if (scope_->cancel_called_ && !outer_reached) {
      scope_->caught_ = true;
      return true;
    }
    return false;
  }

  maybe_t<T> await_resume() {
    if (scope_->caught_) return maybe_t<T>{};
    if constexpr (std::is_void_v<T>) {
      body_.handle().promise().take();
      return true;
    } else {
      return maybe_t<T>(body_.handle().promise().take());
    }
  }

  // The scope was cancelled (or its shield lowered) while the body runs.
  void push_cancel() noexcept override {
    if (!body_ || !body_.handle().promise().cancel()) return;
    // Cancelled synchronously: the body's frame goes to the reaper (its
    // destructors run, in reverse order, before the outermost cancel call
    // returns) and the awaiting frame resumes from the loop, never from
    // inside whoever called cancel().
    destroy_later(body_.release());
    resume_.target = outer_;
    event_loop::current()->post(resume_);
  }

  void await_describe(std::string& out, int depth) const {
    indent(out, depth);
    out += scope_->node_.shield ? "shielded cancel_scope\n" : "cancel_scope\n";
    if (body_) describe_frame(body_.handle().promise(), out, depth + 1);
  }

 private:
  cancel_scope* scope_;
  task<T> body_;
  std::coroutine_handle<> outer_;
  cancel_node* parent_node_ = nullptr;
  frame_parent* resumer_ = nullptr;
  ready_node resume_;
};

}  // namespace detail

inline cancel_scope::cancel_scope() noexcept
    : deadline_proxy_(detail::make_proxy<cancel_scope, &cancel_scope::on_deadline>(this)) {
  timer_.fire().target = deadline_proxy_.handle();
}

inline cancel_scope::cancel_scope(time_point deadline) noexcept : cancel_scope() {
  deadline_ = deadline;
}

inline cancel_scope::~cancel_scope() {
  disarm();
}

inline void cancel_scope::cancel() noexcept {
  if (cancel_called_) return;
  detail::cancel_call call;  // the cancelled frames go before we return
  cancel_called_ = true;
  node_.cancelled = true;
  if (timer_.armed()) event_loop::current()->remove_timer(timer_);
  if (active_ != nullptr) active_->push_cancel();
}

inline void cancel_scope::set_deadline(time_point t) noexcept {
  deadline_ = t;
  if (active_ == nullptr || cancel_called_) return;
  event_loop* loop = event_loop::current();
  if (t == time_point::max())
    loop->remove_timer(timer_);  // no deadline
  else if (t <= loop->now())
    cancel();
  else
    loop->add_timer(timer_, t);  // re-arms
}

inline void cancel_scope::set_shield(bool on) noexcept {
  node_.shield = on;
  if (!on && active_ != nullptr && effectively_cancelled(&node_)) {
    detail::cancel_call call;
    active_->push_cancel();
  }
}

inline void cancel_scope::arm(detail::cancel_node* parent) {
  node_.parent = parent;
  if (cancel_called_ || deadline_ == time_point::max()) return;
  event_loop* loop = event_loop::current();
  if (deadline_ <= loop->now()) {
    cancel_called_ = true;  // a past deadline fires at the first suspension
    node_.cancelled = true;
  } else {
    loop->add_timer(timer_, deadline_);
  }
}

inline void cancel_scope::disarm() noexcept {
  active_ = nullptr;
  if (timer_.armed()) event_loop::current()->remove_timer(timer_);
}

template <class T>
detail::scope_awaiter<T> cancel_scope::run(task<T> body) noexcept {
  return detail::scope_awaiter<T>(*this, std::move(body));
}

namespace detail {

// shield(t): an awaitable (movable until awaited) whose awaiter owns the
// shielded scope, so that it starts even when the awaiting task is already
// cancelled.
template <class T>
class shielded {
 public:
  explicit shielded(task<T> t) noexcept : body_(std::move(t)) {}

  class awaiter {
   public:
    explicit awaiter(task<T> body) noexcept : inner_(scope_, std::move(body)) {
      scope_.set_shield(true);
    }
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    void await_set_parent(promise_base& p) noexcept { inner_.await_set_parent(p); }
    void await_set_resumer(frame_parent& r) noexcept { inner_.await_set_resumer(r); }
    bool await_ready() const noexcept { return false; }
    bool await_early_cancel() const noexcept { return inner_.await_early_cancel(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) {
      return inner_.await_suspend(h);
    }
    bool await_cancel(std::coroutine_handle<> h) noexcept { return inner_.await_cancel(h); }
    bool await_must_resume() noexcept { return inner_.await_must_resume(); }
    T await_resume() {
      if constexpr (std::is_void_v<T>)
        inner_.await_resume();
      else
        return std::move(*inner_.await_resume());
    }
    void await_describe(std::string& out, int depth) const { inner_.await_describe(out, depth); }

   private:
    cancel_scope scope_;  // outlives inner_, which refers to it
    scope_awaiter<T> inner_;
  };

  // Guaranteed copy elision builds the awaiter in place: it never moves.
  awaiter operator co_await() && noexcept { return awaiter(std::move(body_)); }

 private:
  task<T> body_;
};

}  // namespace detail

// Runs `t` shielded from cancellation coming from outside (graceful
// shutdown included; forced shutdown excepted). co_await it: it starts even
// when the awaiting task is already cancelled, and gives t's value or
// exception. The awaiting task notices a pending cancellation at its next
// suspension point after the shield.
template <class T>
[[nodiscard]] detail::shielded<T> shield(task<T> t) noexcept {
  return detail::shielded<T>(std::move(t));
}

// shield for any other awaitable (an rvalue), awaited in a task of its own.
template <detail::non_task_awaitable A>
[[nodiscard]] auto shield(A a) {
  return shield(detail::as_task(std::move(a)));
}

// Runs `body` with a deadline at `t`. Gives std::optional<T> (bool for
// task<void>): empty/false only when *this* deadline cancelled the body; an
// outer cancellation passes through; the body's exceptions propagate.
template <class T>
task<detail::maybe_t<T>> move_on_at(time_point t, task<T> body) {
  cancel_scope scope(t);
  co_return co_await scope.run(std::move(body));
}

// move_on_at(now() + d): the deadline is taken when move_on_after is called.
template <class T>
task<detail::maybe_t<T>> move_on_after(duration d, task<T> body) {
  return move_on_at(add_saturating(now(), d), std::move(body));
}

// Runs `body` with a deadline at `t`; throws timeout_error when *this*
// deadline cancelled it. An outer cancellation passes through unchanged
// (no timeout_error); the body's own exceptions propagate.
template <class T>
task<T> fail_at(time_point t, task<T> body) {
  cancel_scope scope(t);
  auto r = co_await scope.run(std::move(body));
  if (scope.cancelled_caught()) throw timeout_error();
  if constexpr (!std::is_void_v<T>) co_return std::move(*r);
}

// fail_at(now() + d): the deadline is taken when fail_after is called.
template <class T>
task<T> fail_after(duration d, task<T> body) {
  return fail_at(add_saturating(now(), d), std::move(body));
}

// The timeouts for any other awaitable (an rvalue: shield(t), to_thread(fn),
// sem.acquire(), ev.wait(), ...), awaited in a task of its own: the same
// results and the same cancellation as the task forms.
template <detail::non_task_awaitable A>
auto move_on_at(time_point t, A body) {
  return move_on_at(t, detail::as_task(std::move(body)));
}
template <detail::non_task_awaitable A>
auto move_on_after(duration d, A body) {
  return move_on_after(d, detail::as_task(std::move(body)));
}
template <detail::non_task_awaitable A>
auto fail_at(time_point t, A body) {
  return fail_at(t, detail::as_task(std::move(body)));
}
template <detail::non_task_awaitable A>
auto fail_after(duration d, A body) {
  return fail_after(d, detail::as_task(std::move(body)));
}

}  // namespace grove
