// The generator: a seed gives a random program tree of bounded depth and size.
//
// It estimates when each node starts and ends (ticks, ignoring waits on
// semaphores and events) and keeps the instants it used: sleep wake-ups and
// deadlines. Later deadlines, sleep_until times and cancellers pick from those
// instants most of the time, so that cancellations land in the very loop step
// where a timer fires, a gather or group completes or a permit is handed over.
#include <algorithm>
#include <initializer_list>
#include <utility>

#include "stress.hpp"

namespace grove::stress {
namespace {

constexpr int max_depth = 4;

// Where in the tree a node is generated.
struct path {
  int depth = 0;
  int min_sem = 0;  // semaphores are taken in index order: no program deadlocks on them
  bool in_cleanup = false;
  std::vector<int> targets;  // enclosing scopes and groups, innermost last
};

class generator {
 public:
  explicit generator(std::uint64_t seed) : r_(seed) { p_.seed = seed; }
  program make();

 private:
  node any(int start, const path& at);
  node leaf(int start, const path& at);
  node composite(int start, const path& at);
  node motif(int start, const path& at);
  node finally_over_gather(int start, int d, const path& at);
  node finally_over_group(int start, int d, const path& at);
  node permit_handback(int start, int d, const path& at);
  node sleep_for(int d, int start, const path& at);
  node fresh(kind k, int start, const path& at);
  void children(node& n, int count, int start, const path& in);
  void add_canceller(node& parent, int start, const path& at, std::size_t first_target);
  kind choose(std::initializer_list<std::pair<kind, int>> weights);
  int pick_instant(int start);
  int pick_deadline(int start);
  int small_duration() { return r_.pick(durations_); }
  static path inside(const path& at) {
    path p = at;
    ++p.depth;
    return p;
  }

