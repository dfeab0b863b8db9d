// grove::process: child processes whose every wait is cancellable, and whose
// cancellation leaves no orphan, no zombie and no leaked descriptor.
// docs/processes.md explains the terminate sequence, process groups and what
// a child inherits.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <grove/event_loop.hpp>
#include <grove/io.hpp>
#include <grove/task.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace grove {

// What one of the child's standard descriptors is connected to.
enum class stdio {
  inherit,  // the parent's own descriptor
  null,     // /dev/null
  pipe,     // a pipe whose other end is a grove::stream in the parent
};

struct process_options {
  // argv[0] is searched in the parent's PATH when it has no '/'.
  std::vector<std::string> argv;
  // The child's whole environment ("NAME=value" each); nullopt: the parent's.
  std::optional<std::vector<std::string>> env;
  // The child's working directory; empty: the parent's.
  std::string cwd;
  stdio stdin_ = stdio::inherit;
  stdio stdout_ = stdio::inherit;
  stdio stderr_ = stdio::inherit;
  // The child leads a process group of its own, so signals reach everything
  // it starts (a shell's children too). Without one, only the child is
  // signalled.
  bool new_process_group = true;
  // Sent first by the terminate sequence; SIGKILL follows after kill_grace.
  int terminate_signal = SIGTERM;
  duration kill_grace = std::chrono::seconds(5);
};

// grove::signal_name ("SIGTERM") is declared in grove/debug.hpp.

// How a child ended: exited with a code, or killed by a signal.
class exit_status {
 public:
  // From waitid's siginfo_t: `how` is si_code (CLD_EXITED, CLD_KILLED,
  // CLD_DUMPED), `value` si_status.
  static exit_status from_siginfo(int how, int value) noexcept;

  bool exited() const noexcept { return !signaled_; }
  // The exit code (0-255); 0 when signaled.
  int code() const noexcept { return signaled_ ? 0 : value_; }
  bool signaled() const noexcept { return signaled_; }
  // The signal that killed it; 0 when it exited.
  int signal() const noexcept { return signaled_ ? value_ : 0; }
  // What a shell's $? would say: the code, or 128 + the signal.
  int shell_code() const noexcept { return signaled_ ? 128 + value_ : value_; }
  bool ok() const noexcept { return !signaled_ && value_ == 0; }
  // "exited with code 3", "killed by SIGTERM".
  std::string describe() const;

  friend bool operator==(const exit_status&, const exit_status&) = default;

 private:
  int value_ = 0;
  bool signaled_ = false;
};

namespace detail {
struct process_state;
}

// A running (or finished) child process. Move-only.
//
// Tracked by a pidfd, waited for through the loop: no SIGCHLD handler, and
// no PID-reuse race (the pid is never signalled after it was reaped). The
// process must not be reaped by anyone else: a SIGCHLD handler of the
// program's own that calls waitpid(-1) breaks it. Waits need a real-clock
// loop (a virtual clock would jump over the child's run time).
//
// A child in its own process group does not own the terminal: if it reads
// an inherited terminal stdin it is stopped (SIGTTIN). Give it stdio::null
// or a pipe, or new_process_group = false.
class process {
 public:
  // Starts the child with posix_spawn: default signal dispositions, an empty
  // signal mask (whatever the calling thread blocks, grove::run's signals
  // included), no descriptor besides 0-2, and its own process group unless
  // told otherwise. Does not suspend; blocks only for the spawn syscall.
  // Throws std::invalid_argument for an empty argv, and std::system_error
  // with the errno (ENOENT, EACCES, ...) when the program cannot be started:
  // nothing is left behind then. SIGCHLD ignored (SIG_IGN, inherited from
  // a supervisor) is put back to SIG_DFL, or the kernel would reap the child
  // before grove; SA_NOCLDWAIT set by the program throws std::logic_error.
  static process spawn(process_options options);

  process() noexcept;
  process(process&&) noexcept;
  process& operator=(process&&) noexcept;
  // A child that was never reaped is killed (SIGKILL to its group) and
  // reaped here, synchronously: the thread blocks until the kernel has torn
  // the child down, usually well under a millisecond. Destroying a process
  // while a wait() on it is suspended is a bug.
  ~process();

