// The worker pool behind grove::to_thread, and the job record it runs.
//
// A thread_job lives inside the to_thread awaiter, which lives in the
// awaiting coroutine's frame: submitting work allocates nothing. The pool's
// queue is an intrusive FIFO of jobs under one mutex.
//
// Threads. The pool is process-wide, created on first use and never
// destroyed (its threads are detached and simply stay parked when the
// process exits, so no static destructor can hang on a blocked fn). It starts
// a worker when a job is queued and no idle worker can take it, up to
// max_threads() = max(2, std::thread::hardware_concurrency()) workers; a
// worker never exits. More concurrent jobs than that wait in FIFO order. A
// fn that blocks until *another* to_thread call's fn runs can therefore
// deadlock once the pool is full.
//
// Signals. Every worker is created with all signals blocked (the creating
// thread blocks them with pthread_sigmask just before creating it, so there
// is no window, and restores its own mask right after). Process-directed
// signals (SIGINT, SIGTERM, SIGCHLD, ...) are thus always delivered to a loop
// thread's signalfd or handlers, never to a worker. Signals the kernel sends
// to a faulting thread (SIGSEGV, SIGBUS, SIGFPE, SIGILL) still kill the
// process, as they should.
//
// fork(): the pool's threads do not exist in a child process; a forked child
// must exec (or at least not use to_thread).
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <grove/detail/intrusive.hpp>
#include <grove/detail/proxy_frame.hpp>
#include <grove/event_loop.hpp>
#include <stop_token>
#include <string>

namespace grove::detail {

class thread_pool;

// One to_thread call. The awaiter (a subclass) supplies `invoke_`, which runs
// fn on the worker and stores its value or exception. Everything else is
// here, so the pool and the loop-side bookkeeping are compiled once.
//
// Thread ownership of the fields:
//   - the list hook: the pool mutex;
//   - invoke_, the result, error_: the worker while fn runs; the loop thread
//     before submit and after the completion was posted (the pool mutex and
//     the loop's remote queue order the hand-offs);
//   - everything else: the loop thread only.
class thread_job : public list_hook {
 public:
  thread_job(const thread_job&) = delete;
  thread_job& operator=(const thread_job&) = delete;

 protected:
  thread_job() noexcept = default;
  // Destroying a job that a worker may still touch would be a use-after-free;
  // the cancellation protocol rules it out, and this checks it (always on).
  ~thread_job();

  // Loop thread. Submits the job; `h` is resumed (from the loop) after fn
  // returned. false: submission failed and error_ says why (no worker could
  // be started); resume at once. Never throws.
  bool start(std::coroutine_handle<> h, bool wants_token) noexcept;

  // Loop thread. A job still queued is withdrawn (fn never runs) and true is
  // returned; otherwise stop is requested and false says "resumed later".
  bool cancel() noexcept;

  // After the resume: false when the call was cancelled and fn did not throw.
  // Errors win over cancellation: fn's exception is never lost.
  bool must_resume() const noexcept { return !cancelled_ || error_ != nullptr; }

  void describe(std::string& out, int depth) const;

  std::stop_token token() const noexcept { return stop_.get_token(); }

  // Loop thread, for a job that lives on the heap (free_ set), not in the
  // awaiting frame: the frame stops waiting at once, and fn's result will be
  // dropped. true: nothing else holds the job any more (it was still queued,
  // or its completion was posted and is taken back): the caller frees it.
  // false: fn still runs; the worker frees the job with free_ when it returns.
  bool abandon() noexcept;

  void (*invoke_)(thread_job&) noexcept = nullptr;
  void (*free_)(thread_job&) noexcept = nullptr;  // set only for heap jobs
  std::exception_ptr error_;

 private:
  friend class thread_pool;

  void on_complete() noexcept;

  event_loop* loop_ = nullptr;
  std::coroutine_handle<> awaiting_;
  std::stop_source stop_{std::nostopstate};  // a real one only if fn takes a token
  ready_node done_;                          // posted by the worker when fn returned
  proxy_frame done_proxy_;                   // done_'s target: calls on_complete()
  bool pending_ = false;                     // submitted, completion not yet handled
  bool cancelled_ = false;
  // Heap jobs: the worker and abandon() agree through this who frees it.
  enum : unsigned char { attached, finished, abandoned };
  std::atomic<unsigned char> detach_{attached};
};

// The process-wide pool. All members are thread-safe.
class thread_pool {
 public:
  // Queues `job`, starting a worker if no idle one can take it. Throws
  // std::system_error only when no worker exists and none can be started.
  static void submit(thread_job& job);
  // true: the job was still queued and is removed (no worker will touch it).
  static bool withdraw(thread_job& job) noexcept;

  struct stats {
    unsigned threads = 0;  // started so far (workers never exit)
    unsigned idle = 0;     // parked, waiting for a job
    unsigned queued = 0;   // jobs not yet taken by a worker
  };
  static stats snapshot() noexcept;
  static unsigned max_threads() noexcept;

 private:
  static void start_worker();  // pool mutex held
  static void worker_main() noexcept;
};

}  // namespace grove::detail
