// grove::process: posix_spawn, a pidfd watched by the loop, and the
// terminate sequence as a small state machine (no extra coroutine frames).
#include <fcntl.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <grove/detail/cancel_node.hpp>
#include <grove/detail/proxy_frame.hpp>
#include <grove/process.hpp>
#include <grove/settle.hpp>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../io/os_error.hpp"

extern char** environ;

namespace grove {

exit_status exit_status::from_siginfo(int how, int value) noexcept {
  exit_status s;
  s.signaled_ = how == CLD_KILLED || how == CLD_DUMPED;
  s.value_ = value;
  return s;
}

std::string exit_status::describe() const {
  if (!signaled_) return "exited with code " + std::to_string(value_);
  return "killed by " + signal_name(value_);
}

namespace detail {
namespace {

int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int signo) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// Stop-and-kill rounds: a stopped process cannot fork, so a round catches
// what the previous one's walk of the group missed.
constexpr int kill_rounds = 3;

}  // namespace

class exit_awaiter;

struct process_state {
  enum class phase : unsigned char { running, terminating, killing };

  pid_t pid = -1;
  int pidfd = -1;
  bool group = true;
  int terminate_signal = SIGTERM;
  duration kill_grace{};
  std::optional<exit_status> status;
  int wait_errno = 0;  // waitid failed (someone else reaped the child)
  phase phase_ = phase::running;
  stream in, out, err;
  bool in_piped = false, out_piped = false, err_piped = false;

  struct watch : fd_watch {
    process_state* self = nullptr;
  } watch_;
  event_loop* watch_loop = nullptr;  // while an exit_awaiter is suspended
  event_loop* timer_loop = nullptr;  // while kill_timer is armed
  timer_node kill_timer;
  proxy_frame kill_proxy;
  intrusive_list<exit_awaiter> waiters;  // a supervisor's wait, a controller's terminate

  process_state() noexcept {
    watch_.self = this;
    kill_proxy = make_proxy<process_state, &process_state::escalate>(this);
    kill_timer.fire().target = kill_proxy.handle();
  }
  process_state(const process_state&) = delete;
  process_state& operator=(const process_state&) = delete;
  ~process_state();

  bool done() const noexcept { return status || wait_errno; }

  // Signals the group (the child alone without one); the syscall's result,
  // 0 once reaped. Never after the reap: until then the child, a zombie at
  // worst, holds its pid and group id.
  int signal(int signo) const noexcept {
    if (done()) return 0;
    return group ? ::kill(-pid, signo) : pidfd_send_signal(pidfd, signo);
  }

  void disarm() noexcept {
    kill_timer.fire().unlink();
    if (kill_timer.armed()) timer_loop->remove_timer(kill_timer);  // armed: its loop runs
  }

  void kill_hard() noexcept {
    phase_ = phase::killing;
    disarm();
    if (!group) {
      signal(SIGKILL);
      return;
    }
    for (int i = 0; i < kill_rounds; ++i) {
      signal(SIGSTOP);
      signal(SIGKILL);
    }
  }

  // The terminate sequence's first step, or a shorter grace for one that
  // runs. SIGCONT follows the signal: a stopped child (SIGTSTP, or SIGTTIN
  // from reading a terminal it does not own) would otherwise keep the signal
  // pending until SIGKILL.
  void begin_terminate(duration grace) noexcept {
    if (done() || phase_ == phase::killing) return;
    if (grace <= duration::zero() || loop_forced()) return kill_hard();
    event_loop* loop = event_loop::current();
    time_point deadline = add_saturating(loop->now(), grace);
    if (phase_ == phase::terminating) {
      // (Not armed: no limit so far, or its loop has ended: this one counts.)
      if (!kill_timer.armed() || deadline < kill_timer.deadline) arm(loop, deadline);
      return;
    }
    phase_ = phase::terminating;
    signal(terminate_signal);
    if (terminate_signal != SIGCONT) signal(SIGCONT);
    if (grace != duration::max()) arm(loop, deadline);
  }

  void arm(event_loop* loop, time_point deadline) noexcept {
    disarm();
    try {
      timer_loop = loop;
      loop->add_timer(kill_timer, deadline);
    } catch (...) {
      kill_hard();  // no timer, no grace
    }
  }

  // The grace is over: its timer fired, or a forced shutdown cut it short.
  void escalate() noexcept {
    if (!done() && phase_ == phase::terminating) kill_hard();
  }