  rng r_;
  program p_;
  int next_id_ = 0;
  int budget_ = 0;
  std::vector<int> instants_;
  std::vector<int> targets_;  // every scope and group, in generation order
  const std::vector<int> durations_{0, 1, 1, 2, 2, 3, 3, 5, 8};
};

program generator::make() {
  int sems = r_.below(4);
  for (int i = 0; i < sems; ++i) p_.sems.push_back({r_.between(1, 3), r_.chance(50)});
  p_.events = r_.below(3);
  budget_ = r_.between(30, 60);
  path top;
  // The top is always a group: the program starts concurrent.
  node root = fresh(kind::group, 0, top);
  targets_.push_back(root.id);
  path in = inside(top);
  in.targets.push_back(root.id);
  children(root, r_.between(2, 3), 0, in);
  while (budget_ > 0 && root.children.size() < 6) children(root, 1, 0, in);
  add_canceller(root, 0, in, 1);
  p_.root = std::move(root);
  p_.nodes = next_id_;
  int last = p_.root.est_end;
  for (int t : instants_) last = std::max(last, t);
  p_.horizon = last + 30;
  return std::move(p_);
}

node generator::any(int start, const path& at) {
  static constexpr int nest_by_depth[max_depth] = {90, 80, 60, 45};
  if (at.depth < max_depth && budget_ > 0 &&
      r_.chance(at.in_cleanup ? 35 : nest_by_depth[at.depth]))
    return composite(start, at);
  return leaf(start, at);
}

kind generator::choose(std::initializer_list<std::pair<kind, int>> weights) {
  int total = 0;
  for (const auto& w : weights) total += w.second;
  int roll = r_.below(total);
  for (const auto& w : weights) {
    if (roll < w.second) return w.first;
    roll -= w.second;
  }
  return weights.begin()->first;
}

node generator::fresh(kind k, int start, const path& at) {
  node n;
  n.id = next_id_++;
  n.k = k;
  n.est_start = n.est_end = start;
  --budget_;
  if (r_.chance(20)) {
    n.probe.present = true;
    // "If this worker goes, stop the rest": mostly the innermost scope or
    // group, rarely the root group (which ends the whole program).
    std::vector<int> enclosing(at.targets.begin() + (at.targets.empty() ? 0 : 1), at.targets.end());
    if (r_.chance(3)) enclosing = at.targets;
    if (!enclosing.empty() && r_.chance(50)) {
      n.probe.cancel_target = r_.chance(60) ? enclosing.back() : r_.pick(enclosing);
      n.probe.only_when_unwinding = r_.chance(50);
    }
  }
  return n;
}

// Concurrent children, all starting at `start`.
void generator::children(node& n, int count, int start, const path& in) {
  for (int i = 0; i < count; ++i) {
    n.children.push_back(any(start, in));
    n.est_end = std::max(n.est_end, n.children.back().est_end);
  }
}

int generator::pick_instant(int start) {
  std::vector<int> later;
  for (int t : instants_)
    if (t >= start) later.push_back(t);
  if (!later.empty() && r_.chance(75)) return r_.pick(later);
  return start + r_.below(15);
}

int generator::pick_deadline(int start) {
  int t = pick_instant(start);
  instants_.push_back(t);
  return t;
}

node generator::leaf(int start, const path& at) {
  bool events = p_.events > 0;
  kind k = choose({{kind::sleep, 38},
                   {kind::checkpoint, 10},
                   {kind::fail, at.in_cleanup ? 15 : 12},
                   {kind::wait_event, events ? 6 : 0},
                   {kind::set_event, events ? 8 : 0},
                   {kind::thread, 6}});
  node n = fresh(k, start, at);
  switch (k) {
    case kind::sleep:
      if (r_.chance(25)) {
        n.at = pick_instant(start);
        n.est_end = std::max(start, n.at);
      } else {
        n.duration = small_duration();
        n.est_end = start + n.duration;
        instants_.push_back(n.est_end);
      }
      break;
    case kind::fail:
      n.duration = r_.chance(40) ? small_duration() : 0;
      n.est_end = start + n.duration;
      break;
    case kind::wait_event:
    case kind::set_event:
      n.event = r_.below(p_.events);
      break;
    case kind::thread:
      n.duration = r_.below(20);  // microseconds of spinning on the worker
      n.throws = r_.chance(25);
      break;
    default:
      break;
  }
  return n;
}

node generator::composite(int start, const path& at) {
  if (at.depth <= 2 && !at.in_cleanup && r_.chance(12)) return motif(start, at);
  bool sems = at.min_sem < static_cast<int>(p_.sems.size());
  kind k = choose({{kind::seq, 12},
                   {kind::group, 16},
                   {kind::gather_vector, 7},
                   {kind::gather_variadic, 6},
                   {kind::finally, 14},
                   {kind::shield, 4},
                   {kind::scope, 14},
                   {kind::move_on, 6},
                   {kind::fail_after, 6},
                   {kind::try_catch, 8},
                   {kind::hold, sems ? 10 : 0},
                   {kind::run_tasks, 5}});
  node n = fresh(k, start, at);
  path in = inside(at);
  std::size_t first_target = targets_.size();
  switch (k) {
    case kind::seq: {
      int t = start;
      for (int i = r_.between(2, 4); i > 0; --i) {
        n.children.push_back(any(t, in));
        t = n.children.back().est_end;
      }
      n.est_end = t;
      break;
    }
    case kind::group: {
      targets_.push_back(n.id);
      in.targets.push_back(n.id);
      int count = r_.between(1, 4);
      n.spawn_probes = r_.chance(25);
      if (r_.chance(30)) {
        n.late = r_.below(count);
        n.duration = std::max(1, small_duration());
      }
      for (int i = 0; i < count; ++i) {
        int t = n.late >= 0 && i >= n.late ? start + n.duration : start;
        n.children.push_back(any(t, in));
        n.est_end = std::max(n.est_end, n.children.back().est_end);
      }
      if (r_.chance(40)) add_canceller(n, start, in, first_target);
      break;
    }
    case kind::gather_vector:
      children(n, r_.between(1, 4), start, in);
      if (r_.chance(30)) add_canceller(n, start, in, first_target);
      break;
    case kind::gather_variadic:
      children(n, r_.between(1, 2), start, in);
      if (r_.chance(40)) add_canceller(n, start, in, first_target);
      if (n.children.size() < 2) children(n, 1, start, in);
      break;
    case kind::finally: {
      n.children.push_back(any(start, in));
      path cleanup = in;
      cleanup.in_cleanup = true;
      n.children.push_back(any(n.children[0].est_end, cleanup));
      n.est_end = n.children[1].est_end;
      break;
    }
    case kind::scope:
      targets_.push_back(n.id);
      in.targets.push_back(n.id);
      if (r_.chance(60)) n.at = pick_deadline(start);
      n.shielded = r_.chance(15);
      children(n, 1, start, in);
      break;
    case kind::move_on:
    case kind::fail_after:
      n.relative = r_.chance(40);
      if (n.relative) {
        n.duration = r_.below(13);  // 0: the deadline is already due when it arms
        instants_.push_back(start + n.duration);
      } else {
        n.at = pick_deadline(start);
      }
      children(n, 1, start, in);
      break;
    case kind::hold:
      n.sem = r_.between(at.min_sem, static_cast<int>(p_.sems.size()) - 1);
      n.use_lock = r_.chance(50);
      in.min_sem = n.sem + 1;
      children(n, 1, start, in);
      break;
    case kind::run_tasks:
      n.limit = r_.between(1, 3);
      n.fail_fast = r_.chance(40);
      children(n, r_.between(1, 5), start, in);
      if (r_.chance(25)) add_canceller(n, start, in, first_target);
      break;
    case kind::shield:
    case kind::try_catch:
    default:
      children(n, 1, start, in);
      break;
  }
  return n;
}

node generator::sleep_for(int d, int start, const path& at) {
  node n = fresh(kind::sleep, start, at);
  n.duration = d;
  n.est_end = start + d;
  instants_.push_back(n.est_end);
  return n;
}

// Shapes known to be delicate, built from the same parts with random
// parameters: a scope whose body is a finally (or holds permits), and a
// canceller that cancels the scope at the instant d at which the body's work
// wakes up or completes (before or after it in that loop step).
node generator::motif(int start, const path& at) {
  node g = fresh(kind::group, start, at);
  targets_.push_back(g.id);
  path in = inside(at);
  in.targets.push_back(g.id);
  node s = fresh(kind::scope, start, in);
  targets_.push_back(s.id);
  path body = inside(in);
  body.targets.push_back(s.id);
  int d = std::max(1, small_duration());
  bool sems = body.min_sem < static_cast<int>(p_.sems.size());
  switch (r_.below(sems ? 3 : 2)) {
    case 0:
      s.children.push_back(finally_over_gather(start, d, body));
      break;
    case 1:
      s.children.push_back(finally_over_group(start, d, body));
      break;
    default:
      s.children.push_back(permit_handback(start, d, body));
      break;
  }
  s.est_end = s.children[0].est_end;
  node c = fresh(kind::canceller, start, in);
  c.probe = {};
  c.target = s.id;
  c.at = start + d;
  c.checkpoints = r_.below(3);
  c.est_end = c.at;
  g.est_end = std::max(s.est_end, c.est_end);
  g.children.push_back(std::move(s));
  g.children.push_back(std::move(c));
  return g;
}

// finally(seq(gather(sleeps, the last ending at d), long sleep), cleanup)
node generator::finally_over_gather(int start, int d, const path& at) {
  node f = fresh(kind::finally, start, at);
  path in = inside(at);
  node body = fresh(kind::seq, start, in);
  path in2 = inside(in);
  node ga = fresh(r_.chance(50) ? kind::gather_vector : kind::gather_variadic, start, in2);
  path in3 = inside(in2);
  ga.children.push_back(sleep_for(d, start, in3));
  ga.children.push_back(sleep_for(r_.between(0, d), start, in3));
  if (r_.chance(40)) ga.children.push_back(sleep_for(d, start, in3));
  ga.est_end = start + d;
  body.children.push_back(std::move(ga));
  body.children.push_back(sleep_for(30, start + d, in2));
  body.est_end = start + d + 30;
  f.children.push_back(std::move(body));
  path cleanup = in;
  cleanup.in_cleanup = true;
  f.children.push_back(any(start + d, cleanup));
  f.est_end = f.children[1].est_end;
  return f;
}

// finally(group(sleepers whose probes cancel the group when destroyed), cleanup)
node generator::finally_over_group(int start, int d, const path& at) {
  node f = fresh(kind::finally, start, at);
  path in = inside(at);
  node g = fresh(kind::group, start, in);
  targets_.push_back(g.id);
  path in2 = inside(in);
  in2.targets.push_back(g.id);
  for (int i = r_.between(1, 3); i > 0; --i) {
    node sl = sleep_for(r_.chance(50) ? d : 30, start, in2);
    if (r_.chance(70)) {
      sl.probe.present = true;
      sl.probe.cancel_target = g.id;
      sl.probe.only_when_unwinding = r_.chance(50);
    }
    g.children.push_back(std::move(sl));
  }
  g.est_end = start + 30;
  f.children.push_back(std::move(g));
  path cleanup = in;
  cleanup.in_cleanup = true;
  f.children.push_back(any(start + 30, cleanup));
  f.est_end = f.children[1].est_end;
  return f;
}

// As many holders as the semaphore has permits, each waking at d, side by side
// with a finally whose cleanup needs a permit: cancelled at d, the holders are
// scheduled (not cancellable at once) and must give their permits back as they
// unwind, or the cleanup never gets one.
node generator::permit_handback(int start, int d, const path& at) {
  kind container = choose({{kind::gather_vector, 1}, {kind::gather_variadic, 1}, {kind::group, 1}});
  node c = fresh(container, start, at);
  path in = inside(at);
  if (container == kind::group) {
    targets_.push_back(c.id);
    in.targets.push_back(c.id);
  }
  int sem = r_.between(at.min_sem, static_cast<int>(p_.sems.size()) - 1);
  int holders = std::min(p_.sems[static_cast<std::size_t>(sem)].permits,
                         container == kind::gather_variadic ? 2 : 3);
  path held = inside(in);
  held.min_sem = sem + 1;
  for (int i = 0; i < holders; ++i) {
    node h = fresh(kind::hold, start, in);
    h.sem = sem;
    h.use_lock = r_.chance(50);
    node work = fresh(kind::seq, start, held);
    path in3 = inside(held);
    work.children.push_back(sleep_for(d, start, in3));
    if (r_.chance(50)) work.children.push_back(fresh(kind::checkpoint, start + d, in3));
    work.children.push_back(sleep_for(30, start + d, in3));
    work.est_end = start + d + 30;
    h.est_end = work.est_end;
    h.children.push_back(std::move(work));
    c.children.push_back(std::move(h));
  }
  node f = fresh(kind::finally, start, in);
  path in2 = inside(in);
  f.children.push_back(sleep_for(30, start, in2));
  node h = fresh(kind::hold, start + 30, in2);
  h.sem = sem;
  h.use_lock = r_.chance(50);
  path in3 = inside(in2);
  in3.min_sem = sem + 1;
  in3.in_cleanup = true;
  h.children.push_back(sleep_for(r_.below(2), start + 30, in3));
  f.children.push_back(std::move(h));
  f.est_end = start + 31;
  c.children.push_back(std::move(f));
  c.est_end = start + d + 30;
  return c;
}

// A canceller child of `parent`: it cancels a scope or group generated inside
// parent (preferred), an enclosing one, or any, at an instant already in use.
void generator::add_canceller(node& parent, int start, const path& at, std::size_t first_target) {
  // The root group (targets_[0], at.targets[0]) only rarely: it ends everything.
  std::vector<int> inner(targets_.begin() + static_cast<std::ptrdiff_t>(first_target),
                         targets_.end());
  std::vector<int> enclosing(at.targets.begin() + (at.targets.empty() ? 0 : 1), at.targets.end());
  std::vector<int> others(targets_.begin() + (targets_.empty() ? 0 : 1), targets_.end());
  const std::vector<int>* from = &inner;
  int roll = r_.below(100);
  if (roll >= 60 && roll < 85 && !enclosing.empty()) from = &enclosing;
  if (roll >= 85 || from->empty()) from = &others;
  if (roll >= 98 || from->empty()) from = &targets_;
  if (from->empty()) return;
  node n = fresh(kind::canceller, start, at);
  n.probe = {};
  n.target = r_.pick(*from);
  n.at = r_.chance(80) ? pick_instant(start) : start + r_.below(20);
  n.checkpoints = r_.below(3);
  n.est_end = std::max(start, n.at);
  parent.est_end = std::max(parent.est_end, n.est_end);
  parent.children.push_back(std::move(n));
}

void describe_node(const node& n, int depth, std::string& out) {
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
  out += "#" + std::to_string(n.id) + " " + to_string(n.k);
  auto add = [&](const std::string& s) { out += " " + s; };
  switch (n.k) {
    case kind::sleep:
      add(n.at >= 0 ? "until " + std::to_string(n.at) : std::to_string(n.duration) + " ticks");
      break;
    case kind::fail:
      if (n.duration > 0) add("after " + std::to_string(n.duration) + " ticks");
      break;
    case kind::group:
      if (n.late >= 0)
        add("(children from " + std::to_string(n.late) + " on spawned after " +
            std::to_string(n.duration) + " ticks)");
      if (n.spawn_probes) add("(probes as spawn arguments)");
      break;
    case kind::scope:
      if (n.at >= 0) add("deadline " + std::to_string(n.at));
      if (n.shielded) add("shielded");
      break;
    case kind::move_on:
    case kind::fail_after:
      add(n.relative ? "after " + std::to_string(n.duration) : "at " + std::to_string(n.at));
      break;
    case kind::hold:
      add("semaphore " + std::to_string(n.sem) + (n.use_lock ? " lock()" : " acquire()"));
      break;
    case kind::wait_event:
    case kind::set_event:
      add("event " + std::to_string(n.event));
      break;
    case kind::thread:
      add(std::to_string(n.duration) + " us" + (n.throws ? ", throws" : ""));
      break;
    case kind::run_tasks:
      add("limit " + std::to_string(n.limit) + (n.fail_fast ? " fail_fast" : ""));
      break;
    case kind::canceller:
      add("cancels #" + std::to_string(n.target) + " at " + std::to_string(n.at) + " +" +
          std::to_string(n.checkpoints) + " checkpoints");
      break;
    default:
      break;
  }
  if (n.probe.present) {
    add("[probe");
    if (n.probe.cancel_target >= 0)
      out += ": cancels #" + std::to_string(n.probe.cancel_target) +
             (n.probe.only_when_unwinding ? " when unwinding" : " when destroyed");
    out += "]";
  }
  out += "  (~" + std::to_string(n.est_start) + ".." + std::to_string(n.est_end) + ")\n";
  for (std::size_t i = 0; i < n.children.size(); ++i) {
    if (n.k == kind::finally && i == 1) {
      out.append(static_cast<std::size_t>(depth + 1) * 2, ' ');
      out += "cleanup:\n";
    }
    describe_node(n.children[i], depth + 1, out);
  }
}

}  // namespace

const char* to_string(mode m) noexcept {
  switch (m) {
    case mode::virtual_time:
      return "virtual";
    case mode::real:
      return "real";
    case mode::semaphore:
      return "semaphore";
  }
  return "?";
}

const char* to_string(kind k) noexcept {
  switch (k) {
    case kind::seq:
      return "seq";
    case kind::sleep:
      return "sleep";
    case kind::checkpoint:
      return "checkpoint";
    case kind::fail:
      return "fail";
    case kind::group:
      return "group";
    case kind::gather_vector:
      return "gather(vector)";
    case kind::gather_variadic:
      return "gather(variadic)";
    case kind::finally:
      return "finally";
    case kind::shield:
      return "shield";
    case kind::scope:
      return "cancel_scope";
    case kind::move_on:
      return "move_on";
    case kind::fail_after:
      return "fail_after";
    case kind::try_catch:
      return "try_catch";
    case kind::hold:
      return "hold";
    case kind::wait_event:
      return "wait_event";
    case kind::set_event:
      return "set_event";
    case kind::thread:
      return "to_thread";
    case kind::run_tasks:
      return "run_tasks";
    case kind::canceller:
      return "canceller";
  }
  return "?";
}

program generate(std::uint64_t seed) {
  return generator(seed).make();
}

std::string describe(const program& p) {
  std::string out = "program of seed " + std::to_string(p.seed) + ": " + std::to_string(p.nodes) +
                    " nodes, " + std::to_string(p.events) + " events, semaphores [";
  for (std::size_t i = 0; i < p.sems.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(p.sems[i].permits) + (p.sems[i].bounded ? " bounded" : "");
  }
  out += "], safety net at tick " + std::to_string(p.horizon) + "\n";
  describe_node(p.root, 1, out);
  return out;
}

}  // namespace grove::stress
