// semaphore: a FIFO counting semaphore for the tasks of one loop.
//
// Single-threaded (call it on the loop thread); allocates nothing per wait:
// waiters sit in an intrusive list whose nodes live in the awaiting frames.
// Cancelling a suspended waiter is synchronous and O(1). A woken waiter is
// never resumed inline: release() posts it to the loop's ready queue, so the
// caller keeps running until its own next suspension point.
#pragma once

#include <cassert>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <grove/detail/wait_list.hpp>
#include <grove/event_loop.hpp>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace grove {

class semaphore;

// Thrown by release() on a bounded semaphore (semaphore::bounded) when the
// release would raise the count above the initial count: some code released
// a permit it never acquired. The semaphore is left unchanged.
class semaphore_overflow_error : public std::logic_error {
 public:
  semaphore_overflow_error()
      : std::logic_error("grove::semaphore released more times than acquired") {}
};

namespace detail {

// A task suspended in semaphore::acquire() or lock(): the co_await temporary
// in the awaiting frame. Its one hook sits in the semaphore's waiter list
// while it waits, and in the loop's ready queue once release() has handed it
// a permit — never in both. States:
//
//   idle     not started, or finished without keeping anything (cancelled)
//   waiting  in the semaphore's list; holds nothing
//   handed   owns a permit, posted to the ready queue, not yet resumed
//   owner    resumed (or took a free permit at once): the permit now belongs
//            to the code after the co_await (or to its guard)
//
// Cancellation while `handed` passes the permit on right there (to the next
// waiter, or back to the count), unlinks the wake-up from the ready queue and
// confirms the cancellation synchronously (await_cancel returns true). The
// alternative — return false, let the wake-up run and answer false from
// await_must_resume — would hold the permit for one more loop step, keep the
// dead frame alive until then and make cancellation asynchronous; returning
// true keeps "cancelling a wait is synchronous and O(1)" and there is exactly
// one place where a cancelled permit moves, so it is never lost or counted twice.
class sem_waiter : public waiter_node {
 public:
  explicit sem_waiter(semaphore& s) noexcept : sem_(&s) {}
  // Movable until awaited (so that a combinator can take it by value).
  sem_waiter(sem_waiter&& o) noexcept : waiter_node(), sem_(o.sem_) {
    assert(o.state_ == state::idle && "grove::semaphore wait moved while awaited");
  }
  sem_waiter& operator=(sem_waiter&&) = delete;
  // A frame destroyed while it waits (without the cancellation protocol,
  // e.g. at teardown after a deadlock) still leaves the semaphore consistent.
  ~sem_waiter() { abandon(); }

  inline bool await_ready() noexcept;
  inline void await_suspend(std::coroutine_handle<> h) noexcept;
  bool await_cancel(std::coroutine_handle<>) noexcept {
    abandon();
    return true;
  }
  inline void await_describe(std::string& out, int depth) const;
  // Its semaphore is being destroyed under it (a bug, reported): it waits
  // for nothing now, and touches nothing of the semaphore.
  void orphan() noexcept {
    sem_ = nullptr;
    state_ = state::idle;
  }

 protected:
  // Called by await_resume: the permit moves to the caller.
  inline void take_ownership() noexcept;
  semaphore& sem() const noexcept { return *sem_; }

 private:
  friend class grove::semaphore;
  enum class state : unsigned char { idle, waiting, handed, owner };

  inline void abandon() noexcept;

  semaphore* sem_;
  state state_ = state::idle;
};

class acquire_awaiter : public sem_waiter {
 public:
  using sem_waiter::sem_waiter;
  void await_resume() noexcept { take_ownership(); }
};

class lock_awaiter;

}  // namespace detail

