// The runner: one coroutine per node kind. Every co_await goes through a
// `point` (was the context already cancelled when it started?); every frame
// starts with an `entry` (the node's probe and trace). Coroutines take their
// state as reference parameters whose referents live in an enclosing frame
// (never in a capturing coroutine lambda, whose captures could die first).
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <thread>
#include <tuple>

#include "world.hpp"

namespace grove::stress {
namespace {

task<void> exec(world& w, const node& n, const ctx& c);

// Runs one child node at a suspension point of `n`.
task<void> step(world& w, const node& child, const ctx& c, const char* what) {
  point p(w, c, child.id, what);
  co_await exec(w, child, c);
  p.passed();
}

task<void> exec_seq(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  for (const node& child : n.children) {
    point p(w, c, n.id, "a step of seq");
    co_await exec(w, child, c);
    p.passed();
  }
  e.done();
}

task<void> exec_sleep(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  point p(w, c, n.id, n.at >= 0 ? "sleep_until" : "sleep");
  if (n.at >= 0)
    co_await sleep_until(w.at(n.at));
  else
    co_await sleep(w.ticks(n.duration));
  p.passed();
  e.done();
}

task<void> exec_checkpoint(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  point p(w, c, n.id, "checkpoint");
  co_await checkpoint();
  p.passed();
  e.done();
}

task<void> exec_fail(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  if (n.duration > 0) {
    point p(w, c, n.id, "sleep before throwing");
    co_await sleep(w.ticks(n.duration));
    p.passed();
  }
  throw stress_error(w.throwing(n.id));
}

// --- task groups ---

// A spawned child that carries a probe as a spawn argument (kept alive by the
// group until the child ends, destroyed at once when spawn refuses).
task<void> probed_child(world& w, const node& child, const ctx& gc, probe& arg) {
  point p(w, gc, child.id, "a probed child");
  co_await exec(w, child, gc);
  p.passed();
  arg.completed();
}

void spawn_child(world& w, const node& n, const ctx& gc, task_group& g, const node& child) {
  std::string why;
  verdict doomed = w.doomed(gc, &why);
  bool spawned;
  if (n.spawn_probes) {
    probe_spec spec;
    spec.present = true;
    spawned = g.spawn(probed_child, std::ref(w), std::cref(child), std::cref(gc),
                      probe(w, child.id, spec));
  } else {
    spawned = g.spawn(exec, std::ref(w), std::cref(child), std::cref(gc));
  }
  w.trace(n.id, (spawned ? "spawned #" : "refused to spawn #") + std::to_string(child.id));
  if (spawned && doomed == verdict::yes)
    w.violation("task group #" + std::to_string(n.id) + " spawned #" + std::to_string(child.id) +
                " although " + why + " is cancelled");
  if (!spawned && doomed == verdict::no)
    w.violation("task group #" + std::to_string(n.id) + " refused to spawn #" +
                std::to_string(child.id) + " although nothing around it is cancelled");
}

task<void> group_body(world& w, const node& n, ctx& gc, task_group& g) {
  gc.group = &g;
  w.enlist(n.id, &g);
  std::size_t late = n.late >= 0 ? static_cast<std::size_t>(n.late) : n.children.size();
  for (std::size_t i = 0; i < late && i < n.children.size(); ++i)
    spawn_child(w, n, gc, g, n.children[i]);
  if (late >= n.children.size()) co_return;
  point p(w, gc, n.id, "the group body's sleep before late spawns");
  co_await sleep(w.ticks(n.duration));
  p.passed();
  for (std::size_t i = late; i < n.children.size(); ++i) spawn_child(w, n, gc, g, n.children[i]);
}

task<void> exec_group(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  ctx gc = ctx::of(ctx::type::group, n.id, c);
  {
    enlisted in(w, n.id);
    auto body = [&w, &n, &gc](task_group& g) { return group_body(w, n, gc, g); };
    point p(w, c, n.id, "with_task_group");
    co_await with_task_group(body);
    p.passed();
  }
  e.done();
}

// --- gather ---

template <class T>
void check_outcome(world& w, const node& n, const node& child, outcome<T>& o, bool returned) {
  std::string who =
      "gather #" + std::to_string(n.id) + ": the outcome of #" + std::to_string(child.id);
  if (o.has_value()) {
    if (o.value() != child.id) w.violation(who + " has the value of another task");
    if (!returned) w.violation(who + " is a value, but the child never returned");
  } else {
    if (returned) w.violation(who + " is not a value, but the child returned");
    if (o.has_error()) w.observe(o.error(), "gather #" + std::to_string(n.id));
  }
}

task<int> valued(world& w, const node& child, const ctx& c, bool& returned) {
  point p(w, c, child.id, "a gathered task");
  co_await exec(w, child, c);
  p.passed();
  returned = true;
  co_return child.id;
}

task<void> exec_gather_vector(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  std::unique_ptr<bool[]> returned(new bool[n.children.size() + 1]());
  std::vector<task<int>> tasks;
  for (std::size_t i = 0; i < n.children.size(); ++i)
    tasks.push_back(valued(w, n.children[i], c, returned[i]));
  point p(w, c, n.id, "gather (vector)");
  auto outs = co_await gather(std::move(tasks));
  p.passed();
  if (outs.size() != n.children.size())
    w.violation("gather #" + std::to_string(n.id) + " gave " + std::to_string(outs.size()) +
                " outcomes for " + std::to_string(n.children.size()) + " tasks");
  for (std::size_t i = 0; i < outs.size() && i < n.children.size(); ++i)
    check_outcome(w, n, n.children[i], outs[i], returned[i]);
  e.done();
}

task<void> exec_gather_variadic(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  std::array<bool, 3> returned{};
  const auto& ch = n.children;
  if (ch.size() == 2) {
    point p(w, c, n.id, "gather (two tasks)");
    auto [a, b] =
        co_await gather(valued(w, ch[0], c, returned[0]), valued(w, ch[1], c, returned[1]));
    p.passed();
    check_outcome(w, n, ch[0], a, returned[0]);
    check_outcome(w, n, ch[1], b, returned[1]);
  } else {
    point p(w, c, n.id, "gather (three tasks)");
    auto [a, b, d] =
        co_await gather(valued(w, ch[0], c, returned[0]), valued(w, ch[1], c, returned[1]),
                        valued(w, ch[2], c, returned[2]));
    p.passed();
    check_outcome(w, n, ch[0], a, returned[0]);
    check_outcome(w, n, ch[1], b, returned[1]);
    check_outcome(w, n, ch[2], d, returned[2]);
  }
  e.done();
}

// --- finally, shield, scopes, timeouts ---

// A scope that caught its cancellation resumes its awaiting task: "outermost
// wins" (DESIGN §1.3), so nothing enclosing it may be cancelled then, unless
// it is shielded (a shielded scope catches its own cancellation). Probes
// destroyed with the body, after that decision, may cancel around it: the
// check is skipped when a probe cancelled something during the await.
void check_outermost(world& w, const node& n, const ctx& c, long probe_cancels, const char* what) {
  if (w.probe_cancels() != probe_cancels) return;
  std::string why;
  if (w.doomed(c, &why) == verdict::yes)
    w.violation(std::string(what) + " #" + std::to_string(n.id) +
                " caught a cancellation although " + why +
                " around it is cancelled too (the outermost cancelled scope catches)");
}

task<void> finally_body(world& w, const node& body, const ctx& c, int inst) {
  w.finally_body_started(inst);
  point p(w, c, body.id, "a finally body");
  co_await exec(w, body, c);
  p.passed();
}

task<void> cleanup_task(world& w, const node& cleanup, const ctx& cc, int inst) {
  w.cleanup_started(inst);
  point p(w, cc, cleanup.id, "a cleanup");
  try {
    co_await exec(w, cleanup, cc);
  } catch (...) {
    p.passed();
    w.cleanup_ended(inst);
    throw;
  }
  p.passed();
  w.cleanup_ended(inst);
}

task<void> exec_finally(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  int inst = w.new_finally(n.id);
  ctx cc = ctx::of(ctx::type::cleanup, n.id, c);
  const node& cleanup = n.children[1];
  auto make_cleanup = [&w, &cleanup, &cc, inst] { return cleanup_task(w, cleanup, cc, inst); };
  point p(w, c, n.id, "finally");
  co_await finally(finally_body(w, n.children[0], c, inst), make_cleanup);
  p.passed();
  e.done();
}

// Shielded work runs to its end (returns or throws): only a forced shutdown,
// which the generator never uses, or the shielded scope's own cancel() or
// deadline may cut it short.
class must_finish {
 public:
  must_finish(world& w, int node, const cancel_scope* own) : w_(w), node_(node), own_(own) {}
  must_finish(const must_finish&) = delete;
  must_finish& operator=(const must_finish&) = delete;
  ~must_finish() {
    if (!finished && !(own_ != nullptr && own_->cancel_called()))
      w_.violation("the shielded work #" + std::to_string(node_) +
                   " was cut short, although only its own scope may cancel it");
  }
  bool finished = false;