  // Registered only while an exit_awaiter is suspended (it unregisters when
  // it goes), so no registration outlives its loop.
  void start_watching() {
    watch_loop = event_loop::current();
    watch_.fd = pidfd;
    watch_.events = EPOLLIN;
    watch_.on_event = &process_state::on_readable;
    try {
      watch_loop->watch_fd(watch_);
    } catch (...) {
      watch_.fd = -1;
      throw;
    }
  }

  void stop_watching() noexcept {
    if (watch_.fd < 0) return;
    watch_loop->unwatch_fd(watch_);
    watch_.fd = -1;
  }

  // Reaps the child once it has exited; false while it runs. After a
  // terminate sequence, what is left of its group goes first, while the
  // zombie still holds the group id.
  bool try_reap(bool block) noexcept {
    if (done()) return true;
    if (phase_ != phase::running && group) ::kill(-pid, SIGKILL);
    siginfo_t info{};
    int rc;
    do {
      rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
                    WEXITED | (block ? 0 : WNOHANG));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      wait_errno = errno;
    } else if (info.si_pid == 0) {
      return false;
    } else {
      status = exit_status::from_siginfo(info.si_code, info.si_status);
    }
    stop_watching();
    disarm();
    ::close(std::exchange(pidfd, -1));
    return true;
  }

  static void on_readable(fd_watch* w, std::uint32_t) noexcept;
};

// co_await: the child's end, reaped. See process::wait() for what
// cancellation does.
class exit_awaiter : public list_hook {
 public:
  explicit exit_awaiter(process_state& s) noexcept : s_(&s) {}
  exit_awaiter(const exit_awaiter&) = delete;
  exit_awaiter& operator=(const exit_awaiter&) = delete;
  ~exit_awaiter() {
    resume_.unlink();
    if (!linked()) return;
    unlink();
    if (s_->waiters.empty()) s_->stop_watching();
  }

  // Already cancelled: run the sequence and wait for the reap all the same,
  // unless there is nothing left to terminate.
  bool await_early_cancel() noexcept {
    if (s_->done()) return true;
    cancelled_ = s_->phase_ == process_state::phase::running;
    s_->begin_terminate(s_->kill_grace);
    return false;
  }
  bool await_ready() const noexcept { return s_->done(); }

  // The pidfd is level-triggered: a child that has exited already is seen
  // at the loop's next poll.
  void await_suspend(std::coroutine_handle<> h) {
    if (s_->waiters.empty()) s_->start_watching();
    resume_.target = h;
    s_->waiters.push_back(*this);
    // A grace period whose loop has ended since: it is over.
    if (s_->phase_ == process_state::phase::terminating && !s_->kill_timer.armed() &&
        s_->timer_loop)
      s_->kill_hard();
  }

  // Never synchronous: the child must be reaped first. Once the resumption
  // is posted (the child is reaped), nothing is left to do.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (s_->done()) return false;
    if (s_->phase_ == process_state::phase::running) {
      cancelled_ = true;
      s_->begin_terminate(s_->kill_grace);
    } else if (loop_forced()) {
      s_->escalate();
    }
    return false;
  }
  bool await_must_resume() const noexcept { return !cancelled_; }

  exit_status await_resume() const {
    if (s_->wait_errno)
      detail::throw_os_error(s_->wait_errno, "waitid for pid " + std::to_string(s_->pid));
    return *s_->status;
  }

  void await_describe(std::string& out, int depth) const {
    indent(out, depth);
    out += "process " + std::to_string(s_->pid) +
           (s_->phase_ == process_state::phase::running ? " (running)\n" : " (terminating)\n");
  }

  void on_reaped() noexcept { event_loop::current()->post(resume_); }

 private:
  process_state* s_;
  ready_node resume_;
  bool cancelled_ = false;
};

void process_state::on_readable(fd_watch* w, std::uint32_t) noexcept {
  process_state& s = *static_cast<watch*>(w)->self;
  if (!s.try_reap(false)) return;
  while (exit_awaiter* a = s.waiters.pop_front()) a->on_reaped();
}

process_state::~process_state() {
  assert(waiters.empty() && "grove::process destroyed while a wait() on it is suspended");
  if (pidfd < 0) return;
  kill_hard();
  try_reap(true);
}

}  // namespace detail