// A counting semaphore for tasks of one loop, strictly FIFO.
//
// Permits are handed over, never grabbed: release() gives its permit directly
// to the oldest waiter, so the count stays 0 while anyone waits and a task
// that arrives later (or calls try_acquire()) cannot barge ahead of the queue.
// A waiter cancelled while it waits leaves the queue in O(1); a waiter
// cancelled after a permit was handed to it but before it resumed passes that
// permit on to the next waiter (or back to the count) — permits are never
// lost or duplicated.
//
// Two forms:
//   semaphore s(n);                      // unbounded: release() always adds a permit
//   auto s = semaphore::bounded(n);      // release() beyond n outstanding
//                                        // acquisitions throws semaphore_overflow_error
//
// Not copyable or movable. Use it from the loop thread only. Destroying a
// semaphore while tasks wait on it is a bug (asserted).
class semaphore {
 public:
  class guard;

  // A semaphore with `initial` free permits; release() may raise the count
  // without limit.
  explicit semaphore(std::size_t initial) noexcept : available_(initial) {}

  // A semaphore with `initial` free permits where release() throws
  // semaphore_overflow_error when it would make more than `initial` permits
  // exist (i.e. it releases a permit nobody acquired).
  [[nodiscard]] static semaphore bounded(std::size_t initial) noexcept {
    return semaphore(initial, initial);
  }

  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  // Destroying a semaphore that tasks wait on is a bug (they could never
  // resume): it is reported on stderr with the task tree, and aborts unless
  // NDEBUG is defined. With NDEBUG the waiters are orphaned: they stay
  // suspended (a cancellation still unwinds them) and touch nothing of the
  // semaphore. A permit handed to a task that has not resumed yet cannot be
  // taken back: that case aborts in every build.
  ~semaphore() {
    if (!waiters_.empty() || handed_ != 0) [[unlikely]] {
      detail::report_leaked_waiters("grove::semaphore", waiters_.size() + handed_);
#ifdef NDEBUG
      if (handed_ == 0) {
        while (detail::sem_waiter* w = waiters_.pop_front()) w->orphan();
        return;
      }
#endif
      std::abort();
    }
  }

  // `co_await s.acquire();` takes one permit. Does not suspend when a permit
  // is free (nobody can be waiting then); otherwise suspends at the back of
  // the queue until a release() hands it a permit. Cancellation: a waiting
  // task leaves the queue at once and unwinds, holding nothing; a task that
  // was handed a permit but not yet resumed passes it on. A task already
  // cancelled when it reaches the co_await never takes a permit. The caller
  // must release() the permit; prefer lock(). Throws nothing.
  [[nodiscard]] detail::acquire_awaiter acquire() noexcept {
    return detail::acquire_awaiter(*this);
  }

  // `auto g = co_await s.lock();` — acquire() that gives a move-only guard
  // releasing the permit in its destructor. Because cancellation destroys
  // the frame, a cancelled task holding a guard releases its permit while it
  // unwinds. Same suspension and cancellation rules as acquire().
  [[nodiscard]] inline detail::lock_awaiter lock() noexcept;

  // Takes a permit if one is free, without suspending. Never barges: false
  // whenever the count is 0, which it is while anyone waits.
  [[nodiscard]] bool try_acquire() noexcept {
    if (available_ == 0) return false;
    --available_;
    return true;
  }

  // Returns one permit: to the oldest waiter if there is one (it resumes
  // from the loop's ready queue, not inline), otherwise to the count. Never
  // suspends. Throws semaphore_overflow_error on a bounded semaphore when no
  // permit is outstanding (the state is then unchanged).
  void release() {
    if (limit_ != unbounded && available_ >= limit_) throw semaphore_overflow_error();
    hand_on();
  }

  // Free permits (0 while anyone waits; a permit handed to a waiter that has
  // not resumed yet is not free).
  std::size_t available() const noexcept { return available_; }
  // Tasks queued in acquire()/lock() that have not been handed a permit.
  std::size_t waiters() const noexcept { return waiters_.size(); }
  bool is_bounded() const noexcept { return limit_ != unbounded; }

 private:
  friend class detail::sem_waiter;
  static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

