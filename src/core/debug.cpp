// Task names, the task-tree dump, debug logging and trace export.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grove/debug.hpp>
#include <grove/event_loop.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "debug_session.hpp"

namespace grove {
namespace detail {

constinit thread_local trace_sink* tl_trace = nullptr;
constinit thread_local std::size_t tl_attached = 0;

namespace {

// What grove knows about a frame besides the frame itself.
struct frame_record {
  std::string name;
  std::uint64_t id = 0;
  std::optional<time_point> suspended_at;  // when it last suspended, if seen
  bool cleanup = false;                    // a finally's cleanup
  bool open = false;                       // a trace slice was begun
  bool started = false;                    // its first run was seen
};

struct frame_table {
  std::unordered_map<const promise_base*, frame_record> records;
  std::uint64_t next_id = 1;

  frame_record& of(promise_base& p) {
    p.traced = true;
    frame_record& r = records[&p];
    if (r.id == 0) r.id = next_id++;
    return r;
  }
  const frame_record* find(const promise_base& p) const {
    if (!p.traced) return nullptr;
    auto it = records.find(&p);
    return it == records.end() ? nullptr : &it->second;
  }
};

thread_local frame_table tl_frames;

time_point loop_now() noexcept {
  event_loop* loop = event_loop::current();
  return loop != nullptr ? loop->now() : time_point{};
}

std::string seconds(duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", std::chrono::duration<double>(d).count());
  return buf;
}

// The log's label: the number, which tells apart tasks of one name, and
// the name.
std::string full_label(const frame_record& r) {
  std::string out = " #" + std::to_string(r.id);
  if (!r.name.empty()) out += " \"" + r.name + "\"";
  return out;
}

// The dump's label: a named frame shows its name; an unnamed one its number
// (known only in debug mode or once named).
std::string label(const frame_record* r) {
  if (r == nullptr) return "";
  if (!r->name.empty()) return " \"" + r->name + "\"";
  return " #" + std::to_string(r->id);
}

// Up the chain, ignoring shields: was a cancellation asked for?
bool cancel_asked(const cancel_node* n) noexcept {
  for (; n != nullptr; n = n->parent)
    if (n->cancelled) return true;
  return false;
}

}  // namespace

// "%p" in a trace file's name becomes the process id: the children of a
// grove program inherit GROVE_TRACE, and a child that is itself a grove
// program must not overwrite its parent's trace.
std::string trace_path(const std::string& pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'p') {
      out += std::to_string(::getpid());
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

std::size_t traced_frames() noexcept {
  return tl_frames.records.size();
}

void name_frame(promise_base& p, std::string_view name) {
  tl_frames.of(p).name = name;
}

void forget_frame(const promise_base& p) noexcept {
  if (tl_trace != nullptr) tl_trace->on_frame(p, frame_event::destroyed);
  tl_frames.records.erase(&p);
}

void note_suspended(promise_base& p) noexcept {
  if (tl_trace != nullptr) tl_trace->on_frame(p, frame_event::suspended);
  try {
    tl_frames.of(p).suspended_at = loop_now();
  } catch (...) {  // out of memory: the dump shows no duration
  }
}

namespace {

// While task_tree() runs: where describe_frame also puts each task.
thread_local std::vector<task_info>* tl_collect = nullptr;

task_status status_of(const promise_base& p, bool started) noexcept {
  if (!started) return task_status::not_started;
  switch (p.state) {
    case task_state::value:
      return task_status::done;
    case task_state::error:
      return task_status::failed;
    case task_state::cancelled:
      return task_status::cancelled;
    case task_state::running:
      break;
  }
  return p.waiting_on == nullptr ? task_status::running : task_status::suspended;
}

const char* status_text(task_status s) noexcept {
  switch (s) {
    case task_status::not_started:
      return "not started";
    case task_status::running:
      return "running";
    case task_status::suspended:
      return "suspended";
    case task_status::done:
      return "done";
    case task_status::failed:
      return "failed";
    case task_status::cancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace

// One line for the frame (its role, name, state, for how long), then what
// it waits on, one level deeper.
void describe_frame(const promise_base& p, std::string& out, int depth, const char* role,
                    bool started) {
  const frame_record* r = tl_frames.find(p);
  task_info info;
  info.depth = depth;
  info.role = role;
  if (r != nullptr) info.name = r->name;
  info.status = status_of(p, started);
  bool live = info.status == task_status::running || info.status == task_status::suspended;
  info.cancelling = live && cancel_asked(p.node);
  if (info.status == task_status::suspended && r != nullptr && r->suspended_at)
    info.for_how_long = loop_now() - *r->suspended_at;

  indent(out, depth);
  out += role;
  out += label(r);
  out += ": ";
  if (info.cancelling) out += "cancelling, ";
  out += status_text(info.status);
  if (info.status == task_status::running)
    out += " (or ready to run, or in a wait that cannot be cancelled)";
  if (info.for_how_long) out += " for " + seconds(*info.for_how_long);
  out += '\n';
  std::size_t slot = 0;
  if (tl_collect != nullptr) {
    slot = tl_collect->size();
    tl_collect->push_back(info);
  }
  if (info.status != task_status::suspended) return;
  std::size_t from = out.size();
  p.waiting_on->describe(out, depth + 1);
  if (tl_collect != nullptr) {  // the wait's own line, without its indent
    std::string_view line(out.data() + from, out.size() - from);
    line = line.substr(0, line.find('\n'));
    line.remove_prefix(std::min(line.find_first_not_of(' '), line.size()));
    (*tl_collect)[slot].waits_on = line;
  }
}

void report_leaked_waiters(const char* what, std::size_t n) noexcept {
  try {
    std::string msg = "grove: leak: a " + std::string(what) + " was destroyed while " +
                      std::to_string(n) + (n == 1 ? " task waits" : " tasks wait") +
                      " on it; they can never resume.\n" + task_tree_text();
    std::fputs(msg.c_str(), stderr);
  } catch (...) {
    std::fprintf(stderr, "grove: leak: a %s was destroyed while %zu tasks wait on it\n", what, n);
  }
  std::fflush(stderr);
}

void report_pending_tasks(std::size_t n) noexcept {
  try {
    std::string msg =
        "grove: leak: " + std::to_string(n) +
        (n == 1 ? " task that ran on this loop is" : " tasks that ran on this loop are") +
        " still pending as it stops: outside its task tree (a runner's API used by "
        "hand?), never resumed, never destroyed.";
    std::string names;
    for (const auto& [p, r] : tl_frames.records)
      if (p->attached && !r.name.empty()) names += " \"" + r.name + "\"";
    if (!names.empty()) msg += " Named:" + names + ".";
    msg += '\n';
    std::fputs(msg.c_str(), stderr);
  } catch (...) {
    std::fprintf(stderr, "grove: leak: %zu tasks still pending as their loop stops\n", n);
  }
  std::fflush(stderr);
}

// ------------------------------------------------------------ the session

namespace {

const char* event_name(frame_event e, const promise_base& p) noexcept {
  switch (e) {
    case frame_event::attached:
      return "spawned";
    case frame_event::started:
      return "started";
    case frame_event::suspended:
      return "suspended";
    case frame_event::resumed:
      return "resumed";
    case frame_event::cancel_requested:
      return "cancel requested (noticed at its next suspension)";
    case frame_event::cancel_delivered:
      return "cancel delivered (unwinding)";
    case frame_event::cleanup_started:
      return "cleanup started";
    case frame_event::finished:
      return p.state == task_state::error ? "failed" : "finished";
    case frame_event::unwound:
      return "cancelled";
    case frame_event::destroyed:
      return "destroyed";
  }
  return "?";
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

class debug_session final : public trace_sink {
 public:
  // Created when its loop starts running (times count from then).
  explicit debug_session(debug_options o) : options_(std::move(o)) {
    log_ = options_.log_file != nullptr ? options_.log_file : stderr;
  }
  ~debug_session() { write_trace(); }

  // A frame's first run is known by its first own event (it suspends,
  // ends or unwinds): no hook at its start keeps frames small. It began
  // where the previous segment ended: frames run one after another.
  void on_frame(const promise_base& cp, frame_event e) noexcept override {
    auto& p = const_cast<promise_base&>(cp);  // the frame is ours to mark
    try {
      frame_record& r = tl_frames.of(p);
      time_point now = loop_now();
      bool runs = e == frame_event::suspended || e == frame_event::finished ||
                  e == frame_event::unwound;  // the frame ran until now
      if (runs && !r.started) {
        r.started = true;
        log(r, "started", segment_loop_start_);
        trace_event(r, frame_event::started, segment_loop_start_);
      }
      if (runs) close_segment(&r);
      if (e == frame_event::resumed) open_segment();
      if (e == frame_event::cleanup_started) r.cleanup = true;
      if (e != frame_event::resumed && e != frame_event::suspended && e != frame_event::destroyed)
        log(r, event_name(e, p), now);
      trace_event(r, e, now);
    } catch (...) {  // out of memory: this event is not recorded
    }
  }

  void on_signal(int signo, int stage) noexcept override {
    try {
      time_point now = loop_now();
      std::string what = signo == 0 ? std::string("grace period over") : signal_name(signo);
      if (stage > 0) what += ": shutdown stage " + std::to_string(stage);
      if (options_.log)
        std::fprintf(log_, "grove debug %s  %s\n", stamp(now).c_str(), what.c_str());
      if (tracing()) instant(what, "signal", now, nullptr);
    } catch (...) {
    }
  }

  // The process is about to die (a third signal): the trace is written now.
  void on_exit() noexcept override { write_trace(); }

  void before_callback() noexcept {
    longest_ns_ = 0;
    longest_.clear();
    open_segment();
  }
  // After the callback: the longest stretch one task (or the loop's own
  // code, between tasks) ran for, if the whole callback was slow.
  void after_callback(std::int64_t ns) noexcept {
    auto limit = options_.slow_callback.count();
    try {
      close_segment(nullptr);
    } catch (...) {
    }
    if (ns < limit) return;
    std::fprintf(
        log_,
        "grove debug %s  warning: a callback blocked the loop for %.1f ms, %.1f ms of it in "
        "%s; a task that computes or blocks this long should use grove::to_thread\n",
        stamp(loop_now()).c_str(), static_cast<double>(ns) / 1e6,
        static_cast<double>(longest_ns_) / 1e6,
        longest_.empty() ? "the loop's own code (an fd event, a timer)"
                         : ("task" + longest_).c_str());
  }
  bool wants_callback_times() const noexcept {
    return options_.log && options_.slow_callback.count() > 0;
  }

 private:
  bool tracing() const noexcept { return !options_.trace_file.empty(); }

  std::string stamp(time_point now) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%12.6f", std::chrono::duration<double>(now - start_).count());
    return buf;
  }

  void log(const frame_record& r, const char* what, time_point now) {
    if (!options_.log) return;
    std::fprintf(log_, "grove debug %s  %s%s: %s\n", stamp(now).c_str(),
                 r.cleanup ? "cleanup" : "task", full_label(r).c_str(), what);
  }

  // Async slices (ph b/e, one id per task): tasks interleave on one thread,
  // so they cannot nest as thread slices would.
  void trace_event(frame_record& r, frame_event e, time_point now) {
    if (!tracing()) return;
    switch (e) {
      case frame_event::started:
        r.open = true;
        slice('b', r, now);
        break;
      case frame_event::cancel_requested:
        instant("cancel requested", "cancel", now, &r);
        break;
      case frame_event::cancel_delivered:  // it unwinds now: its slice ends
        instant("cancel delivered", "cancel", now, &r);
        [[fallthrough]];
      case frame_event::finished:
      case frame_event::unwound:
      case frame_event::destroyed:
        if (r.open) slice('e', r, now);
        r.open = false;
        break;
      default:
        break;
    }
  }

  std::string name_of(const frame_record& r) const {
    std::string n = r.name.empty() ? "task #" + std::to_string(r.id) : r.name;
    return r.cleanup ? "cleanup " + n : n;
  }

  // A frame's start is known late (at its first own event), so events are
  // kept with their time and sorted when written.
  std::string& add_event(time_point now) {
    double us = std::chrono::duration<double, std::micro>(now - start_).count();
    return events_.push_back({us, events_.size(), {}}), events_.back().json;
  }

  void slice(char ph, const frame_record& r, time_point now) {
    std::string& ev = add_event(now);
    ev += "{\"ph\":\"";
    ev += ph;
    ev += "\",\"cat\":\"";
    ev += r.cleanup ? "cleanup" : "task";
    ev += "\",\"id\":" + std::to_string(r.id) + ",\"name\":";
    json_string(ev, name_of(r));
    ev += ",\"ts\":" + micros(now) + ",\"pid\":1,\"tid\":1}";
    last_ = now;
  }

  void instant(const std::string& what, const char* cat, time_point now, const frame_record* r) {
    std::string& ev = add_event(now);
    ev += "{\"ph\":\"i\",\"s\":\"";
    ev += r != nullptr ? "t" : "g";
    ev += "\",\"cat\":\"";
    ev += cat;
    ev += "\",\"name\":";
    json_string(ev, r != nullptr ? what + ": " + name_of(*r) : what);
    ev += ",\"ts\":" + micros(now) + ",\"pid\":1,\"tid\":1}";
  }

  std::string micros(time_point now) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f",
                  std::chrono::duration<double, std::micro>(now - start_).count());
    return buf;
  }

  // Slices still open (a forced exit cut a task short) are closed at the
  // end, so every b has its e.
  void write_trace() noexcept {
    if (!tracing() || written_) return;
    written_ = true;
    try {
      time_point end = loop_now();
      if (end < last_) end = last_;
      for (auto& [p, r] : tl_frames.records)  // frames still alive: their slices end here
        if (r.open) slice('e', r, end);
      std::string path = trace_path(options_.trace_file);
      std::FILE* f = std::fopen(path.c_str(), "w");
      if (f == nullptr) {
        std::fprintf(stderr, "grove: cannot write the trace file %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return;
      }
      std::sort(events_.begin(), events_.end(),
                [](const trace_event_text& a, const trace_event_text& b) {
                  return a.us != b.us ? a.us < b.us : a.seq < b.seq;
                });
      std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
      for (std::size_t i = 0; i < events_.size(); ++i) {
        std::fputs(events_[i].json.c_str(), f);
        std::fputs(i + 1 < events_.size() ? ",\n" : "\n", f);
      }
      std::fputs("]}\n", f);
      if (std::fclose(f) != 0)
        std::fprintf(stderr, "grove: writing the trace file %s failed: %s\n", path.c_str(),
                     std::strerror(errno));
    } catch (...) {
      std::fputs("grove: the trace could not be written (out of memory)\n", stderr);
    }
  }

  debug_options options_;
  std::FILE* log_;
  time_point start_ = loop_now();
  time_point last_ = start_;
  // The segment of the current callback since the last frame event:
  // when it began, on the steady clock (for the slow-callback warning) and
  // the loop's (for a frame's start); and the longest one so far.
  std::chrono::steady_clock::time_point segment_start_{};
  time_point segment_loop_start_ = start_;
  std::int64_t longest_ns_ = 0;
  std::string longest_;

  void open_segment() {
    if (wants_callback_times()) segment_start_ = std::chrono::steady_clock::now();
    segment_loop_start_ = loop_now();
  }
  // `who` ran the segment (null: the loop's own code).
  void close_segment(const frame_record* who) {
    if (wants_callback_times()) {
      auto t = std::chrono::steady_clock::now();
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t - segment_start_).count();
      if (ns > longest_ns_) {
        longest_ns_ = ns;
        longest_ = who != nullptr ? full_label(*who) : std::string();
      }
      segment_start_ = t;
    }
    segment_loop_start_ = loop_now();
  }
  struct trace_event_text {
    double us;        // since the session started
    std::size_t seq;  // ties keep the order they happened in
    std::string json;
  };
  std::vector<trace_event_text> events_;
  bool written_ = false;
};

}  // namespace detail

std::string signal_name(int signo) {
  const char* abbrev = signo > 0 ? ::sigabbrev_np(signo) : nullptr;  // null for real-time signals
  return abbrev != nullptr ? "SIG" + std::string(abbrev) : "signal " + std::to_string(signo);
}

debug_options debug_options::from_environment() {
  debug_options o;
  const char* d = std::getenv("GROVE_DEBUG");
  o.log = d != nullptr && std::strcmp(d, "1") == 0;
  if (const char* t = std::getenv("GROVE_TRACE"); t != nullptr) o.trace_file = t;
  return o;
}

std::vector<task_info> task_tree() {
  std::vector<task_info> tasks;
  event_loop* loop = event_loop::current();
  if (loop == nullptr) return tasks;
  std::string scratch;
  detail::tl_collect = &tasks;
  try {
    loop->describe_tree(scratch, 0);
  } catch (...) {
    detail::tl_collect = nullptr;
    throw;
  }
  detail::tl_collect = nullptr;
  return tasks;
}

std::string task_tree_text() {
  event_loop* loop = event_loop::current();
  if (loop == nullptr) return "grove: no loop is running on this thread: no task tree to show\n";
  std::string out = "grove: task tree at " + detail::seconds(loop->now().time_since_epoch()) +
                    " on the loop clock:\n";
  loop->describe_tree(out, 1);
  return out;
}

void dump_task_tree(std::ostream& out) {
  out << task_tree_text();
  out.flush();
}

}  // namespace grove

namespace grove::detail {

void debug_session_deleter::operator()(debug_session* s) const noexcept {
  delete s;
}

debug_session_ptr start_debug_session(const debug_options& o) {
  if (!o.active()) return nullptr;
  return debug_session_ptr(new debug_session(o));
}

trace_sink& sink_of(debug_session& s) noexcept {
  return s;
}

bool times_callbacks(const debug_session& s) noexcept {
  return s.wants_callback_times();
}

void before_callback(debug_session& s) noexcept {
  s.before_callback();
}

void after_callback(debug_session& s, std::int64_t ns) noexcept {
  s.after_callback(ns);
}

}  // namespace grove::detail
