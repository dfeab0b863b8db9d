// The hooks behind grove's debug mode, trace export and task names
// (grove/debug.hpp is the public side). Every hook is one thread-local
// pointer test when nothing listens: `sink` is null unless the running loop
// has debug logging or a trace file, so a program that uses neither pays a
// predictable branch per task event and nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace grove::detail {

struct promise_base;

// What happened to a frame, in the order a frame sees them.
enum class frame_event : unsigned char {
  attached,          // spawned into a group, or awaited: it has a parent now
  started,           // first ran (known at its first own event: no hook at its start)
  suspended,         // it suspends in a wait (not logged)
  resumed,           // resumed after a wait (not logged)
  cancel_requested,  // a cancellation reached it; it notices at its next suspension
  cancel_delivered,  // a cancellation reached it suspended: it unwinds now
  cleanup_started,   // a finally's cleanup began (the event is the cleanup's frame)
  finished,          // returned or threw (state says which)
  unwound,           // ended by cancellation, noticed at a suspension point
  destroyed,         // the frame is gone (not logged: closes a trace slice left open)
};

// Receives the events of the frames of one loop (src/core/debug.cpp).
class trace_sink {
 public:
  virtual void on_frame(const promise_base& p, frame_event e) noexcept = 0;
  // The process received `signo` (0: the grace period ran out) and run
  // entered shutdown stage `stage`; 0 for a signal that starts no stage.
  virtual void on_signal(int signo, int stage) noexcept = 0;
  // The process is about to die without unwinding (a third signal).
  virtual void on_exit() noexcept = 0;

 protected:
  ~trace_sink() = default;
};

// A loop's debug mode (src/core/debug.cpp), owned by the loop.
class debug_session;
struct debug_session_deleter {
  void operator()(debug_session* s) const noexcept;
};
using debug_session_ptr = std::unique_ptr<debug_session, debug_session_deleter>;

// Frames attached on this thread (to a runner: awaited, spawned, the root)
// and not yet destroyed. A loop compares it when it stops: every frame of
// its tree is gone by then.
extern constinit thread_local std::size_t tl_attached;

// The running loop's sink, or null (set by the loop while it runs).
extern constinit thread_local trace_sink* tl_trace;

inline void trace(const promise_base& p, frame_event e) noexcept {
  if (tl_trace != nullptr) [[unlikely]]
    tl_trace->on_frame(p, e);
}

// Prints "N tasks ... still pending" (with the names of named ones) and the
// loop's state to stderr (src/core/debug.cpp); the loop aborts after it
// unless grove was built with NDEBUG.
void report_pending_tasks(std::size_t n) noexcept;

// Task names and ids live outside the frame (frames stay small); a frame
// that has an entry carries promise_base::traced, and drops its entry when
// destroyed.
void name_frame(promise_base& p, std::string_view name);
void forget_frame(const promise_base& p) noexcept;
// How many frames have an entry (for tests: entries go with their frames).
std::size_t traced_frames() noexcept;
// A trace file name with "%p" replaced by the process id.
std::string trace_path(const std::string& pattern);
// Records when a named (or traced) frame suspended, for the dump's "for how
// long", and tells the sink.
void note_suspended(promise_base& p) noexcept;

}  // namespace grove::detail
