// grove::run: the program's entry point — a fresh event loop, staged
// shutdown on SIGINT/SIGTERM, and an exit the way Unix expects.
// docs/shutdown.md explains the stages and how they map onto terminals,
// Kubernetes, systemd and Slurm.
#pragma once

#include <signal.h>

#include <chrono>
#include <exception>
#include <functional>
#include <grove/debug.hpp>
#include <grove/event_loop.hpp>
#include <grove/task.hpp>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace grove {

// How grove::run reacts to shutdown signals.
struct run_options {
  // The signals that start a shutdown. run blocks them in the calling thread
  // and reads them on the loop thread (signalfd); threads created from then
  // on inherit the block. A signal whose disposition is SIG_IGN when run
  // starts (nohup, a background job of a non-interactive shell) stays
  // ignored. A handler installed before run does not run while run is
  // active (the signal stays blocked and run reads it); dispositions are
  // never changed. SIGKILL and SIGSTOP cannot be caught: run throws
  // std::invalid_argument for them. Empty: run installs no signal bridge
  // (and a main blocked forever is then reported as a deadlock).
  std::vector<int> signals{SIGINT, SIGTERM};

  // How long the graceful stage may last: a timer armed at the first signal
  // forces the shutdown when it expires (as a second signal would). Keep it
  // below the supervisor's own deadline (Kubernetes
  // terminationGracePeriodSeconds, systemd TimeoutStopSec, Slurm KillWait).
  // Zero or less: the first signal forces on the next loop iteration;
  // duration::max(): no limit.
  duration grace = std::chrono::seconds(10);

  // A signal arriving within this window after the last counted signal is a
  // duplicate and counts for nothing (a terminal and a wrapper that forwards
  // signals may deliver the same Ctrl+C twice). Measured on the loop's clock
  // from the last counted signal, so a steady stream still advances the
  // stages. Zero: every signal counts.
  duration debounce = std::chrono::milliseconds(50);

  // Called on the loop thread, before the stage takes effect, for every
  // counted signal: `signo` is the signal, `stage` what it does — 1 graceful
  // shutdown begins, 2 shutdown is forced, 3 the process exits at once. The
  // n-th counted signal normally has stage n; after the grace period has
  // forced the shutdown, the next signal has stage 3. When the grace period
  // runs out the hook is called once with signo 0 and stage 2. Typical use:
  // print "stopping; press Ctrl+C again to force". An exception it throws is
  // printed to stderr and the stage proceeds. Empty: nothing is called.
  std::function<void(int signo, int stage)> on_signal;

  // On this signal run prints the task tree to stderr (grove::dump_task_tree)
  // and the program goes on undisturbed: `kill -USR1 <pid>` answers "which
  // task is stuck, and on what?". It is blocked and read like the shutdown
  // signals, but only when its disposition is SIG_DFL when run starts: an
  // ignored signal stays ignored, and a handler the program installed keeps
  // its signal. 0: none. Must not be one of `signals` (std::invalid_argument).
  int dump_signal = SIGUSR1;

  // When a forced shutdown (second signal, or the grace period running out)
  // cuts cleanups short, print the tasks that were still running or cleaning
  // up, and what each waited on, to stderr: why the shutdown took so long.
  bool report_forced = true;

  // Debug logging and trace export (grove/debug.hpp); by default what the
  // GROVE_DEBUG and GROVE_TRACE environment variables ask for.
  debug_options debug = debug_options::from_environment();
};

namespace detail {

class signal_bridge;  // src/runner/signal_bridge.hpp: OS plumbing, not public

// The part of run() that does not depend on main's type (src/runner/run.cpp).
class run_session {
 public:
  // Throws what signal_bridge's constructor throws.
  explicit run_session(run_options options);
  run_session(const run_session&) = delete;
  run_session& operator=(const run_session&) = delete;
  ~run_session();

  event_loop& loop() noexcept { return loop_; }

  // After main has finished: prints `error` (every member of an
  // exception_group) to stderr; after a shutdown signal, flushes stdio and
  // re-raises the first signal (does not return); otherwise returns the exit
  // code: 1 on error or when main was cancelled without a signal, else `code`.
  int finish(int code, const std::exception_ptr& error, bool cancelled);

 private:
  run_options options_;
  event_loop loop_;
  std::unique_ptr<signal_bridge> bridge_;
};

// Prints "grove: main failed: ..." for `error` to stderr, one line per
// member of an exception_group (nested groups indented).
void report_main_error(const std::exception_ptr& error) noexcept;

}  // namespace detail

// Runs `main()` — a callable returning task<int> or task<void> — as the root
// task of a fresh event loop on the real clock, and returns the exit code:
// main's value (0 for task<void>). Blocks until main has finished; after it
// returns nothing of main is left running.
//
// Signals (options.signals, default SIGINT and SIGTERM) are blocked and
// bridged to the loop before main is called:
//   - first signal: the root is cancelled gracefully; shielded cleanups
//     (grove::finally, shield) keep running; the grace timer starts;
//   - second signal, or the grace period running out: forced cancellation;
//     shields break, every frame is destroyed, RAII still runs;
//   - third signal: stdio is flushed and the process dies at once by the
//     first signal; no destructor runs.
// A duplicate within options.debounce counts once. When main has finished
// after a shutdown signal, run flushes C and C++ stdio, restores the default
// disposition and re-raises the first signal, so the parent sees "killed by
// SIGINT" (shell status 130, 143 for SIGTERM) and a shell loop around the
// program stops; run does not return then. Without a signal, run restores
// the signal mask it changed and returns.
//
// Errors: an exception escaping main (or thrown by calling it) is printed
// to stderr — every member of an exception_group on its own line — and run
// returns 1. A main cancelled without a signal (someone called
// event_loop::cancel_root) returns 1 with a message. Throws
// std::logic_error when called while a loop runs on this thread (inside a
// task, co_await the work instead) or while another run is active in the
// process; std::invalid_argument for an uncatchable signal in
// options.signals. Call it from the main thread before starting other
// threads: a thread that does not block the signals can take them first.
template <class F>
int run(F main, run_options options = {}) {
  static_assert(std::is_invocable_v<F&>, "grove::run: main must be callable with no arguments");
  using result_t = std::invoke_result_t<F&>;
  static_assert(std::is_same_v<result_t, task<int>> || std::is_same_v<result_t, task<void>>,
                "grove::run: main must return grove::task<int> or grove::task<void>");

  detail::run_session session(std::move(options));
  int code = 0;
  std::exception_ptr error;
  bool cancelled = false;
  try {
    auto result = session.loop().run(std::invoke(main));
    if (result.has_error()) {
      error = result.error();
    } else if (result.cancelled()) {
      cancelled = true;
    } else if constexpr (std::is_same_v<result_t, task<int>>) {
      code = result.value();
    }
  } catch (...) {
    error = std::current_exception();
  }
  return session.finish(code, error, cancelled);
}

}  // namespace grove