  pid_t pid() const noexcept;
  // The parent's ends of the pipes (stdio::pipe). std::logic_error if that
  // descriptor is not a pipe.
  stream& stdin_stream();
  stream& stdout_stream();
  stream& stderr_stream();

  // Sends `signo` to the child's process group (to the child alone when it
  // has none). Does nothing once the child is reaped. Throws
  // std::system_error when the kernel refuses (EINVAL for a bad signal).
  void send_signal(int signo);

  // The signal the terminate sequence sends first, from now on (a job runner
  // forwards the signal its user sent). std::invalid_argument if not a signal.
  void set_terminate_signal(int signo);

  // Suspends until the child exits, reaps it and gives its status (at once
  // if it was reaped already). Several tasks may wait at once (a supervisor
  // waits while a controller terminates); each gets the status. Throws
  // std::logic_error on a virtual-clock loop.
  //
  // Cancelling it runs the terminate sequence: terminate_signal to the
  // group, then SIGCONT (a stopped child would keep the signal pending);
  // after kill_grace, SIGKILL to the group in stop-and-kill rounds
  // (so a process forking meanwhile cannot escape); the child is reaped, and
  // anything left in its group is SIGKILLed, before the cancellation
  // completes. The sequence is shielded: a further graceful cancellation
  // changes nothing, while a forced shutdown (grove::run's second signal)
  // sends SIGKILL at once. A wait() started in a cancelled task runs the
  // sequence too.
  task<exit_status> wait();

  // Runs the terminate sequence now with `grace` instead of kill_grace and
  // gives the status (the child's, if it exited before the signal got
  // there). During a sequence that runs already, a shorter grace brings the
  // SIGKILL forward. Cancelling it changes nothing but a forced shutdown's
  // SIGKILL.
  task<exit_status> terminate(duration grace);

  // The status, once the child is reaped.
  std::optional<exit_status> status() const noexcept;

 private:
  explicit process(std::unique_ptr<detail::process_state> s) noexcept;
  std::unique_ptr<detail::process_state> state_;
};

struct run_process_options {
  // Fed to the child's stdin, which is then closed. Empty: stdin is /dev/null.
  std::string input;
  // Captured into completed_process (true), or inherited from the parent.
  bool capture_stdout = true;
  bool capture_stderr = true;
  // A status other than "exited with 0" throws process_error.
  bool check = true;
  std::string cwd;
  std::optional<std::vector<std::string>> env;
  duration kill_grace = std::chrono::seconds(5);
  // After the child exits, its output is read until the pipes end, or for
  // this long at most: a background grandchild that inherited them must not
  // hang run_process (Go's WaitDelay). What it writes later is not read.
  duration drain_timeout = std::chrono::seconds(1);
};

struct completed_process {
  exit_status status;
  std::string out;  // captured stdout (empty when not captured)
  std::string err;  // captured stderr
};

// Thrown by run_process (check) when the child did not exit with 0.
class process_error : public std::runtime_error {
 public:
  process_error(std::vector<std::string> argv, completed_process result);
  const std::vector<std::string>& argv() const noexcept { return argv_; }
  const completed_process& result() const noexcept { return result_; }

 private:
  std::vector<std::string> argv_;
  completed_process result_;
};

// Runs argv to the end (Trio's run_process): feeds `input`, captures stdout
// and stderr as they arrive, waits, and gives the completed_process.
// Suspends until the child has exited and its output is drained (see
// drain_timeout). Cancellation terminates the child as wait() does, and
// completes once it is reaped. Throws what spawn throws, process_error
// (check), and std::system_error for a failing pipe.
task<completed_process> run_process(std::vector<std::string> argv, run_process_options options);
// The same with default options. (An overload, not a default argument: g++ 12
// destroys a default-argument temporary in a co_await operand twice;
// docs/gcc12.md.)
task<completed_process> run_process(std::vector<std::string> argv);

}  // namespace grove
