#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <grove/detail/reaper.hpp>
#include <grove/event_loop.hpp>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "debug_session.hpp"

namespace grove {
namespace {

thread_local event_loop* tl_current = nullptr;

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Distinguishes the loop's own wake-up fd from fd_watch pointers in epoll data.
constexpr std::uint64_t wake_tag = 1;

}  // namespace

bool detail::loop_forced() noexcept {
  return tl_current != nullptr && tl_current->forced();
}

detail::timer_node::~timer_node() {
  if (armed()) tl_current->remove_timer(*this);
}

event_loop::event_loop(clock_mode mode) : mode_(mode) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("grove: epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    ::close(epoll_fd_);
    throw_errno("grove: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_tag;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) {
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw_errno("grove: epoll_ctl(eventfd)");
  }
}

namespace {
std::atomic<void (*)(event_loop*) noexcept> destroy_hook{nullptr};
}  // namespace

void event_loop::set_destroy_hook(void (*hook)(event_loop*) noexcept) noexcept {
  destroy_hook.store(hook);
}

event_loop::~event_loop() {
  if (auto hook = destroy_hook.load()) hook(this);
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

event_loop* event_loop::current() noexcept {
  return tl_current;
}

time_point event_loop::now() const noexcept {
  if (mode_ == clock_mode::virtual_time) return virtual_now_;
  return std::chrono::time_point_cast<duration>(clock::now());
}

void event_loop::cancel_root() noexcept {
  detail::cancel_call call;
  root_node_.cancelled = true;
  if (root_ != nullptr && root_->cancel()) root_finished_ = true;
}

void event_loop::force_cancel() noexcept {
  forced_ = true;
  cancel_root();
}

void event_loop::post_threadsafe(detail::ready_node& n) {
  // The write happens under the lock: once the loop can see `n` it may run
  // it, finish, and be destroyed, so nothing of the loop may be touched after
  // the lock is released. (A full counter still wakes the loop.)
  std::lock_guard lock(remote_mutex_);
  remote_.push_back(n);
  std::uint64_t one = 1;
  [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
}

void event_loop::take_back_threadsafe(detail::ready_node& n) noexcept {
  for (;;) {
    {
      std::lock_guard lock(remote_mutex_);
      if (n.linked()) {  // in remote_, or already in the ready queue
        n.unlink();
        return;
      }
    }
    std::this_thread::yield();  // the poster is between deciding and posting
  }
}

void event_loop::add_timer(detail::timer_node& t, time_point deadline) {
  assert(tl_current == this && "grove: timers are armed only on a running loop's thread");
  timers_.insert(t, deadline);
}

void event_loop::remove_timer(detail::timer_node& t) noexcept {
  timers_.remove(t);
}

void event_loop::watch_fd(detail::fd_watch& w) {
  epoll_event ev{};
  ev.events = w.events;
  ev.data.ptr = &w;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, w.fd, &ev) < 0) throw_errno("grove: epoll_ctl(ADD)");
  if (!w.passive) ++watches_;
}

void event_loop::unwatch_fd(detail::fd_watch& w) noexcept {
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr) == 0 && !w.passive) --watches_;
}

void event_loop::fire_timers(time_point t) {
  while (detail::timer_node* due = timers_.pop_expired(t)) post(due->fire());
}

namespace {
// DESIGN §4: the loop polls the OS whenever the ready queue is empty, and
// otherwise after this many tasks or this much time (as Tokio does), so a
// storm of ready tasks delays a signal or a readable descriptor by about a
// millisecond at most, while a yield (checkpoint) costs no syscall.
constexpr std::size_t batch_limit = 64;
constexpr duration poll_interval = std::chrono::microseconds(500);
}  // namespace

template <class F>
void event_loop::run_timed(F callback) {
  if (!detail::times_callbacks(*debug_)) return callback();
  detail::before_callback(*debug_);
  auto t0 = std::chrono::steady_clock::now();
  callback();
  auto ns = std::chrono::duration_cast<duration>(std::chrono::steady_clock::now() - t0).count();
  if (debug_ != nullptr) detail::after_callback(*debug_, ns);
}

// Runs what was ready when the batch began, at most batch_limit tasks; the
// rest stays at the front of the queue, before what the batch posted.
std::size_t event_loop::run_batch() {
  detail::intrusive_list<detail::ready_node> batch;
  batch.splice_back(ready_);
  std::size_t ran = 0;
  while (ran < batch_limit) {
    detail::ready_node* n = batch.pop_front();
    if (n == nullptr) break;
    ++ran;
    if (debug_ != nullptr) [[unlikely]]
      run_timed([n] { n->target.resume(); });
    else
      n->target.resume();
    if (detail::reap_due) detail::reap();  // frames that ended or were cancelled while it ran
  }
  ready_.splice_front(batch);
  ran_since_poll_ += ran;
  return ran;
}

