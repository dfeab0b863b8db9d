#include <pthread.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <grove/debug.hpp>
#include <grove/errors.hpp>
#include <grove/run.hpp>
#include <iostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "signal_bridge.hpp"

namespace grove {
namespace {

// One run at a time per process: two signalfds for the same signals would
// race for every Ctrl+C.
std::atomic<bool> run_active{false};

void flush_stdio() noexcept {
  try {
    std::cout.flush();
    std::clog.flush();
    std::cerr.flush();
  } catch (...) {
    // A stream set to throw on failure: C stdio below still gets flushed.
  }
  std::fflush(nullptr);
}

void describe_into(std::string& out, const std::exception_ptr& e, int depth) {
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
  try {
    std::rethrow_exception(e);
  } catch (const exception_group& g) {
    out += "grove::exception_group (" + std::to_string(g.size()) +
           (g.size() == 1 ? " error):\n" : " errors):\n");
    for (const auto& member : g.exceptions()) describe_into(out, member, depth + 1);
    return;
  } catch (...) {
  }
  out += describe_exception(e);
  out += '\n';
}

}  // namespace

// ---------------------------------------------------------------- bridge

namespace detail {

signal_bridge::signal_bridge(event_loop& loop, const run_options& options)
    : loop_(&loop), options_(&options) {
  if (event_loop::current() != nullptr)
    throw std::logic_error(
        "grove::run: called while a grove loop is already running on this thread. "
        "run is the program's entry point; inside a task, co_await the work instead");
  if (run_active.exchange(true))
    throw std::logic_error(
        "grove::run: another grove::run is active in this process (on another thread); "
        "only one run may own the shutdown signals. Use a grove::event_loop directly "
        "for a second loop");
  claimed_ = true;
  try {
    sigemptyset(&set_);
    bool any = false;
    for (int signo : options.signals)
      if (signo == options.dump_signal)
        throw std::invalid_argument("grove::run: run_options::dump_signal (" + signal_name(signo) +
                                    ") is also in run_options::signals; pick another, or 0");
    std::vector<int> wanted = options.signals;
    if (options.dump_signal != 0) wanted.push_back(options.dump_signal);
    bool shutdown_any = false;  // else only the dump signal: it wakes no task
    for (int signo : wanted) {
      if (signo == SIGKILL || signo == SIGSTOP)
        throw std::invalid_argument(
            "grove::run: SIGKILL and SIGSTOP cannot be caught; "
            "remove them from run_options::signals (or dump_signal)");
      struct sigaction current{};
      if (signo <= 0 || ::sigaction(signo, nullptr, &current) != 0)
        throw std::invalid_argument(std::string(signo == options.dump_signal
                                                    ? "grove::run: run_options::dump_signal is "
                                                    : "grove::run: run_options::signals holds ") +
                                    std::to_string(signo) + ", which is not a signal");
      if (current.sa_handler == SIG_IGN) continue;  // inherited "ignore" is respected
      // The dump signal is taken only while nobody else wants it: a handler
      // the program installed keeps its signal.
      if (signo == options.dump_signal &&
          (current.sa_flags & SA_SIGINFO || current.sa_handler != SIG_DFL))
        continue;
      sigaddset(&set_, signo);
      any = true;
      shutdown_any = shutdown_any || signo != options.dump_signal;
    }
    if (!any) return;

    // Block first: from here on a signal stays pending (and the signalfd
    // will list it) instead of taking its default action.
    if (int rc = ::pthread_sigmask(SIG_BLOCK, &set_, &was_blocked_); rc != 0)
      throw std::system_error(rc, std::generic_category(), "grove::run: pthread_sigmask");
    blocked_ = true;
    fd_ = ::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "grove::run: signalfd");
    watch_.fd = fd_;
    watch_.events = EPOLLIN;
    watch_.on_event = &signal_bridge::on_readable;
    watch_.self = this;
    watch_.passive = !shutdown_any;
    loop.watch_fd(watch_);
    watching_ = true;
    grace_proxy_ = make_proxy<signal_bridge, &signal_bridge::on_grace>(this);
    grace_timer_.fire().target = grace_proxy_.handle();
  } catch (...) {
    release();
    throw;
  }
}

signal_bridge::~signal_bridge() {
  release();
}

void signal_bridge::release() noexcept {
  loop_->remove_timer(grace_timer_);
  grace_timer_.fire().unlink();
  if (watching_) loop_->unwatch_fd(watch_);
  watching_ = false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (blocked_) {
    // Unblock only what the bridge blocked: the thread may have blocked
    // other signals meanwhile, and some of ours may have been blocked before.
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int signo = 1; signo < NSIG; ++signo)
      if (sigismember(&set_, signo) == 1 && sigismember(&was_blocked_, signo) != 1)
        sigaddset(&unblock, signo);
    ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  }
  blocked_ = false;
  if (claimed_) run_active.store(false);
  claimed_ = false;
}

