// event: a resettable flag that tasks of one loop can wait for.
//
// Single-threaded (call it on the loop thread); allocates nothing per wait:
// waiters sit in an intrusive list whose nodes live in the awaiting frames.
// Cancelling a suspended waiter is synchronous and O(1). set() never resumes
// a waiter inline: it posts every waiter to the loop's ready queue.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <grove/detail/wait_list.hpp>
#include <grove/event_loop.hpp>
#include <string>

namespace grove {

class event;

namespace detail {

// A task suspended in event::wait(). Its hook sits in the event's list while
// it waits and in the ready queue once set() woke it. Cancellation in either
// state unlinks it and is confirmed at once: a wait holds nothing, so there
// is nothing to pass on.
class event_waiter : public waiter_node {
 public:
  explicit event_waiter(event& e) noexcept : ev_(&e) {}
  // Movable until awaited (so that a combinator can take it by value).
  event_waiter(event_waiter&& o) noexcept : waiter_node(), ev_(o.ev_) {
    assert(o.state_ == state::idle && "grove::event wait moved while awaited");
  }
  event_waiter& operator=(event_waiter&&) = delete;
  ~event_waiter() { abandon(); }

  inline bool await_ready() const noexcept;
  inline void await_suspend(std::coroutine_handle<> h) noexcept;
  bool await_cancel(std::coroutine_handle<>) noexcept {
    abandon();
    return true;
  }
  void await_resume() noexcept { state_ = state::idle; }
  inline void await_describe(std::string& out, int depth) const;
  // Its event is being destroyed under it (a bug, reported).
  void orphan() noexcept {
    ev_ = nullptr;
    state_ = state::idle;
  }

 private:
  friend class grove::event;
  enum class state : unsigned char { idle, waiting, woken };

  inline void abandon() noexcept;

  event* ev_;
  state state_ = state::idle;
};

}  // namespace detail

// A one-shot (resettable) flag tasks can wait for.
//
// set() wakes every task waiting at that moment, in the order they started
// waiting, through the loop's ready queue; later waits do not suspend until
// clear(). Not copyable or movable. Use it from the loop thread only.
// Destroying an event while tasks wait on it is a bug (asserted).
class event {
 public:
  event() noexcept = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  // Destroying an event that tasks wait on is a bug: reported on stderr with
  // the task tree; aborts unless NDEBUG is defined. With NDEBUG the waiters
  // are orphaned: they stay suspended (a cancellation still unwinds them)
  // and touch nothing of the event.
  ~event() {
    if (!waiters_.empty()) [[unlikely]] {
      detail::report_leaked_waiters("grove::event", waiters_.size());
#ifndef NDEBUG
      std::abort();
#endif
      while (detail::event_waiter* w = waiters_.pop_front()) w->orphan();
    }
  }

  // Sets the flag and posts every current waiter to the ready queue (none is
  // resumed inline). Idempotent: setting a set event does nothing.
  void set() noexcept {
    if (set_) return;
    set_ = true;
    while (detail::event_waiter* w = waiters_.pop_front()) {
      w->state_ = detail::event_waiter::state::woken;
      waiters_.wake(*w);
    }
  }

  bool is_set() const noexcept { return set_; }

  // Resets the flag, so that later wait()s suspend again. Tasks already woken
  // by an earlier set() still resume.
  void clear() noexcept { set_ = false; }

  // `co_await e.wait();` — does not suspend when the event is set (it is
  // still a cancellation point: a cancelled task unwinds there). Otherwise
  // suspends until set(). Cancellation removes the waiter at once, also when
  // set() already woke it but it has not resumed yet; it unwinds and is
  // never resumed. Throws nothing.
  [[nodiscard]] detail::event_waiter wait() noexcept { return detail::event_waiter(*this); }

  // Tasks suspended in wait() that set() has not woken yet.
  std::size_t waiters() const noexcept { return waiters_.size(); }

 private:
  friend class detail::event_waiter;
  detail::wait_list<detail::event_waiter> waiters_;
  bool set_ = false;
};

namespace detail {

bool event_waiter::await_ready() const noexcept {
  return ev_->set_;
}

void event_waiter::await_suspend(std::coroutine_handle<> h) noexcept {
  state_ = state::waiting;
  ev_->waiters_.push_back(*this, h);
}

void event_waiter::abandon() noexcept {
  if (state_ == state::waiting)
    ev_->waiters_.remove(*this);
  else
    unlink();  // from the ready queue once woken (a no-op when idle)
  state_ = state::idle;
}

void event_waiter::await_describe(std::string& out, int depth) const {
  indent(out, depth);
  out += ev_ == nullptr           ? "event wait (orphaned: the event was destroyed)\n"
         : state_ == state::woken ? "event wait (set, about to resume)\n"
                                  : "event wait (waiting)\n";
}

}  // namespace detail
}  // namespace grove
