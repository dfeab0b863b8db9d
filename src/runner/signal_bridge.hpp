// The signal bridge behind grove::run: turns SIGINT/SIGTERM into staged
// shutdown on the loop thread.
//
// How it works. The shutdown signals are blocked in the thread that calls
// run (threads it creates later inherit the mask), so the kernel keeps them
// pending instead of running a handler or the default action; a signalfd
// lists them, and the loop polls that fd with everything else. Reading a
// signal is therefore ordinary loop-thread code: no async-signal-safety
// rules, no self-pipe, no flag to poll. The loop polls between batches, so a
// signal is seen within one batch even when main keeps the ready queue full.
//
// Stages (DESIGN.md §1.7):
//   1 graceful  cancel_root(): shielded cleanups keep running; the grace
//               timer is armed.
//   2 forced    force_cancel(): shields break, RAII still runs. Reached by the
//               next counted signal or by the grace timer.
//   3 immediate flush stdio, re-raise the first signal; nothing else runs.
// A signal arriving within `debounce` of the last counted one is a duplicate
// (a terminal and a supervisor both forwarding the same Ctrl+C) and is
// dropped. After main has finished, the first signal is re-raised with its
// default disposition so the parent sees "killed by SIGINT/SIGTERM".
#pragma once

#include <signal.h>

#include <cstdint>
#include <grove/detail/proxy_frame.hpp>
#include <grove/event_loop.hpp>

namespace grove {

struct run_options;

namespace detail {

class signal_bridge {
 public:
  // Checks that run() is not nested and not already active in another
  // thread (std::logic_error), validates the signals and the dump signal
  // (std::invalid_argument for SIGKILL, SIGSTOP, a number that is not a
  // signal, or the dump signal among the shutdown signals), blocks the
  // signals that are not ignored (SIG_IGN stays ignored; the dump signal is
  // taken only at SIG_DFL) in the calling thread, opens a signalfd and
  // registers it with `loop` (passive when only the dump signal is read: it
  // wakes no task, so a deadlock is still reported). Throws
  // std::system_error when the kernel refuses; nothing is left changed then.
  // `options` must outlive the bridge.
  signal_bridge(event_loop& loop, const run_options& options);
  signal_bridge(const signal_bridge&) = delete;
  signal_bridge& operator=(const signal_bridge&) = delete;
  // Unregisters and closes the signalfd, and unblocks the signals that were
  // not blocked before (the rest of the thread's mask is left as it is).
  ~signal_bridge();

  // 0 while no shutdown signal was counted, then 1, 2 (forced) or 3.
  int stage() const noexcept { return stage_; }
  // The signal that started the shutdown (0 when none did).
  int first_signal() const noexcept { return first_signo_; }

  // After the loop stopped: consumes signals still pending on the signalfd.
  // One that arrived before any was counted starts a (finished) shutdown, so
  // the process still dies by it, after flushing, instead of by the default
  // action when the mask is restored.
  void drain() noexcept;

  // Flushes C and C++ stdio, restores SIG_DFL for `signo`, unblocks it in
  // this thread and raises it. If the process survives its default action
  // (an ignore-by-default signal, or PID 1 in a PID namespace, where the
  // kernel drops default-action signals to init), exits with 128 + signo.
  [[noreturn]] static void die_by(int signo) noexcept;

 private:
  struct watch : fd_watch {
    signal_bridge* self = nullptr;
  };
  static void on_readable(fd_watch* w, std::uint32_t events);
  void on_signal(int signo);
  void on_grace() noexcept;
  void enter_stage(int stage, int signo) noexcept;
  void call_hook(int signo, int stage) noexcept;
  void report_forced(int signo) noexcept;
  void release() noexcept;

  event_loop* loop_;
  const run_options* options_;
  sigset_t set_{};          // the signals this bridge owns
  sigset_t was_blocked_{};  // the thread's mask before the bridge
  int fd_ = -1;
  watch watch_;
  bool blocked_ = false;
  bool watching_ = false;
  bool claimed_ = false;  // holds the process-wide "run is active" slot
  timer_node grace_timer_;
  proxy_frame grace_proxy_;
  time_point last_counted_{};
  int stage_ = 0;
  int first_signo_ = 0;
};

}  // namespace detail
}  // namespace grove