bool event_loop::poll_due() const noexcept {
  return ran_since_poll_ >= batch_limit || iteration_time_ - last_poll_ >= poll_interval;
}

void event_loop::poll(bool may_block, time_point wake_at) {
  ran_since_poll_ = 0;
  last_poll_ = iteration_time_;
  timespec ts{0, 0};
  timespec* timeout = &ts;
  if (may_block) {
    if (wake_at == time_point::max()) {
      timeout = nullptr;
    } else {
      auto left = std::max(wake_at - now(), duration::zero());
      ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
    }
  }
  epoll_event events[64];
  int n = ::epoll_pwait2(epoll_fd_, events, 64, timeout, nullptr);
  if (n < 0 && errno == ENOSYS) {
    int ms = timeout == nullptr
                 ? -1
                 : static_cast<int>(ts.tv_sec * 1000 + (ts.tv_nsec + 999'999) / 1'000'000);
    n = ::epoll_wait(epoll_fd_, events, 64, ms);
  }
  if (n < 0) {
    if (errno == EINTR) return;
    throw_errno("grove: epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == wake_tag) {
      std::uint64_t count;
      [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
      std::lock_guard lock(remote_mutex_);
      ready_.splice_back(remote_);
    } else {
      auto* w = static_cast<detail::fd_watch*>(events[i].data.ptr);
      std::uint32_t ev = events[i].events;
      if (debug_ != nullptr) [[unlikely]]
        run_timed([w, ev] { w->on_event(w, ev); });
      else
        w->on_event(w, ev);
      if (detail::reap_due) detail::reap();
    }
  }
}

void event_loop::enter(detail::promise_base& root) {
  if (tl_current != nullptr)
    throw std::logic_error(
        "grove: a loop is already running on this thread; "
        "co_await the task instead of starting another loop");
  tl_current = this;
  root_ = &root;
  try {
    debug_ = detail::start_debug_session(debug_options_);
  } catch (...) {
    tl_current = nullptr;
    root_ = nullptr;
    throw;
  }
  if (debug_ != nullptr) detail::tl_trace = &detail::sink_of(*debug_);
  root_finished_ = false;
  attached_at_enter_ = detail::tl_attached;
  forced_ = false;
}

// Whatever still waits (a deadlocked tree) is disarmed, so frames destroyed
// after the loop stopped never touch it.
void event_loop::leave() noexcept {
  detail::reap();
  // Every frame of the tree is gone by now (run destroyed the root, the
  // reaper what it cancelled): one still counted lives outside the tree.
  if (detail::tl_attached > attached_at_enter_) [[unlikely]] {
    detail::report_pending_tasks(detail::tl_attached - attached_at_enter_);
#ifndef NDEBUG
    std::abort();
#endif
  }
  timers_.clear();
  ready_.clear();
  detail::tl_trace = nullptr;
  debug_.reset();  // writes the trace file
  tl_current = nullptr;
  root_ = nullptr;
}

void event_loop::run_until_done(const bool& done) {
  auto finished = [&] { return done || root_finished_; };
  while (!finished()) {
    iteration_time_ = now();
    fire_timers(iteration_time_);
    run_batch();
    if (finished()) break;
    if (!ready_.empty()) {
      if (poll_due()) poll(false, {});
      continue;
    }
    time_point next = timers_.next_deadline();
    if (is_virtual() && external_ == 0) {
      poll(false, {});  // fd events are delivered, but never waited for
      if (!ready_.empty()) continue;
      if (timers_.empty()) report_deadlock();
      virtual_now_ = std::max(virtual_now_, next);
      continue;
    }
    if (timers_.empty() && watches_ == 0 && external_ == 0) report_deadlock();
    poll(true, is_virtual() ? time_point::max() : next);
  }
}

void event_loop::report_deadlock() {
  std::string report =
      "grove: deadlock: every task is blocked, no timer is pending and nothing "
      "else can wake them.\nTask tree:\n";
  describe_tree(report, 1);
  throw deadlock_error(report);
}

void event_loop::describe_tree(std::string& out, int depth) const {
  if (root_ == nullptr) {
    detail::indent(out, depth);
    out += "(no task: the loop is not running one)\n";
    return;
  }
  detail::describe_frame(*root_, out, depth, "main");
}

}  // namespace grove
