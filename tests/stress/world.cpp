#include "world.hpp"

#include <cstdio>
#include <utility>

namespace grove::stress {

std::string ctx::name() const {
  std::string id = "#" + std::to_string(node);
  switch (t) {
    case type::root:
      return "the root";
    case type::group:
      return node < 0 ? "the root group" : "task group " + id;
    case type::scope:
      return "cancel_scope " + id;
    case type::deadline:
      return "the deadline of " + id;
    case type::shield:
      return "shield " + id;
    case type::cleanup:
      return "the cleanup of " + id;
    case type::runner:
      return "run_tasks " + id + " (fail_fast)";
  }
  return "context " + id;
}

world::world(const program& p, const settings& s, event_loop& loop)
    : program_(p), settings_(s), loop_(loop) {
  scopes_.assign(static_cast<std::size_t>(p.nodes), nullptr);
  groups_.assign(static_cast<std::size_t>(p.nodes), nullptr);
  for (const sem_spec& spec : p.sems) sems_.push_back(std::make_unique<sem_slot>(spec));
  for (int i = 0; i < p.events; ++i) events_.emplace_back();
  iteration_ = prev_iteration_ = time_point::min();
}

std::string world::now_string() const {
  if (event_loop::current() == nullptr) return "the end";
  auto since = loop_.now() - start_;
  if (!real()) return std::to_string(since / settings_.tick);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f",
                static_cast<double>(since.count()) / static_cast<double>(settings_.tick.count()));
  return buf;
}

// The harness sees iterations only when it runs; an iteration it saw and that
// has ended fired every timer due at its start, and ran what they posted.
void world::observe_iteration() {
  time_point it = loop_.iteration_time();
  if (it == iteration_) return;
  prev_iteration_ = iteration_;
  iteration_ = it;
}

bool world::deadline_fired(time_point t) {
  observe_iteration();
  if (prev_iteration_ != time_point::min() && prev_iteration_ >= t) return true;
  // A virtual clock passes a timer's instant only after running it.
  return !real() && loop_.now() > t;
}

verdict world::cancelled_here(const ctx& c) {
  switch (c.t) {
    case ctx::type::root:
    case ctx::type::shield:
    case ctx::type::cleanup:
      return verdict::no;
    case ctx::type::group:
      return c.group != nullptr && c.group->cancel_called() ? verdict::yes : verdict::no;
    case ctx::type::scope:
      return c.scope->cancel_called() ? verdict::yes : verdict::no;
    case ctx::type::runner:
      return *c.flag ? verdict::yes : verdict::no;
    case ctx::type::deadline:
      if (c.past_at_start || deadline_fired(c.hi)) return verdict::yes;
      // Timers fire at the start of an iteration, for its iteration time.
      if (loop_.iteration_time() < c.lo) return verdict::no;
      return verdict::maybe;
  }
  return verdict::maybe;
}

verdict world::doomed(const ctx& c, std::string* why) {
  verdict worst = verdict::no;
  for (const ctx* p = &c; p != nullptr; p = p->parent) {
    verdict v = cancelled_here(*p);
    if (v == verdict::yes) {
      if (why != nullptr) *why = p->name();
      return verdict::yes;
    }
    if (v == verdict::maybe) worst = verdict::maybe;
    if (p->shield) break;
  }
  return worst;
}

void world::cancel_target(int target, int by) noexcept {
  auto i = static_cast<std::size_t>(target);
  if (cancel_scope* s = scopes_[i]) {
    trace(by, "cancels cancel_scope #" + std::to_string(target));
    s->cancel();
  } else if (task_group* g = groups_[i]) {
    trace(by, "cancels task group #" + std::to_string(target));
    g->cancel();
  } else {
    trace(by, "would cancel #" + std::to_string(target) + ", which is not running");
  }
}

int world::throwing(int node) {
  thrown_.push_back({node, true});
  int xid = static_cast<int>(thrown_.size()) - 1;
  trace(node, "throws stress error #" + std::to_string(xid));
  return xid;
}

