// The waiter queue shared by semaphore and event: tasks of one loop
// suspended on a primitive, FIFO, in an intrusive list whose nodes live in
// the awaiting frames (nothing is allocated per wait).
#pragma once

#include <coroutine>
#include <cstddef>
#include <grove/detail/intrusive.hpp>
#include <grove/event_loop.hpp>

namespace grove::detail {

// Prints "`what` destroyed while `n` tasks wait on it" and the task tree to
// stderr (src/core/debug.cpp); the caller aborts in debug builds.
void report_leaked_waiters(const char* what, std::size_t n) noexcept;

// One waiting task: its node is in the primitive's list while it waits, and
// in its loop's ready queue once woken, never in both.
struct waiter_node : ready_node {
  event_loop* loop = nullptr;
};

template <class W>
class wait_list {
 public:
  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  // `w` waits at the back, to resume `h` on the current loop.
  void push_back(W& w, std::coroutine_handle<> h) noexcept {
    w.target = h;
    w.loop = event_loop::current();
    list_.push_back(w);
    ++size_;
  }

  // The oldest waiter, taken off the list, or nullptr.
  W* pop_front() noexcept {
    W* w = list_.pop_front();
    if (w != nullptr) --size_;
    return w;
  }

  // A waiting `w` leaves the list (cancelled): O(1).
  void remove(W& w) noexcept {
    w.unlink();
    --size_;
  }

  // Posts a waiter taken off the list to its loop's ready queue: never
  // resumed inline, so the waker runs on to its own next suspension point.
  static void wake(W& w) noexcept { w.loop->post(w); }

 private:
  intrusive_list<W> list_;
  std::size_t size_ = 0;
};

}  // namespace grove::detail