 private:
  world& w_;
  int node_;
  const cancel_scope* own_;
};

task<void> shielded_body(world& w, const node& child, const ctx& sc, const cancel_scope* own) {
  must_finish m(w, child.id, own);
  point p(w, sc, child.id, "shielded work");
  try {
    co_await exec(w, child, sc);
  } catch (...) {
    m.finished = true;
    p.passed();
    throw;
  }
  m.finished = true;
  p.passed();
}

// shield(t) starts even in a cancelled context: not a point.
task<void> exec_shield(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  ctx sc = ctx::of(ctx::type::shield, n.id, c);
  co_await shield(shielded_body(w, n.children[0], sc, nullptr));
  e.done();
}

task<void> exec_scope(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  cancel_scope s(n.at >= 0 ? w.at(n.at) : time_point::max());
  if (n.shielded) s.set_shield(true);
  ctx sc = ctx::of(ctx::type::scope, n.id, c);
  sc.scope = &s;
  sc.shield = n.shielded;
  bool ran;
  long probe_cancels;
  {
    enlisted in(w, n.id);  // declared after the scope: delisted before it dies
    w.enlist(n.id, &s);
    // A shielded scope starts even in a cancelled context: not a point.
    std::optional<point> p;
    if (!n.shielded) p.emplace(w, c, n.id, "cancel_scope::run");
    probe_cancels = w.probe_cancels();
    if (n.shielded)
      ran = co_await s.run(shielded_body(w, n.children[0], sc, &s));
    else
      ran = co_await s.run(exec(w, n.children[0], sc));
    if (p) p->passed();
  }
  std::string who = "cancel_scope #" + std::to_string(n.id);
  if (!ran && !s.cancelled_caught()) w.violation(who + " gave no result without catching");
  if (ran && s.cancelled_caught()) w.violation(who + " caught a cancellation and gave a result");
  if (s.cancelled_caught() && !s.cancel_called())
    w.violation(who + " caught a cancellation without being cancelled");
  if (!ran && !n.shielded) check_outermost(w, n, c, probe_cancels, "cancel_scope");
  w.trace(n.id, ran ? "scope body completed" : "scope caught its cancellation");
  e.done();
}

// The deadline context of a move_on/fail_after node; the task is made between
// setting lo and hi, so that grove's own now() + d lies within them.
template <class Make>
auto with_deadline(world& w, const node& n, ctx& dc, Make make) {
  if (n.relative) {
    dc.lo = now() + w.ticks(n.duration);
    auto t = make(n.relative);
    dc.hi = now() + w.ticks(n.duration);
    dc.past_at_start = now() >= dc.hi;
    return t;
  }
  dc.lo = dc.hi = w.at(n.at);
  auto t = make(n.relative);
  dc.past_at_start = now() >= dc.hi;
  return t;
}

task<void> exec_move_on(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  ctx dc = ctx::of(ctx::type::deadline, n.id, c);
  auto make = [&](bool relative) {
    if (relative) return move_on_after(w.ticks(n.duration), exec(w, n.children[0], dc));
    return move_on_at(w.at(n.at), exec(w, n.children[0], dc));
  };
  task<bool> t = with_deadline(w, n, dc, make);
  point p(w, c, n.id, "move_on");
  long probe_cancels = w.probe_cancels();
  bool finished = co_await std::move(t);
  p.passed();
  w.trace(n.id, finished ? "body finished in time" : "moved on");
  if (!finished && now() < dc.lo)
    w.violation("move_on #" + std::to_string(n.id) + " gave up before its deadline");
  if (!finished) check_outermost(w, n, c, probe_cancels, "move_on");
  e.done();
}

task<void> exec_fail_after(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  ctx dc = ctx::of(ctx::type::deadline, n.id, c);
  auto make = [&](bool relative) {
    if (relative) return fail_after(w.ticks(n.duration), exec(w, n.children[0], dc));
    return fail_at(w.at(n.at), exec(w, n.children[0], dc));
  };
  task<void> t = with_deadline(w, n, dc, make);
  point p(w, c, n.id, "fail_after");
  long probe_cancels = w.probe_cancels();
  bool timed_out = false;
  try {
    co_await std::move(t);
  } catch (const timeout_error&) {
    timed_out = true;
  }
  p.passed();
  if (timed_out) {
    w.trace(n.id, "timed out");
    if (now() < dc.lo)
      w.violation("fail_after #" + std::to_string(n.id) + " timed out before its deadline");
    check_outermost(w, n, c, probe_cancels, "fail_after");
  }
  e.done();
}

task<void> exec_try_catch(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  point p(w, c, n.id, "try");
  try {
    co_await exec(w, n.children[0], c);
  } catch (...) {
    p.passed();
    w.observe(std::current_exception(), "try_catch #" + std::to_string(n.id));
  }
  p.passed();
  e.done();
}

// --- semaphores, events, threads ---

// Counts a holder from acquisition to release; declared after what releases
// the permit, so that the count drops first.
class holding {
 public:
  holding(world& w, int sem, int node) : w_(w), sem_(sem) { w.holder_in(sem, node); }
  holding(const holding&) = delete;
  holding& operator=(const holding&) = delete;
  ~holding() { w_.holder_out(sem_); }