std::atomic<bool>& world::thread_throw(int node, int& xid) {
  thrown_.push_back({node, false});
  xid = static_cast<int>(thrown_.size()) - 1;
  thread_xids_.push_back(xid);
  return thread_flags_.emplace_back(false);
}

void world::observe(const std::exception_ptr& e, const std::string& where) {
  try {
    std::rethrow_exception(e);
  } catch (const stress_error& x) {
    if (x.id < 0 || static_cast<std::size_t>(x.id) >= thrown_.size()) {
      violation("exception with an unknown id #" + std::to_string(x.id) + " at " + where);
      return;
    }
    thrown_[static_cast<std::size_t>(x.id)].observed = true;
    trace(-1, where + " observed stress error #" + std::to_string(x.id));
  } catch (const exception_group& g) {
    for (const std::exception_ptr& m : g.exceptions()) observe(m, where);
  } catch (const timeout_error&) {
    violation("a timeout_error reached " + where + " (each fail_after node catches its own)");
  } catch (...) {
    violation("unexpected exception at " + where + ": " + describe_exception(e));
  }
}

int world::new_probe(int node) {
  probes_.push_back({node});
  return static_cast<int>(probes_.size()) - 1;
}

void world::probe_destroyed(int id) {
  probe_record& r = probes_[static_cast<std::size_t>(id)];
  if (r.destroyed)
    violation("probe " + std::to_string(id) + " of node #" + std::to_string(r.node) +
              " destroyed twice");
  r.destroyed = true;
}

int world::new_finally(int node) {
  finallies_.push_back({node});
  return static_cast<int>(finallies_.size()) - 1;
}

void world::finally_body_started(int inst) {
  finally_record& r = finallies_[static_cast<std::size_t>(inst)];
  if (r.body_started) violation("the body of finally #" + std::to_string(r.node) + " ran twice");
  r.body_started = true;
}

void world::cleanup_started(int inst) {
  finally_record& r = finallies_[static_cast<std::size_t>(inst)];
  ++r.cleanups_started;
  trace(r.node, "cleanup starts");
  if (r.cleanups_started > 1)
    violation("the cleanup of finally #" + std::to_string(r.node) + " started " +
              std::to_string(r.cleanups_started) + " times");
  if (!r.body_started)
    violation("the cleanup of finally #" + std::to_string(r.node) +
              " started although its body never did");
}

void world::cleanup_ended(int inst) {
  finally_record& r = finallies_[static_cast<std::size_t>(inst)];
  ++r.cleanups_ended;
  trace(r.node, "cleanup ends");
}

void world::holder_in(int sem, int node) {
  sem_slot& s = *sems_[static_cast<std::size_t>(sem)];
  ++s.holders;
  trace(node, "holds a permit of semaphore " + std::to_string(sem) + " (" +
                  std::to_string(s.holders) + "/" + std::to_string(s.permits) + ")");
  if (s.holders > s.permits)
    violation("semaphore " + std::to_string(sem) + " has " + std::to_string(s.holders) +
              " holders for " + std::to_string(s.permits) + " permits (node #" +
              std::to_string(node) + ")");
}

void world::violation(const std::string& what) {
  std::string when = now_string();
  violations_.push_back((when == "the end" ? "at " : "at tick ") + when + ": " + what);
  trace(-1, "VIOLATION: " + what);
}

void world::deadlock(const std::string& report) {
  deadlock_ = report;
}

void world::trace(int node, const std::string& what) {
  if (!settings_.verbose) return;
  std::string when = now_string();
  std::printf("  [%s%s] %s%s\n", when == "the end" ? "" : "t=", when.c_str(),
              node >= 0 ? ("#" + std::to_string(node) + " ").c_str() : "", what.c_str());
}

