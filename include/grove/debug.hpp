// Seeing inside a running program: task names, the task-tree dump, debug
// logging and Chrome trace export. docs/debugging.md shows them at work.
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <grove/detail/trace.hpp>
#include <grove/task.hpp>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace grove {

// Gives `t` a name, shown by the task-tree dump, the debug log and the
// trace. The name lives in a table beside the frame (one hash-map insert
// here), which drops it when the frame is destroyed; a named task's
// suspensions are timed for the dump's "for how long". The dump shows an
// unnamed task by its role alone; the debug log and the trace number every
// task (`task #7`). Throws std::bad_alloc.
template <class T>
task<T> named(std::string_view name, task<T> t) {
  if (t) detail::name_frame(t.handle().promise(), name);
  return t;
}

// A callable that names every task `fn` returns: for task_group::spawn and
// run_tasks jobs, `g.spawn(grove::named("fetch", fetch), url)`.
template <class F>
  requires(!detail::is_task<std::remove_cvref_t<F>>::value && !awaitable<F>)
auto named(std::string_view name, F&& fn) {
  return [name = std::string(name), fn = std::forward<F>(fn)](auto&&... args) mutable {
    return named(name, std::invoke(fn, std::forward<decltype(args)>(args)...));
  };
}

// A task's state, as the task tree sees it.
enum class task_status {
  not_started,  // spawned into a group; it starts in the loop's next batch
  running,      // running now, ready to run, or in a wait that cannot be cancelled
  suspended,    // in a cancellable wait (task_info::waits_on says which)
  done,         // ended: returned a value
  failed,       // ended: threw
  cancelled,    // ended: unwound after a cancellation
};

// One task of the tree, in the dump's order (parents before children).
struct task_info {
  int depth = 0;     // 0 for the loop's root task
  std::string role;  // "main", "task", "body", "child", "cleanup"
  std::string name;  // empty when unnamed
  task_status status = task_status::running;
  bool cancelling = false;  // a cancellation was asked for and it has not ended yet
  std::string waits_on;  // when suspended: what on ("sleep until ...", "task_group (3 children)")
  std::optional<std::chrono::nanoseconds>
      for_how_long;  // suspended this long (named tasks, debug mode)
};

// The live task tree of the loop running on this thread (empty outside a
// loop). Does not suspend. Throws std::bad_alloc.
std::vector<task_info> task_tree();

// Prints the task tree of the loop running on this thread: every live task
// with its name, state (running or ready to run, suspended and on what,
// cancelling, not started) and, for a named task or in debug mode, how long
// it has been in that state. Groups show their body and children, scopes
// and finally their parts. Called on a loop thread (inside a task or a loop
// callback); it does not suspend, and changes nothing. Outside a loop it
// prints one line saying so. Throws what writing to `out` throws.
void dump_task_tree(std::ostream& out);
std::string task_tree_text();

// "SIGTERM", or "signal 42" for a number without a name (a real-time signal).
std::string signal_name(int signo);

// Debug mode for one loop (grove::run takes it from run_options::debug,
// which defaults to the GROVE_DEBUG and GROVE_TRACE environment variables).
struct debug_options {
  // Log every task's events to `log_file` (stderr when null), one line each,
  // with the loop clock's time: spawned, started, cancel requested, cancel
  // delivered, cleanup started, finished, failed, cancelled.
  bool log = false;
  std::FILE* log_file = nullptr;
  // With `log`: warn when one callback (a task running until its next
  // suspension, or an fd event) blocks the loop longer than this, naming
  // the task. Zero: no warning.
  std::chrono::nanoseconds slow_callback = std::chrono::milliseconds(100);
  // Write a Chrome trace-event file here when the loop stops (opens in
  // Perfetto or chrome://tracing): each task a slice, each cleanup a slice
  // of its own, cancellations and signals instant events. Empty: none.
  std::string trace_file;

  bool active() const noexcept { return log || !trace_file.empty(); }
  // GROVE_DEBUG=1 turns on `log` (GROVE_DEBUG=0 or unset: off); GROVE_TRACE=
  // FILE sets trace_file. Anything else in GROVE_DEBUG is ignored.
  static debug_options from_environment();
};

}  // namespace grove
