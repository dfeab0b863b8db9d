#include "jobs.hpp"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <grove/cancel.hpp>
#include <grove/debug.hpp>
#include <grove/process.hpp>
#include <grove/run.hpp>
#include <grove/run_tasks.hpp>
#include <grove/settle.hpp>
#include <grove/task_group.hpp>
#include <grove/time.hpp>
#include <optional>
#include <set>
#include <unordered_set>

#include "command.hpp"
#include "console.hpp"
#include "descendants.hpp"
#include "joblog.hpp"
#include "timeline.hpp"

namespace grove::cli {

namespace {

using namespace std::chrono_literals;

// After a job's end, its pipes are read this much longer at most: a
// background grandchild may hold them (docs/processes.md, the drain rule).
constexpr duration drain_timeout = 1s;

// A job ended badly: run_tasks counts it failed, and --halt now may stop
// the rest through fail_fast.
struct job_failed {};

struct job {
  job_record rec;
  std::vector<std::string> argv;
  bool resumed = false;  // ok in the --resume log: not run again
  bool started = false;
  bool accounted = false;
  bool timed_out = false;
  std::optional<exit_status> status;
  time_point began{};
  std::string partial_out, partial_err;  // --line-buffer: an unfinished line
};

struct context {
  const options& opt;
  command_template tmpl;
  console con;
  line_file joblog, results;
  std::vector<job> jobs;
  std::vector<process*> running;
  std::unordered_set<pid_t> job_pids;
  cancel_scope halt_scope;
  bool halting = false;  // --halt soon: no new job starts
  int shutdown_signal = 0;
  bool subreaper = false;
  std::size_t next_to_print = 0;  // --keep-order
  std::size_t done = 0, failed = 0, resumed = 0;
  time_point t0{};
  double t0_epoch = 0;
  std::vector<bool> busy_slots;      // a job's slot is its row in --timeline
  std::vector<timeline_mark> marks;  // for --timeline: signals, --halt

