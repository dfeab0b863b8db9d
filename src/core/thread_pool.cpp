// The worker pool behind grove::to_thread (see include/grove/detail/thread_pool.hpp).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <grove/detail/thread_pool.hpp>
#include <mutex>
#include <system_error>
#include <thread>

namespace grove::detail {
namespace {

struct pool_state {
  std::mutex m;
  std::condition_variable wake;      // a job was queued
  intrusive_list<thread_job> queue;  // FIFO, jobs not yet taken
  unsigned threads = 0;
  unsigned idle = 0;
  unsigned queued = 0;
  const unsigned max_threads = std::max(2U, std::thread::hardware_concurrency());
};

// Never destroyed: detached workers stay parked on `wake` until the process
// exits, and no static destructor can wait on a fn that blocks.
pool_state& state() {
  static pool_state* s = new pool_state;
  return *s;
}

// Blocks every signal on the calling thread until destroyed.
class block_all_signals {
 public:
  block_all_signals() noexcept {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  block_all_signals(const block_all_signals&) = delete;
  block_all_signals& operator=(const block_all_signals&) = delete;
  ~block_all_signals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

}  // namespace

thread_job::~thread_job() {
  if (pending_) {
    std::fputs(
        "grove: a to_thread call was destroyed while its fn may still run on a worker "
        "thread (its frame was destroyed without cancelling it through the protocol)\n",
        stderr);
    std::abort();
  }
}

bool thread_job::start(std::coroutine_handle<> h, bool wants_token) noexcept {
  loop_ = event_loop::current();
  assert(loop_ != nullptr && "grove::to_thread awaited outside a running loop");
  awaiting_ = h;
  done_proxy_ = make_proxy<thread_job, &thread_job::on_complete>(this);
  done_.target = done_proxy_.handle();
  try {
    if (wants_token) stop_ = std::stop_source();
    // Held before the worker can possibly post, released on this thread.
    loop_->hold_external();
    pending_ = true;
    thread_pool::submit(*this);
  } catch (...) {
    if (pending_) {
      pending_ = false;
      loop_->release_external();
    }
    error_ = std::current_exception();
    return false;
  }
  return true;
}

bool thread_job::cancel() noexcept {
  if (!pending_ || cancelled_) return false;
  cancelled_ = true;
  if (thread_pool::withdraw(*this)) {
    pending_ = false;
    loop_->release_external();
    return true;
  }
  // fn runs (or has just returned): ask it to stop, and wait for it. Stop
  // callbacks registered by fn run here, on the loop thread.
  stop_.request_stop();
  return false;
}

bool thread_job::abandon() noexcept {
  if (!pending_) return true;  // never submitted, or done: only the caller holds it
  pending_ = false;
  loop_->release_external();
  if (thread_pool::withdraw(*this)) return true;
  // Running: the worker sees `abandoned` and frees the job; it never touches
  // the loop. Finished: its completion is being posted, or was: take it
  // back (after the worker's post, which is moments away), so that neither
  // the worker nor the loop touches the job again; the caller frees it.
  if (detach_.exchange(abandoned) == attached) return false;
  loop_->take_back_threadsafe(done_);
  return true;
}

// On the loop thread, from the ready queue. The worker is done with the job
// and the loop: post_threadsafe wrote its eventfd before releasing the queue
// lock the loop took to find this completion.
void thread_job::on_complete() noexcept {
  pending_ = false;
  loop_->release_external();
  awaiting_.resume();  // may destroy *this
}

void thread_job::describe(std::string& out, int depth) const {
  indent(out, depth);
  out += cancelled_ ? "to_thread (stop requested; waiting for fn to return on a worker thread)\n"
                    : "to_thread (fn queued or running on a worker thread)\n";
}

void thread_pool::submit(thread_job& job) {
  pool_state& s = state();
  {
    std::lock_guard lock(s.m);
    if (s.queued + 1 > s.idle && s.threads < s.max_threads) {
      try {
        start_worker();
      } catch (...) {
        if (s.threads == 0) throw;  // otherwise the job waits for a busy worker
      }
    }
    s.queue.push_back(job);
    ++s.queued;
  }
  s.wake.notify_one();
}

bool thread_pool::withdraw(thread_job& job) noexcept {
  pool_state& s = state();
  std::lock_guard lock(s.m);
  if (!job.linked()) return false;  // a worker took it
  job.unlink();
  --s.queued;
  return true;
}

thread_pool::stats thread_pool::snapshot() noexcept {
  pool_state& s = state();
  std::lock_guard lock(s.m);
  return {s.threads, s.idle, s.queued};
}

unsigned thread_pool::max_threads() noexcept {
  return state().max_threads;
}

void thread_pool::start_worker() {
  // The new thread inherits the creating thread's mask: all signals blocked
  // from its first instruction on.
  block_all_signals blocked;
  std::thread(&thread_pool::worker_main).detach();
  ++state().threads;
}

void thread_pool::worker_main() noexcept {
  pool_state& s = state();
  std::unique_lock lock(s.m);
  for (;;) {
    ++s.idle;
    s.wake.wait(lock, [&] { return !s.queue.empty(); });
    --s.idle;
    thread_job* job = s.queue.pop_front();
    --s.queued;
    lock.unlock();
    job->invoke_(*job);
    // An abandoned heap job is freed here and never posted: its loop may be
    // gone. (exchange: abandon() and this agree on who frees it.)
    if (job->free_ != nullptr &&
        job->detach_.exchange(thread_job::finished) == thread_job::abandoned) {
      job->free_(*job);
      lock.lock();
      continue;
    }
    // Outside the pool mutex, so one process-wide lock never serialises the
    // loops' submits behind a completion. After this the job (and its loop)
    // may be gone; this thread never touches either again.
    job->loop_->post_threadsafe(job->done_);
    lock.lock();
  }
}

}  // namespace grove::detail