void signal_bridge::on_readable(fd_watch* w, std::uint32_t) {
  auto* self = static_cast<watch*>(w)->self;
  signalfd_siginfo info[8];
  for (;;) {
    ssize_t n = ::read(self->fd_, info, sizeof info);
    if (n <= 0) return;  // EAGAIN: drained (the fd is non-blocking)
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof info[0]; ++i)
      self->on_signal(static_cast<int>(info[i].ssi_signo));
  }
}

void signal_bridge::on_signal(int signo) {
  if (signo == options_->dump_signal) {
    if (tl_trace != nullptr) tl_trace->on_signal(signo, 0);
    try {
      std::string tree = task_tree_text();
      std::fputs(tree.c_str(), stderr);
    } catch (...) {
      std::fputs("grove: the task tree could not be printed (out of memory)\n", stderr);
    }
    std::fflush(stderr);
    return;
  }
  time_point now = loop_->now();
  if (stage_ > 0 && now - last_counted_ < options_->debounce) return;  // a duplicate
  last_counted_ = now;
  if (stage_ == 0) first_signo_ = signo;
  enter_stage(stage_ + 1 > 3 ? 3 : stage_ + 1, signo);
}

void signal_bridge::on_grace() noexcept {
  if (stage_ == 1) enter_stage(2, 0);
}

void signal_bridge::enter_stage(int stage, int signo) noexcept {
  stage_ = stage;
  if (tl_trace != nullptr) tl_trace->on_signal(signo, stage);
  call_hook(signo, stage);
  switch (stage) {
    case 1: {
      time_point now = loop_->now();
      duration grace = options_->grace;
      if (grace <= duration::zero())
        loop_->add_timer(grace_timer_, now);
      else if (grace != duration::max())
        loop_->add_timer(grace_timer_, add_saturating(now, grace));
      loop_->cancel_root();
      break;
    }
    case 2:
      loop_->remove_timer(grace_timer_);
      if (options_->report_forced) report_forced(signo);
      loop_->force_cancel();
      break;
    default:
      if (tl_trace != nullptr) tl_trace->on_exit();  // nothing unwinds: write the trace now
      die_by(first_signo_);
  }
}

// Before the forced cancellation tears the tree down: what was still
// running or cleaning up, and on what it waited.
void signal_bridge::report_forced(int signo) noexcept {
  try {
    std::string msg = "grove: ";
    msg += signo == 0 ? "the grace period ran out"
                      : "a second signal (" + signal_name(signo) + ") came";
    msg += "; forcing shutdown. These tasks were still running or cleaning up:\n";
    msg += task_tree_text();
    std::fputs(msg.c_str(), stderr);
    std::fflush(stderr);
  } catch (...) {
    std::fputs("grove: forcing shutdown (the task tree could not be printed)\n", stderr);
  }
}

void signal_bridge::call_hook(int signo, int stage) noexcept {
  if (!options_->on_signal) return;
  try {
    options_->on_signal(signo, stage);
  } catch (...) {
    std::string msg = "grove: run_options::on_signal threw (shutdown continues): ";
    try {
      msg += describe_exception(std::current_exception());
    } catch (...) {
      msg += "(could not describe the exception)";
    }
    msg += '\n';
    std::fputs(msg.c_str(), stderr);
  }
}

void signal_bridge::drain() noexcept {
  if (fd_ < 0) return;
  signalfd_siginfo info[8];
  for (;;) {
    ssize_t n = ::read(fd_, info, sizeof info);
    if (n <= 0) return;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) / sizeof info[0]; ++i) {
      auto signo = static_cast<int>(info[i].ssi_signo);
      if (signo == options_->dump_signal) continue;  // a late dump request: nothing to show
      if (stage_ == 0) {
        first_signo_ = signo;
        stage_ = 1;
      }
    }
  }
}

void signal_bridge::die_by(int signo) noexcept {
  flush_stdio();
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(signo, &dfl, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signo);
  ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  // A pending instance may already have been delivered by the unblock;
  // otherwise this delivers it to this thread before raise returns.
  ::raise(signo);
  ::_exit(128 + signo);
}

// ---------------------------------------------------------------- session

run_session::run_session(run_options options)
    : options_(std::move(options)),
      loop_(clock_mode::real),
      bridge_(std::make_unique<signal_bridge>(loop_, options_)) {
  loop_.set_debug(options_.debug);
}

run_session::~run_session() = default;

int run_session::finish(int code, const std::exception_ptr& error, bool cancelled) {
  bridge_->drain();
  if (error) report_main_error(error);
  if (bridge_->stage() > 0) signal_bridge::die_by(bridge_->first_signal());
  if (error) return 1;
  if (cancelled) {
    std::fputs(
        "grove: main was cancelled without a shutdown signal "
        "(event_loop::cancel_root was called); exiting with 1\n",
        stderr);
    return 1;
  }
  return code;
}

void report_main_error(const std::exception_ptr& error) noexcept {
  try {
    std::string out = "grove: main failed: ";
    describe_into(out, error, 0);
    std::fputs(out.c_str(), stderr);
  } catch (...) {
    std::fputs("grove: main failed (the exception could not be described)\n", stderr);
  }
  std::fflush(stderr);
}

}  // namespace detail
}  // namespace grove