  context(const options& o, bool status_line, bool color)
      : opt(o), tmpl(o.command), con(status_line, color) {}
};

double wall_now() {
  auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration<double>(since_epoch).count();
}

double seconds_since(time_point t) {
  return std::chrono::duration<double>(now() - t).count();
}

// Each line prefixed with the input and a tab (--tag).
std::string tagged(const std::string& text, const std::string& tag) {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t nl = text.find('\n', at);
    std::size_t end = nl == std::string::npos ? text.size() : nl + 1;
    out += tag + "\t" + text.substr(at, end - at);
    at = end;
  }
  if (!out.empty() && out.back() != '\n') out += '\n';  // the next tag starts a line
  return out;
}

// --- output ----------------------------------------------------------------

bool live_output(const context& c) {
  return c.opt.line_buffer && !c.opt.keep_order;
}

// Prints what the job wrote (streamed already with --line-buffer, except an
// unfinished last line), then frees it: memory follows -j, not the run.
void print_job(context& c, job& j) {
  if (live_output(c)) {
    for (std::string* rest : {&j.partial_out, &j.partial_err}) {
      std::string text = c.opt.tag ? tagged(*rest, j.rec.input) : *rest;
      rest == &j.partial_out ? c.con.out(text) : c.con.err(text);
    }
  } else {
    c.con.out(c.opt.tag ? tagged(j.rec.out, j.rec.input) : j.rec.out);
    c.con.err(c.opt.tag ? tagged(j.rec.err, j.rec.input) : j.rec.err);
  }
  for (std::string* s : {&j.rec.out, &j.rec.err, &j.partial_out, &j.partial_err})
    std::string().swap(*s);
}

void print_ready(context& c) {
  if (!c.opt.keep_order) return;
  while (c.next_to_print < c.jobs.size() && c.jobs[c.next_to_print].accounted)
    print_job(c, c.jobs[c.next_to_print++]);
}

// --line-buffer: complete lines go out as they arrive; the rest at the end.
// Only the new chunk is searched: a long line without a newline stays linear.
void stream_lines(context& c, job& j, bool to_err, std::string_view chunk, bool at_end) {
  std::string& partial = to_err ? j.partial_err : j.partial_out;
  std::size_t before = partial.size();
  partial.append(chunk);
  std::size_t nl = chunk.rfind('\n');
  std::size_t cut = at_end ? partial.size() : nl == std::string_view::npos ? 0 : before + nl + 1;
  if (cut == 0) return;
  std::string lines = partial.substr(0, cut);
  partial.erase(0, cut);
  if (c.opt.tag) lines = tagged(lines, j.rec.input);
  to_err ? c.con.err(lines) : c.con.out(lines);
}

task<void> pump(context& c, job& j, stream& from, bool is_err) {
  std::array<std::byte, 16384> buf;
  bool live = live_output(c);
  bool keep = !live || !c.opt.results.empty();  // the results file wants it all
  for (;;) {
    std::size_t n = co_await from.read_some(buf);
    std::string_view chunk(reinterpret_cast<const char*>(buf.data()), n);
    j.rec.received += n;
    if (live) stream_lines(c, j, is_err, chunk, n == 0);
    if (n == 0) co_return;
    if (keep) (is_err ? j.rec.err : j.rec.out).append(chunk);
  }
}

// --- accounting ------------------------------------------------------------

void fill_status(job& j) {
  if (!j.status) return;
  j.rec.exit_value = j.status->exited() ? j.status->code() : -1;
  j.rec.signal = j.status->signal();
}

void write_logs(context& c, const job& j) {
  try {
    if (c.joblog) c.joblog.write_line(joblog_line(j.rec));
    if (c.results) c.results.write_line(results_line(j.rec));
  } catch (const std::exception& e) {
    c.con.err(std::string(e.what()) + "\n");
  }
}

void check_halt(context& c) {
  const halt_policy& h = c.opt.halt;
  if (h.mode == halt_policy::when::never || static_cast<int>(c.failed) < h.failures) return;
  if (!c.halting) {
    std::string what = std::to_string(c.failed) + " failed: " +
                       (h.mode == halt_policy::when::now ? "stopping the running jobs"
                                                         : "waiting for the running jobs") +
                       ", starting no more (--halt)";
    c.con.err("grove: " + what + "\n");
    c.marks.push_back({seconds_since(c.t0), "--halt", what});
  }
  c.halting = true;
  if (h.mode == halt_policy::when::now) c.halt_scope.cancel();
}

void account(context& c, job& j, job_state state) {
  if (j.accounted) return;
  j.accounted = true;
  j.rec.state = state;
  fill_status(j);
  if (state == job_state::failed || state == job_state::timeout) ++c.failed;
  if (state != job_state::skipped) ++c.done;
  write_logs(c, j);
  if (c.opt.keep_order)
    print_ready(c);
  else
    print_job(c, j);
  if (!j.rec.error.empty())
    c.con.err("grove: job " + std::to_string(j.rec.seq) + ": " + j.rec.error + "\n");
  check_halt(c);
}

job_state state_of(const job& j, grove::job_state how) {
  switch (how) {
    case grove::job_state::not_started:
      return job_state::skipped;
    // Stopped by grove (a signal, --halt now); one that still exited 0 did its
    // work, and --resume must not run it again.
    case grove::job_state::cancelled:
      return j.status && j.status->ok() ? job_state::ok : job_state::cancelled;
    case grove::job_state::completed:
      return j.started ? job_state::ok : job_state::skipped;
    case grove::job_state::failed:
      return j.timed_out ? job_state::timeout : job_state::failed;
  }
  return job_state::failed;
}

// --- one job -----------------------------------------------------------------

// Registers the running process; when the job's frame goes (normally or
// unwinding after the terminate sequence's reap), keeps its status.
struct running_guard {
  context& c;
  job& j;
  process& p;
  running_guard(context& cx, job& jb, process& pr) : c(cx), j(jb), p(pr) {
    c.running.push_back(&p);
    c.job_pids.insert(p.pid());
  }
  ~running_guard() {
    j.status = p.status();
    std::erase(c.running, &p);
    c.job_pids.erase(p.pid());
  }
};

// After the wait (or its cancellation: after the reap), the readers get
// drain_timeout more. The job's runtime is start to reap.
struct drain_guard {
  job& j;
  cancel_scope& readers;
  ~drain_guard() {
    j.rec.runtime = std::chrono::duration<double>(now() - j.began).count();
    readers.set_deadline(add_saturating(now(), drain_timeout));
  }
};

// A job stopped by grove (a shutdown signal, --halt now) is accounted as its
// frame unwinds, after the reap and the drain: its line reaches the joblog
// then, not when the whole run ends (run_tasks reports cancelled jobs last).
// An error propagating out (std::uncaught_exceptions) is not a stop: run_tasks
// reports it failed.
struct account_on_unwind {
  context& c;
  job& j;
  bool ended = false;  // ended normally: run_tasks' on_job_done accounts for it
  int in_flight = std::uncaught_exceptions();
  ~account_on_unwind() {
    if (ended || std::uncaught_exceptions() > in_flight) return;
    account(c, j, j.status && j.status->ok() ? job_state::ok : job_state::cancelled);
  }
};

// The lowest free slot (from 0) while the job runs, so that jobs run at the
// same time never share a row of --timeline, and -j rows are enough.
struct slot_guard {
  std::vector<bool>& busy;
  std::size_t index;
  explicit slot_guard(std::vector<bool>& b)
      : busy(b), index(static_cast<std::size_t>(std::find(b.begin(), b.end(), false) - b.begin())) {
    if (index == busy.size()) busy.push_back(false);
    busy[index] = true;
  }
  ~slot_guard() { busy[index] = false; }
};

// A shutdown signal may be pending while the loop was busy (a blocking
// write to a full stdout): no job starts then.
bool shutdown_pending() {
  sigset_t pending;
  if (::sigpending(&pending) != 0) return false;
  for (int s : {SIGINT, SIGTERM, SIGHUP})
    if (sigismember(&pending, s) == 1) return true;
  return false;
}

process_options spawn_options(const context& c, const job& j) {
  process_options o;
  o.argv = j.argv;
  o.stdin_ = stdio::null;
  o.stdout_ = stdio::pipe;
  o.stderr_ = stdio::pipe;
  o.kill_grace = c.opt.grace;
  o.terminate_signal = c.shutdown_signal ? c.shutdown_signal : SIGTERM;
  return o;
}

task<void> run_one(context& c, job& j) {
  if (c.halting || c.shutdown_signal || shutdown_pending()) co_return;  // skipped
  account_on_unwind unwinding{c, j};
  j.started = true;
  j.began = now();
  j.rec.start_epoch = wall_now();
  j.rec.start_offset = seconds_since(c.t0);
  slot_guard slot(c.busy_slots);  // held to the frame's end: after the reap and the drain
  j.rec.slot = slot.index + 1;
  process p;
  try {
    p = process::spawn(spawn_options(c, j));
  } catch (const std::system_error& e) {
    std::string what = e.what();
    j.rec.error = what.starts_with("grove: ") ? what.substr(7) : what;
    unwinding.ended = true;
    throw job_failed{};
  }
  running_guard guard(c, j, p);
  cancel_scope readers;
  readers.set_shield(true);  // a stopped job's last words are still read
  co_await with_task_group([&](task_group& g) -> task<void> {
    drain_guard drain{j, readers};
    g.spawn([&]() -> task<void> {
      co_await readers.run(with_task_group([&](task_group& r) -> task<void> {
        r.spawn(pump, std::ref(c), std::ref(j), std::ref(p.stdout_stream()), false);
        r.spawn(pump, std::ref(c), std::ref(j), std::ref(p.stderr_stream()), true);
        co_return;
      }));
    });
    if (!c.opt.timeout) {
      co_await p.wait();
    } else if (!co_await move_on_after(*c.opt.timeout, p.wait())) {
      j.timed_out = !p.status() || !p.status()->ok();  // exited 0 as time ran out: ok
    }
  });
  unwinding.ended = true;
  if (j.timed_out || !p.status() || !p.status()->ok()) throw job_failed{};
}

// --- the status line -------------------------------------------------------------

std::string status_text(const context& c, std::size_t total) {
  double secs = seconds_since(c.t0);
  double rate = secs > 0 ? static_cast<double>(c.done) / secs : 0;
  std::size_t queued = total - c.done - c.running.size();
  char buf[256];
  std::snprintf(buf, sizeof buf, "grove: %zu/%zu done, %zu running, %zu queued, ", c.done, total,
                c.running.size(), queued);
  std::string s = buf;
  s += c.con.paint(std::to_string(c.failed) + " failed", c.failed ? "\x1b[31m" : "");
  std::snprintf(buf, sizeof buf, ", %.1f/s", rate);
  s += buf;
  if (rate > 0 && queued + c.running.size() > 0) {
    std::snprintf(buf, sizeof buf, ", ETA %.0fs",
                  static_cast<double>(queued + c.running.size()) / rate);
    s += buf;
  }
  return s;
}

task<void> show_status(context& c, std::size_t total) {
  for (;;) {
    c.con.status(status_text(c, total));
    co_await sleep(200ms);
  }
}

// As a subreaper (or PID 1), orphans become grove's: reap them as they die,
// or their zombies would pile up for the whole run.
task<void> reap_orphans(context& c) {
  for (;;) {
    reap_exited(adopted_children(c.job_pids));
    co_await sleep(100ms);
  }
}

// --- the whole run -----------------------------------------------------------

// "24 jobs: 10 ok, ...": the last line on stderr, and --timeline's headline.
std::string summary(const context& c, double secs, bool color) {
  std::size_t n[5] = {};
  for (const auto& j : c.jobs)
    if (!j.resumed) ++n[static_cast<int>(j.rec.state)];
  char buf[128];
  std::snprintf(buf, sizeof buf, " (%.1f s)", secs);
  std::size_t total = c.jobs.size();
  std::string failed = std::to_string(n[1]) + " failed";
  std::string s =
      std::to_string(total) + (total == 1 ? " job: " : " jobs: ") + std::to_string(n[0]) + " ok, " +
      (color ? c.con.paint(failed, n[1] ? "\x1b[31m" : "") : failed) + ", " + std::to_string(n[2]) +
      " timed out, " + std::to_string(n[3]) + " cancelled, " + std::to_string(n[4]) + " skipped";
  if (c.resumed) s += ", " + std::to_string(c.resumed) + " already ok (--resume)";
  s += buf;
  if (c.shutdown_signal) s += ", interrupted by " + signal_name(c.shutdown_signal);
  return s;
}

// GNU parallel's status for "other error": here, the run is over but its
// --timeline could not be written.
constexpr int timeline_failed_status = 255;

// Written once, at the end (after a shutdown signal too): false, with a
// message, when it cannot be.
bool write_timeline_page(context& c, double secs) {
  if (c.opt.timeline.empty()) return true;
  timeline_run run{.command = c.tmpl.text(),
                   .start_epoch = c.t0_epoch,
                   .seconds = secs,
                   .jobs_at_once = c.opt.jobs,
                   .summary = summary(c, secs, false),
                   .jobs = {},
                   .marks = c.marks};
  for (const auto& j : c.jobs)
    if (!j.resumed) run.jobs.push_back(&j.rec);
  try {
    write_timeline(c.opt.timeline, timeline_html(run));
    return true;
  } catch (const std::exception& e) {
    c.con.err(std::string(e.what()) + "\n");
    return false;
  }
}

task<int> main_task(context& c) {
  c.t0 = now();
  c.t0_epoch = wall_now();
  std::vector<grove::job> work;
  std::vector<std::size_t> index;  // run_tasks' job -> ours
  for (std::size_t i = 0; i < c.jobs.size(); ++i) {
    if (c.jobs[i].resumed) continue;
    index.push_back(i);
    // Named for the task tree (kill -USR1) and --trace: "#3 gzip -9 a.log".
    work.push_back([&c, i]() {
      const job_record& r = c.jobs[i].rec;
      return named("#" + std::to_string(r.seq) + " " + r.command, run_one(c, c.jobs[i]));
    });
  }
  run_tasks_options rto;
  rto.fail_fast = false;  // --halt is ours: it also knows "soon" and fail=N
  rto.on_job_done = [&](std::size_t k, const job_result& r) {
    job& j = c.jobs[index[k]];
    account(c, j, state_of(j, r.state));
  };
  std::size_t total = work.size();
  co_await settle(with_task_group([&](task_group& g) -> task<void> {
    if (c.con.status_enabled()) g.spawn(show_status, std::ref(c), total);
    if (c.subreaper) g.spawn(reap_orphans, std::ref(c));
    co_await c.halt_scope.run(run_tasks(std::move(work), c.opt.jobs, std::move(rto)));
    g.cancel();
  }));
  for (auto& j : c.jobs)
    if (!j.resumed) account(c, j, job_state::skipped);  // never started
  c.con.clear_status();
  // settle: it runs even in a cancelled task, and a forced stop cutting it
  // short still lets the summary out (the sweep then kills what is left).
  co_await settle(sweep_adopted(c.shutdown_signal ? c.shutdown_signal : SIGTERM, c.opt.grace));
  double secs = seconds_since(c.t0);
  bool timeline_written = write_timeline_page(c, secs);
  c.con.err("grove: " + summary(c, secs, true) + "\n");
  if (!timeline_written) co_return timeline_failed_status;
  co_return static_cast<int>(std::min<std::size_t>(c.failed, 101));
}

bool use_color(const options& o) {
  if (o.color == color_mode::always) return true;
  if (o.color == color_mode::never) return false;
  const char* no_color = std::getenv("NO_COLOR");
  return (!no_color || !*no_color) && ::isatty(STDERR_FILENO);
}

void on_signal(context& c, int signo, int stage) {
  std::string what;
  if (stage == 1) {
    c.shutdown_signal = signo;
    for (process* p : c.running) p->set_terminate_signal(signo);
    what = signal_name(signo) + ": no new job starts; " + std::to_string(c.running.size()) +
           " running get " + signal_name(signo) +
           ", SIGKILL after the grace period; signal again to kill them now";
  } else if (stage == 2) {
    what = "killing the running jobs";
  } else {
    return;  // grove dies now: no timeline is written
  }
  c.con.err("grove: " + what + "\n");
  c.marks.push_back(
      {seconds_since(c.t0), signal_name(signo) + (stage == 2 ? ": kill now" : ""), what});
}

}  // namespace