void world::check_end() {
  for (std::size_t i = 0; i < sems_.size(); ++i) {
    sem_slot& s = *sems_[i];
    std::string name = "semaphore " + std::to_string(i);
    if (s.sem.available() != static_cast<std::size_t>(s.permits))
      violation(name + ": " + std::to_string(s.sem.available()) +
                " permits available at the end, " + std::to_string(s.permits) + " expected");
    if (s.sem.waiters() != 0)
      violation(name + ": " + std::to_string(s.sem.waiters()) + " waiters at the end");
    if (s.holders != 0) violation(name + ": " + std::to_string(s.holders) + " holders at the end");
  }
  for (std::size_t i = 0; i < events_.size(); ++i)
    if (events_[i].waiters() != 0)
      violation("event " + std::to_string(i) + " has waiters at the end");
  for (const finally_record& r : finallies_) {
    std::string name = "finally #" + std::to_string(r.node);
    if (r.body_started && r.cleanups_started == 0)
      violation(name + ": the body started but the cleanup never ran");
    if (r.cleanups_started != r.cleanups_ended)
      violation(name + ": the cleanup started " + std::to_string(r.cleanups_started) +
                " time(s) and finished " + std::to_string(r.cleanups_ended) +
                " time(s) (cut short)");
  }
  for (std::size_t i = 0; i < probes_.size(); ++i)
    if (!probes_[i].destroyed)
      violation("probe " + std::to_string(i) + " of node #" + std::to_string(probes_[i].node) +
                " was never destroyed (leaked frame or argument)");
  for (std::size_t k = 0; k < thread_xids_.size(); ++k)
    if (thread_flags_[k].load()) thrown_[static_cast<std::size_t>(thread_xids_[k])].certain = true;
  for (std::size_t i = 0; i < thrown_.size(); ++i) {
    const thrown_record& r = thrown_[i];
    if (r.certain && !r.observed)
      violation("stress error #" + std::to_string(i) + " thrown by node #" +
                std::to_string(r.node) +
                " was lost (never caught, delivered in an outcome, a report or the root)");
    if (!r.certain && r.observed)
      violation("stress error #" + std::to_string(i) + " was observed but never thrown");
  }
}

std::optional<std::string> world::failure() const {
  std::string out;
  if (deadlock_) out = "no hang: grove::deadlock_error:\n" + *deadlock_;
  for (std::size_t i = 0; i < violations_.size() && i < 6; ++i) {
    if (!out.empty()) out += "\n  then ";
    out += violations_[i];
  }
  if (violations_.size() > 6)
    out += "\n  (and " + std::to_string(violations_.size() - 6) + " more)";
  if (out.empty()) return std::nullopt;
  return out;
}

probe::probe(world& w, int node, const probe_spec& spec) : w_(&w), node_(node), spec_(spec) {
  if (spec.present) id_ = w.new_probe(node);
}

probe::probe(probe&& o) noexcept
    : w_(o.w_),
      node_(o.node_),
      id_(std::exchange(o.id_, -1)),
      spec_(o.spec_),
      completed_(o.completed_) {}

probe::~probe() {
  if (id_ < 0) return;
  w_->probe_destroyed(id_);
  if (spec_.cancel_target >= 0 && !(spec_.only_when_unwinding && completed_)) {
    w_->count_probe_cancel();
    w_->cancel_target(spec_.cancel_target, node_);
  }
}

entry::entry(world& w, const node& n) : w_(w), n_(n), probe_(w, n.id, n.probe) {
  w.trace(n.id, std::string(to_string(n.k)) + " starts");
}

entry::~entry() {
  if (!done_) w_.trace(n_.id, std::string(to_string(n_.k)) + " unwinds");
}

void entry::done() {
  done_ = true;
  probe_.completed();
  w_.trace(n_.id, std::string(to_string(n_.k)) + " done");
}

point::point(world& w, const ctx& c, int node, const char* what) : w_(w), node_(node), what_(what) {
  std::string why;
  if (w.doomed(c, &why) == verdict::yes) why_ = why;
}

void point::passed() {
  if (why_.empty()) return;
  w_.violation("node #" + std::to_string(node_) + " ran on after " + what_ +
               ", which started while " + why_ +
               " was cancelled (no code may run after a cancelled suspension point)");
  why_.clear();
}

}  // namespace grove::stress