 private:
  world& w_;
  int sem_;
};

// acquire()'s permit, returned with release() however the frame ends.
class manual_permit {
 public:
  manual_permit(world& w, int sem, int node) : w_(w), sem_(sem) { w.holder_in(sem, node); }
  manual_permit(const manual_permit&) = delete;
  manual_permit& operator=(const manual_permit&) = delete;
  ~manual_permit() {
    w_.holder_out(sem_);
    w_.sem(sem_).sem.release();
  }

 private:
  world& w_;
  int sem_;
};

task<void> exec_hold(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  semaphore& s = w.sem(n.sem).sem;
  point p(w, c, n.id, n.use_lock ? "semaphore::lock" : "semaphore::acquire");
  if (n.use_lock) {
    semaphore::guard g = co_await s.lock();
    p.passed();
    holding h(w, n.sem, n.id);
    co_await step(w, n.children[0], c, "the work under a lock guard");
  } else {
    co_await s.acquire();
    p.passed();
    manual_permit h(w, n.sem, n.id);
    co_await step(w, n.children[0], c, "the work under an acquired permit");
  }
  e.done();
}

task<void> exec_wait_event(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  point p(w, c, n.id, "event::wait");
  co_await w.ev(n.event).wait();
  p.passed();
  e.done();
}

task<void> exec_set_event(world& w, const node& n, const ctx&) {
  entry e(w, n);
  w.ev(n.event).set();
  e.done();
  co_return;
}

task<void> exec_thread(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  int xid = -1;
  std::atomic<bool>* threw = &w.thread_throw(n.id, xid);
  bool throws = n.throws;
  auto spin = std::chrono::microseconds(n.duration);
  auto fn = [threw, xid, throws, spin](std::stop_token st) {
    auto until = std::chrono::steady_clock::now() + spin;
    while (!st.stop_requested() && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    if (throws) {
      threw->store(true);
      throw stress_error(xid);
    }
  };
  point p(w, c, n.id, "to_thread");
  co_await to_thread(fn);
  p.passed();
  e.done();
}

// --- run_tasks ---

struct job_record {
  bool started = false;
  bool returned = false;
  int reported = 0;  // on_job_done calls
};

task<void> job_task(world& w, const node& job, const ctx& rc, job_record& rec) {
  rec.started = true;
  point p(w, rc, job.id, "a run_tasks job");
  co_await exec(w, job, rc);
  p.passed();
  rec.returned = true;
}

void check_report(world& w, const node& n, const run_report& report,
                  const std::vector<job_record>& recs, bool doomed_at_start) {
  std::string who = "run_tasks #" + std::to_string(n.id);
  if (report.size() != recs.size()) {
    w.violation(who + ": the report has " + std::to_string(report.size()) + " jobs for " +
                std::to_string(recs.size()));
    return;
  }
  std::size_t sum = 0;
  for (job_state s :
       {job_state::completed, job_state::failed, job_state::cancelled, job_state::not_started})
    sum += report.count(s);
  if (sum != report.size()) w.violation(who + ": the report's counts do not add up");
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const job_result& r = report.jobs()[i];
    const job_record& rec = recs[i];
    std::string job = who + ": job " + std::to_string(i) + " (#" +
                      std::to_string(n.children[i].id) + ") is " + to_string(r.state);
    if (r.state == job_state::failed) {
      if (r.error)
        w.observe(r.error, who);
      else
        w.violation(job + " without an error");
    }
    if (r.state == job_state::completed && !rec.returned) w.violation(job + " but never returned");
    if (r.state != job_state::completed && rec.returned) w.violation(job + " but returned");
    if (r.state == job_state::not_started && rec.started) w.violation(job + " but it started");
    if (doomed_at_start && r.state != job_state::not_started)
      w.violation(job + " although run_tasks was awaited in a cancelled context");
    int expected = r.state == job_state::not_started ? 0 : 1;
    if (rec.reported != expected)
      w.violation(job + " and on_job_done was called " + std::to_string(rec.reported) +
                  " time(s) for it");
  }
}

task<void> exec_run_tasks(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  bool fail_fast_cancelled = false;
  ctx rc = ctx::of(ctx::type::runner, n.id, c);
  rc.flag = &fail_fast_cancelled;
  std::vector<job_record> recs(n.children.size());
  std::vector<job> jobs;
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    const node* child = &n.children[i];
    job_record* rec = &recs[i];
    const ctx* jc = &rc;
    world* pw = &w;
    jobs.push_back([pw, child, jc, rec] { return job_task(*pw, *child, *jc, *rec); });
  }
  run_tasks_options options;
  options.fail_fast = n.fail_fast;
  bool fail_fast = n.fail_fast;
  bool* flag = &fail_fast_cancelled;
  job_record* first = recs.data();
  options.on_job_done = [fail_fast, flag, first](std::size_t i, const job_result& r) {
    ++first[i].reported;
    if (fail_fast && r.state == job_state::failed) *flag = true;  // the group is cancelled next
  };
  // run_tasks reports even when awaited in a cancelled context: not a point.
  bool doomed_at_start = w.doomed(c) == verdict::yes;
  run_report report = co_await run_tasks(std::move(jobs), n.limit, std::move(options));
  w.trace(n.id, "report: " + report.summary());
  check_report(w, n, report, recs, doomed_at_start);
  e.done();
}

task<void> exec_canceller(world& w, const node& n, const ctx& c) {
  entry e(w, n);
  {
    point p(w, c, n.id, "the canceller's sleep_until");
    co_await sleep_until(w.at(n.at));
    p.passed();
  }
  for (int i = 0; i < n.checkpoints; ++i) {
    point p(w, c, n.id, "the canceller's checkpoint");
    co_await checkpoint();
    p.passed();
  }
  w.cancel_target(n.target, n.id);
  e.done();
}

task<void> exec(world& w, const node& n, const ctx& c) {
  switch (n.k) {
    case kind::seq:
      return exec_seq(w, n, c);
    case kind::sleep:
      return exec_sleep(w, n, c);
    case kind::checkpoint:
      return exec_checkpoint(w, n, c);
    case kind::fail:
      return exec_fail(w, n, c);
    case kind::group:
      return exec_group(w, n, c);
    case kind::gather_vector:
      return exec_gather_vector(w, n, c);
    case kind::gather_variadic:
      return exec_gather_variadic(w, n, c);
    case kind::finally:
      return exec_finally(w, n, c);
    case kind::shield:
      return exec_shield(w, n, c);
    case kind::scope:
      return exec_scope(w, n, c);
    case kind::move_on:
      return exec_move_on(w, n, c);
    case kind::fail_after:
      return exec_fail_after(w, n, c);
    case kind::try_catch:
      return exec_try_catch(w, n, c);
    case kind::hold:
      return exec_hold(w, n, c);
    case kind::wait_event:
      return exec_wait_event(w, n, c);
    case kind::set_event:
      return exec_set_event(w, n, c);
    case kind::thread:
      return exec_thread(w, n, c);
    case kind::run_tasks:
      return exec_run_tasks(w, n, c);
    case kind::canceller:
      return exec_canceller(w, n, c);
  }
  return exec_seq(w, n, c);  // not reached: every kind is handled above
}

// --- the root: the program, beside a safety net that sets every event at the
// horizon (so that a program never waits for an event nobody will set) ---

task<void> net_body(world& w) {
  co_await sleep_until(w.at(w.prog().horizon));
  w.trace(-1, "safety net: sets every event");
  for (event& ev : w.events()) ev.set();
}

task<void> safety_net(world& w, cancel_scope& net) {
  co_await net.run(net_body(w));
}

// Cancels the safety net when the program is over, however it ends.
struct stop_net {
  cancel_scope& net;
  ~stop_net() { net.cancel(); }
};

task<void> main_part(world& w, const ctx& gc, cancel_scope& net) {
  stop_net stop{net};
  co_await exec(w, w.prog().root, gc);
}

task<void> root_body(world& w, ctx& gc, cancel_scope& net, task_group& g) {
  gc.group = &g;
  g.spawn(safety_net, std::ref(w), std::ref(net));
  g.spawn(main_part, std::ref(w), std::cref(gc), std::ref(net));
  co_return;
}

task<void> root_task(world& w) {
  w.start();
  cancel_scope net;
  ctx root;
  ctx gc = ctx::of(ctx::type::group, -1, root);
  auto body = [&w, &gc, &net](task_group& g) { return root_body(w, gc, net, g); };
  co_await with_task_group(body);
}

}  // namespace

std::optional<std::string> run_program(const program& p, const settings& s) {
  std::unique_ptr<event_loop> loop;
  if (s.m == mode::real)
    loop = std::make_unique<event_loop>();
  else
    loop = std::make_unique<virtual_loop>();
  world w(p, s, *loop);
  try {
    outcome<void> o = loop->run(root_task(w));
    if (o.has_error())
      w.observe(o.error(), "the root");
    else if (o.cancelled())
      w.violation("the root task ended cancelled, but nothing cancels it");
  } catch (const deadlock_error& e) {
    w.deadlock(e.what());
  } catch (const std::exception& e) {
    w.violation(std::string("event_loop::run threw: ") + e.what());
  }
  w.check_end();
  return w.failure();
}

}  // namespace grove::stress