  semaphore(std::size_t initial, std::size_t limit) noexcept : available_(initial), limit_(limit) {}

  // The one place a permit moves: to the oldest waiter, or to the count.
  void hand_on() noexcept {
    if (detail::sem_waiter* w = waiters_.pop_front()) {
      ++handed_;
      w->state_ = detail::sem_waiter::state::handed;
      waiters_.wake(*w);
    } else {
      ++available_;
    }
  }

  detail::wait_list<detail::sem_waiter> waiters_;
  std::size_t available_;
  std::size_t handed_ = 0;  // permits handed to waiters that have not resumed
  std::size_t limit_ = unbounded;
};

// Owns one permit of a semaphore and releases it when destroyed (also when
// the owning task is cancelled: its frame is destroyed, which runs this
// destructor). Move-only; a moved-from or released guard owns nothing.
class [[nodiscard]] semaphore::guard {
 public:
  guard() noexcept = default;
  guard(guard&& o) noexcept : sem_(std::exchange(o.sem_, nullptr)) {}
  guard& operator=(guard&& o) noexcept {
    if (this != &o) {
      reset();
      sem_ = std::exchange(o.sem_, nullptr);
    }
    return *this;
  }
  ~guard() { reset(); }

  // Releases the permit now (see semaphore::release()); no-op when empty.
  void reset() noexcept {
    // A guard only returns what it took, so this cannot overflow unless
    // other code released the same permit too; that throws out of a
    // noexcept function and terminates with the overflow message.
    if (semaphore* s = std::exchange(sem_, nullptr)) s->release();
  }
  bool owns_permit() const noexcept { return sem_ != nullptr; }
  explicit operator bool() const noexcept { return owns_permit(); }

 private:
  friend class detail::lock_awaiter;
  explicit guard(semaphore& s) noexcept : sem_(&s) {}
  semaphore* sem_ = nullptr;
};

namespace detail {

class lock_awaiter : public sem_waiter {
 public:
  using sem_waiter::sem_waiter;
  semaphore::guard await_resume() noexcept {
    take_ownership();
    return semaphore::guard(sem());
  }
};

bool sem_waiter::await_ready() noexcept {
  // Fast path: a free permit implies an empty queue (release() hands permits
  // to waiters before it ever raises the count), so taking it is fair.
  assert((sem_->available_ == 0 || sem_->waiters_.empty()) && "grove::semaphore invariant");
  if (sem_->available_ == 0) return false;
  --sem_->available_;
  state_ = state::owner;
  return true;
}

void sem_waiter::await_suspend(std::coroutine_handle<> h) noexcept {
  state_ = state::waiting;
  sem_->waiters_.push_back(*this, h);
}

void sem_waiter::take_ownership() noexcept {
  assert((state_ == state::handed || state_ == state::owner) &&
         "grove::semaphore: resumed without a permit");
  if (state_ == state::handed) --sem_->handed_;
  state_ = state::owner;
}

void sem_waiter::abandon() noexcept {
  switch (state_) {
    case state::waiting:
      sem_->waiters_.remove(*this);
      break;
    case state::handed:
      unlink();  // from the ready queue (or the batch being run)
      --sem_->handed_;
      sem_->hand_on();
      break;
    case state::idle:
    case state::owner:
      break;
  }
  state_ = state::idle;
}

void sem_waiter::await_describe(std::string& out, int depth) const {
  indent(out, depth);
  if (sem_ == nullptr) {
    out += "semaphore acquire (orphaned: the semaphore was destroyed)\n";
  } else if (state_ == state::handed) {
    out += "semaphore acquire (permit handed, about to resume)\n";
  } else {
    out += "semaphore acquire (waiting; " + std::to_string(sem_->available_) + " free, " +
           std::to_string(sem_->waiters_.size()) + " waiting)\n";
  }
}

}  // namespace detail

detail::lock_awaiter semaphore::lock() noexcept {
  return detail::lock_awaiter(*this);
}
}  // namespace grove