int run_jobs(const options& o) {
  std::optional<context> c;
  try {
    c.emplace(o, ::isatty(STDERR_FILENO) != 0, use_color(o));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  c->jobs.resize(o.inputs.size());
  for (std::size_t i = 0; i < o.inputs.size(); ++i) {
    job& j = c->jobs[i];
    job_input in{i + 1, o.inputs[i]};
    j.rec.seq = in.seq;
    j.rec.input = in.arg;
    j.rec.command = c->tmpl.text_for(in);
    j.argv = c->tmpl.argv_for(in);
  }
  if (o.dry_run) {
    for (const auto& j : c->jobs) std::printf("%s\n", j.rec.command.c_str());
    return 0;
  }
  try {
    if (!o.resume.empty()) {
      auto ok = read_ok_jobs(o.resume);
      for (auto& j : c->jobs)
        if (ok.contains({j.rec.seq, j.rec.command})) {
          j.resumed = j.accounted = true;
          j.rec.state = job_state::ok;
          ++c->resumed;
        }
    }
    if (!o.joblog.empty()) {
      c->joblog = line_file(o.joblog);
      if (c->joblog.empty_at_open()) c->joblog.write_line(joblog_header());
    }
    if (!o.results.empty()) c->results = line_file(o.results);
    // Created now, so that a path that cannot be written stops grove before
    // any job runs, not after them.
    if (!o.timeline.empty())
      write_timeline(o.timeline, timeline_unfinished_html(c->tmpl.text(), wall_now()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  c->subreaper = become_subreaper() || ::getpid() == 1;
  run_options ro;
  ro.signals = {SIGINT, SIGTERM, SIGHUP};
  ro.grace = duration::max();  // each job's --grace bounds the stop; a second signal forces
  ro.on_signal = [&](int signo, int stage) { on_signal(*c, signo, stage); };
  // A second signal already says "killing the running jobs", and the
  // joblog and --timeline account for each: no task tree on top.
  ro.report_forced = false;
  if (!o.trace.empty()) ro.debug.trace_file = o.trace;
  return run([&]() { return main_task(*c); }, ro);
}

}  // namespace grove::cli
