// Deferred destruction: no frame is destroyed while a cancellation is being
// delivered.
//
// Destroying a frame runs user destructors, and a destructor may call
// cancel() on any scope or group ("if this worker goes, stop the rest").
// If grove destroyed frames in the middle of delivering a cancellation (a
// gather walking its children, a group deleting its records, a scope
// dropping its body), such a cancel() could re-enter that delivery or
// destroy the object doing it. So grove's internals never destroy a
// cancelled frame (or a group's child record) inline: they hand it to the
// thread's reaper, and the reaper destroys what it holds, in the order it
// was handed over, at two points only:
//
//   - when the outermost public cancel call returns (cancel_scope::cancel,
//     task_group::cancel, event_loop::cancel_root, ...): a cancel() made by
//     task code is still synchronous: the cancelled frames' destructors
//     have run when it returns;
//   - when control returns to the event loop (after each resumed task):
//     frames that ended while a frame's end was being handled.
//
// A cancel() made while the reaper runs (from a destructor) queues its
// frames behind the current ones; the same reap destroys them.
#pragma once

#include <coroutine>

namespace grove::detail {

// > 0 while grove is delivering a cancellation, reaping, or inside a public
// cancel call: the reaper waits.
extern constinit thread_local int reap_depth;
// Something is queued.
extern constinit thread_local bool reap_due;

// Holds the reaper off for its lifetime (a delivery in progress).
class reap_guard {
 public:
  reap_guard() noexcept { ++reap_depth; }
  reap_guard(const reap_guard&) = delete;
  reap_guard& operator=(const reap_guard&) = delete;
  ~reap_guard() { --reap_depth; }
};

void reap() noexcept;

// Wraps a public cancel entry point: the outermost one reaps on return.
class cancel_call {
 public:
  cancel_call() noexcept { ++reap_depth; }
  cancel_call(const cancel_call&) = delete;
  cancel_call& operator=(const cancel_call&) = delete;
  ~cancel_call() {
    if (--reap_depth == 0 && reap_due) reap();
  }
};

using destroy_fn = void (*)(void*) noexcept;
void enqueue_destroy(void* object, destroy_fn fn) noexcept;

// Queues a frame the caller owned (and has released) for destruction.
inline void destroy_later(std::coroutine_handle<> frame) noexcept {
  enqueue_destroy(frame.address(),
                  [](void* p) noexcept { std::coroutine_handle<>::from_address(p).destroy(); });
}

// Queues a heap object the caller owned, to be deleted (as T).
template <class T>
void delete_later(T* object) noexcept {
  enqueue_destroy(object, [](void* p) noexcept { delete static_cast<T*>(p); });
}

}  // namespace grove::detail