namespace {

// Closes what it holds unless released: the child's ends of the pipes, and
// everything when spawn fails part-way.
struct fd_holder {
  int fd = -1;
  fd_holder() noexcept = default;
  fd_holder(const fd_holder&) = delete;
  fd_holder& operator=(const fd_holder&) = delete;
  ~fd_holder() {
    if (fd >= 0) ::close(fd);
  }
};

// A descriptor in 0-2 would be overwritten by the child's own dup2s.
int above_stdio(int fd) {
  if (fd > STDERR_FILENO) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  int err = errno;
  ::close(fd);
  if (moved < 0) detail::throw_os_error(err, "fcntl(F_DUPFD_CLOEXEC)");
  return moved;
}

class spawn_actions {
 public:
  spawn_actions() {
    check(::posix_spawn_file_actions_init(&fa_), "posix_spawn_file_actions_init");
    if (int rc = ::posix_spawnattr_init(&attr_)) {
      ::posix_spawn_file_actions_destroy(&fa_);
      detail::throw_os_error(rc, "posix_spawnattr_init");
    }
  }
  spawn_actions(const spawn_actions&) = delete;
  spawn_actions& operator=(const spawn_actions&) = delete;
  ~spawn_actions() {
    ::posix_spawnattr_destroy(&attr_);
    ::posix_spawn_file_actions_destroy(&fa_);
  }

  static void check(int rc, const char* op) {
    if (rc != 0) detail::throw_os_error(rc, op);
  }

  posix_spawn_file_actions_t fa_;
  posix_spawnattr_t attr_;
};

// Connects the child's descriptor `target` as `how` says; a pipe's parent
// end goes to `parent`, its child end to `child_end` (closed after spawn).
void plan_stdio(spawn_actions& a, int target, stdio how, stream& parent, fd_holder& child_end) {
  if (how == stdio::inherit) return;
  if (how == stdio::null) {
    spawn_actions::check(::posix_spawn_file_actions_addopen(&a.fa_, target, "/dev/null",
                                                            target == 0 ? O_RDONLY : O_WRONLY, 0),
                         "posix_spawn_file_actions_addopen");
    return;
  }
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) detail::throw_os_error(errno, "pipe2");
  fd_holder read_end, write_end;
  read_end.fd = p[0];
  write_end.fd = p[1];
  read_end.fd = above_stdio(std::exchange(read_end.fd, -1));
  write_end.fd = above_stdio(std::exchange(write_end.fd, -1));
  fd_holder& mine = target == 0 ? write_end : read_end;
  fd_holder& theirs = target == 0 ? read_end : write_end;
  spawn_actions::check(::posix_spawn_file_actions_adddup2(&a.fa_, theirs.fd, target),
                       "posix_spawn_file_actions_adddup2");
  parent = stream(unique_fd(std::exchange(mine.fd, -1)));  // non-blocking: the parent's end only
  child_end.fd = std::exchange(theirs.fd, -1);
}

void plan_child(spawn_actions& a, const process_options& o) {
  // Nothing but 0-2 crosses exec, whoever opened it without O_CLOEXEC.
  spawn_actions::check(::posix_spawn_file_actions_addclosefrom_np(&a.fa_, STDERR_FILENO + 1),
                       "posix_spawn_file_actions_addclosefrom_np");
  if (!o.cwd.empty())
    spawn_actions::check(::posix_spawn_file_actions_addchdir_np(&a.fa_, o.cwd.c_str()),
                         "posix_spawn_file_actions_addchdir_np");
  // An empty mask and default dispositions, whatever this thread blocks or
  // ignores (grove::run blocks its shutdown signals; grove::io ignores
  // SIGPIPE).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  // glibc's sigfillset leaves out its two internal signals (32 and 33), and
  // its posix_spawn then sets them to SIG_IGN in the child, which exec keeps:
  // a Go or musl child would start with them ignored. Their bits are set by
  // hand (glibc's sigset_t: bit n-1 of a word array stands for signal n).
  all.__val[0] |= (1UL << (32 - 1)) | (1UL << (33 - 1));
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (o.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    spawn_actions::check(::posix_spawnattr_setpgroup(&a.attr_, 0), "posix_spawnattr_setpgroup");
  }
  spawn_actions::check(::posix_spawnattr_setsigmask(&a.attr_, &none), "posix_spawnattr_setsigmask");
  spawn_actions::check(::posix_spawnattr_setsigdefault(&a.attr_, &all),
                       "posix_spawnattr_setsigdefault");
  spawn_actions::check(::posix_spawnattr_setflags(&a.attr_, flags), "posix_spawnattr_setflags");
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// With SIGCHLD ignored, or SA_NOCLDWAIT, the kernel reaps children itself:
// grove's waitid would fail, and its group signals could reach a reused pid.
// An inherited SIG_IGN (some supervisors leave it) is put back to SIG_DFL,
// which also discards SIGCHLD; a program's own SA_NOCLDWAIT is refused.
void claim_sigchld() {
  struct sigaction sa{};
  ::sigaction(SIGCHLD, nullptr, &sa);
  if (sa.sa_flags & SA_NOCLDWAIT)
    throw std::logic_error(
        "grove: process::spawn: SIGCHLD has SA_NOCLDWAIT: the kernel would reap the child first");
  if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN) {
    sa.sa_handler = SIG_DFL;
    ::sigaction(SIGCHLD, &sa, nullptr);
  }
}

}  // namespace

