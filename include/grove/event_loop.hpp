// The event loop: single-threaded, epoll-based, with an intrusive timer wheel,
// an intrusive ready queue, an eventfd for posts from other threads, and fd
// watches (signalfd, pidfd). A virtual-clock variant runs the same code with
// time that jumps to the next timer when every task is blocked.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <grove/debug.hpp>
#include <grove/detail/intrusive.hpp>
#include <grove/detail/reaper.hpp>
#include <grove/detail/timer_wheel.hpp>
#include <grove/outcome.hpp>
#include <grove/task.hpp>
#include <mutex>
#include <string>

namespace grove {

class event_loop;

namespace detail {

// An fd the loop polls; `on_event` runs on the loop thread.
struct fd_watch {
  int fd = -1;
  std::uint32_t events = 0;
  void (*on_event)(fd_watch*, std::uint32_t) = nullptr;
  // Its events never wake a task (run's task-tree dump signal): it does not
  // keep a deadlocked loop from being reported.
  bool passive = false;
};

}  // namespace detail

enum class clock_mode { real, virtual_time };

class event_loop {
 public:
  explicit event_loop(clock_mode mode = clock_mode::real);
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;
  ~event_loop();

  // The loop running on this thread, or nullptr.
  static event_loop* current() noexcept;

  time_point now() const noexcept;
  // The time the current loop iteration began: free to read, and as precise
  // as the iteration is short. For bookkeeping (run_tasks' job times), not
  // for deadlines.
  time_point iteration_time() const noexcept { return iteration_time_; }
  bool is_virtual() const noexcept { return mode_ == clock_mode::virtual_time; }

  // Runs `t` to completion as the root task and returns how it ended.
  // Throws deadlock_error when nothing can ever wake the blocked tasks, and
  // std::logic_error when called while a loop already runs on this thread.
  // A task started while it ran that is still alive when it stops (outside
  // the tree: a runner's API used by hand) is reported on stderr, and
  // aborts unless grove is built with NDEBUG (docs/debugging.md, Leaks).
  template <class T>
  outcome<T> run(task<T> t);

  // Cancels the root task gracefully (shielded cleanups still run).
  void cancel_root() noexcept;
  // Forced cancellation: shields stop holding, then the root is cancelled.
  void force_cancel() noexcept;
  bool forced() const noexcept { return forced_; }

  // --- for primitives built on the loop (not needed by task code) ---
  void post(detail::ready_node& n) noexcept { ready_.push_back(n); }
  // From any thread: wakes the loop and posts `n` on the loop thread.
  void post_threadsafe(detail::ready_node& n);
  // Loop thread: unlinks `n`, which another thread has posted or is about to
  // post with post_threadsafe (waits for that post).
  void take_back_threadsafe(detail::ready_node& n) noexcept;
  // External work (a worker thread) that will post back: the virtual clock
  // waits for it instead of jumping ahead, and the loop is not deadlocked.
  void hold_external() noexcept { ++external_; }
  void release_external() noexcept { --external_; }

  // Precondition: called on this loop's thread while it runs (a timer is
  // armed only then; the loop disarms every timer when it stops). O(1);
  // add_timer throws std::bad_alloc (rarely: the wheel's near heap grows).
  void add_timer(detail::timer_node& t, time_point deadline);
  void remove_timer(detail::timer_node& t) noexcept;

  void watch_fd(detail::fd_watch& w);
  void unwatch_fd(detail::fd_watch& w) noexcept;

  // Debug logging and trace export for the runs that start from now on
  // (grove/debug.hpp); call it before run(). grove::run passes its
  // run_options::debug here.
  void set_debug(debug_options o) { debug_options_ = std::move(o); }
  // The live task tree, one line per level (dump_task_tree prints it).
  void describe_tree(std::string& out, int depth) const;

  // For layers built on the loop (grove::io keeps its descriptor
  // registrations per loop): called with every loop as it is destroyed.
  static void set_destroy_hook(void (*hook)(event_loop*) noexcept) noexcept;

 private:
  struct root_record;

  void enter(detail::promise_base& root);  // throws std::logic_error when nested
  void leave() noexcept;
  void run_until_done(const bool& done);
  void fire_timers(time_point now);
  std::size_t run_batch();
  template <class F>
  void run_timed(F callback);  // debug mode: the slow-callback warning
  void poll(bool may_block, time_point wake_at);
  bool poll_due() const noexcept;
  [[noreturn]] void report_deadlock();  // with the tree from root_
  // Destroys the root's frame; what its destructors cancel is reaped too.
  // Not under a reap_guard: after a deadlock report the tree is still live,
  // and a destructor's cancel() must destroy what it cancels before it
  // returns, while the frames that own it still exist (as it always does).
  template <class T>
  void destroy_root(task<T>& t) noexcept {
    root_ = nullptr;  // cancel_root() from a destructor finds no root
    t = task<T>();
    detail::reap();
  }

  clock_mode mode_;
  time_point virtual_now_{};
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  detail::intrusive_list<detail::ready_node> ready_;
  detail::timer_wheel timers_;
  time_point iteration_time_{};
  time_point last_poll_{};
  std::size_t ran_since_poll_ = 0;
  std::size_t watches_ = 0;
  long external_ = 0;
  bool forced_ = false;
  detail::cancel_node root_node_;
  detail::promise_base* root_ = nullptr;
  debug_options debug_options_;
  detail::debug_session_ptr debug_;
  bool root_finished_ = false;         // the root was cancelled synchronously
  std::size_t attached_at_enter_ = 0;  // detail::tl_attached when run began
  std::mutex remote_mutex_;
  detail::intrusive_list<detail::ready_node> remote_;
};

// A loop on a virtual clock, for tests: exact, instant timing.
class virtual_loop : public event_loop {
 public:
  virtual_loop() : event_loop(clock_mode::virtual_time) {}
};

// Time on the current loop's clock. Precondition: called on a loop thread.
inline time_point now() noexcept {
  return event_loop::current()->now();
}

// t + d, saturating at time_point::max() (and at min() for a negative d):
// "wait forever" spelt duration::max() must not overflow into the past.
inline time_point add_saturating(time_point t, duration d) noexcept {
  if (d > duration::zero() && t > time_point::max() - d) return time_point::max();
  if (d < duration::zero() && t < time_point::min() - d) return time_point::min();
  return t + d;
}

struct event_loop::root_record final : detail::frame_parent {
  bool done = false;
  std::coroutine_handle<> child_ended() noexcept override {
    done = true;
    return std::noop_coroutine();
  }
};

template <class T>
outcome<T> event_loop::run(task<T> t) {
  auto h = t.handle();
  auto& p = h.promise();
  enter(p);  // before anything changes: a refused nested run touches nothing
  struct leave_guard {
    event_loop* loop;
    ~leave_guard() { loop->leave(); }
  } guard{this};
  root_record r;
  root_node_ = {};
  p.attach(&root_node_, &r);
  detail::ready_node start;
  start.target = h;
  post(start);
  try {
    run_until_done(r.done);
  } catch (...) {
    destroy_root(t);  // what is left is destroyed while this loop is current
    throw;
  }
  outcome<T> o = p.take_outcome();
  destroy_root(t);  // DESIGN §1.9: the root's frame goes before run returns
  return o;
}

}  // namespace grove