process process::spawn(process_options o) {
  if (o.argv.empty()) throw std::invalid_argument("grove: process::spawn: argv is empty");
  claim_sigchld();
  if (o.terminate_signal <= 0 || o.terminate_signal >= NSIG)
    throw std::invalid_argument("grove: process::spawn: terminate_signal is not a signal");
  auto s = std::make_unique<detail::process_state>();
  s->group = o.new_process_group;
  s->terminate_signal = o.terminate_signal;
  s->kill_grace = o.kill_grace;
  s->in_piped = o.stdin_ == stdio::pipe;
  s->out_piped = o.stdout_ == stdio::pipe;
  s->err_piped = o.stderr_ == stdio::pipe;

  spawn_actions a;
  fd_holder child_in, child_out, child_err;
  plan_stdio(a, STDIN_FILENO, o.stdin_, s->in, child_in);
  plan_stdio(a, STDOUT_FILENO, o.stdout_, s->out, child_out);
  plan_stdio(a, STDERR_FILENO, o.stderr_, s->err, child_err);
  plan_child(a, o);

  std::vector<char*> argv = c_strings(o.argv);
  std::vector<char*> envp;
  if (o.env) envp = c_strings(*o.env);
  pid_t pid = -1;
  int rc =
      ::posix_spawnp(&pid, argv[0], &a.fa_, &a.attr_, argv.data(), o.env ? envp.data() : environ);
  if (rc != 0) detail::throw_os_error(rc, "spawn " + o.argv[0]);
  s->pid = pid;
  s->pidfd = detail::pidfd_open(pid);
  if (s->pidfd < 0) {
    int err = errno;
    ::kill(o.new_process_group ? -pid : pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    detail::throw_os_error(err, "pidfd_open for " + o.argv[0]);
  }
  return process(std::move(s));
}

process::process() noexcept = default;
process::process(std::unique_ptr<detail::process_state> s) noexcept : state_(std::move(s)) {}
process::process(process&&) noexcept = default;
process& process::operator=(process&&) noexcept = default;
process::~process() = default;

pid_t process::pid() const noexcept {
  return state_ ? state_->pid : -1;
}

namespace {
stream& piped(bool is_piped, stream& s, const char* name) {
  if (!is_piped)
    throw std::logic_error(std::string("grove: process::") + name +
                           ": that descriptor is not a pipe");
  return s;
}
}  // namespace

stream& process::stdin_stream() {
  return piped(state_ && state_->in_piped, state_->in, "stdin_stream");
}
stream& process::stdout_stream() {
  return piped(state_ && state_->out_piped, state_->out, "stdout_stream");
}
stream& process::stderr_stream() {
  return piped(state_ && state_->err_piped, state_->err, "stderr_stream");
}

void process::send_signal(int signo) {
  if (!state_) return;
  if (state_->signal(signo) != 0 && errno != ESRCH)
    detail::throw_os_error(errno, "send signal to pid " + std::to_string(state_->pid));
}

void process::set_terminate_signal(int signo) {
  if (signo <= 0 || signo >= NSIG)
    throw std::invalid_argument("grove: process::set_terminate_signal: not a signal");
  if (state_) state_->terminate_signal = signo;
}

std::optional<exit_status> process::status() const noexcept {
  return state_ ? state_->status : std::nullopt;
}

namespace {

// A virtual clock would jump over the child's run time and its kill_grace.
void check_wait() {
  if (event_loop::current()->is_virtual())
    throw std::logic_error(
        "grove: waiting for a process needs a real-clock loop, not a virtual one");
}

task<exit_status> await_exit(detail::process_state& s) {
  check_wait();
  co_return co_await detail::exit_awaiter(s);
}

task<exit_status> terminate_and_wait(detail::process_state& s, duration grace) {
  check_wait();
  s.begin_terminate(grace);
  co_return co_await detail::exit_awaiter(s);
}

}  // namespace

// always_start: a cancelled caller still gets its child terminated and reaped.
task<exit_status> process::wait() {
  if (!state_) throw std::logic_error("grove: process::wait on an empty process");
  return always_start(await_exit(*state_));
}

task<exit_status> process::terminate(duration grace) {
  if (!state_) throw std::logic_error("grove: process::terminate on an empty process");
  return always_start(terminate_and_wait(*state_, grace));
}

}  // namespace grove
