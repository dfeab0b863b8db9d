// grove_stress: random grove programs, generated from a seed, run and checked.
//
// A seed gives a `program`: a small tree of `node`s (groups, gathers, finally,
// scopes, semaphores, events, cancellers, ...). The runner (run.cpp) turns the
// tree into grove tasks and records what happened in a `world` (world.hpp); the
// world checks the invariants during the run and at its end. semaphore.cpp is
// the separate --mode semaphore stress of the semaphore's hand-off bookkeeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace grove::stress {

enum class mode { virtual_time, real, semaphore };

const char* to_string(mode m) noexcept;

// Seeded from the seed only, so a seed always gives the same program. Reduces
// with % instead of std::uniform_int_distribution, whose results differ
// between standard libraries.
class rng {
 public:
  explicit rng(std::uint64_t seed) : engine_(seed) {}
  int below(int n) {
    return static_cast<int>(engine_() % static_cast<std::uint64_t>(n > 0 ? n : 1));
  }
  int between(int lo, int hi) { return lo + below(hi - lo + 1); }  // inclusive
  bool chance(int percent) { return below(100) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(below(static_cast<int>(v.size())))];
  }

 private:
  std::mt19937_64 engine_;
};

enum class kind : unsigned char {
  seq,              // children one after the other
  sleep,            // sleep(duration) or, when `at` is set, sleep_until(at)
  checkpoint,       // checkpoint()
  fail,             // (sleep(duration) first if non-zero, then) throws a stress_error
  group,            // with_task_group: spawns the children (some after a delay)
  gather_vector,    // gather(std::vector<task<int>>)
  gather_variadic,  // gather(t1, t2[, t3])
  finally,          // finally(children[0], cleanup = children[1])
  shield,           // shield(children[0])
  scope,            // cancel_scope (optional deadline, optionally shielded) .run(children[0])
  move_on,          // move_on_at / move_on_after
  fail_after,       // fail_at / fail_after, catching its timeout_error
  try_catch,        // try { children[0] } catch (...) { record what was caught }
  hold,             // one permit of a semaphore (acquire()+release() or lock()) around children[0]
  wait_event,       // event.wait()
  set_event,        // event.set()
  thread,           // to_thread(tiny fn), which may throw
  run_tasks,        // run_tasks(children as jobs, limit, fail_fast)
  canceller,        // sleep_until(at), checkpoints, then cancel() the scope or group `target`
};

const char* to_string(kind k) noexcept;

// A probe is an RAII object in a node's frame (or a spawn argument): the world
// counts its constructions and destructions. It may cancel an enclosing scope
// or group from its destructor ("if this worker goes, stop the rest").
struct probe_spec {
  bool present = false;
  int cancel_target = -1;  // scope/group node id, or -1
  bool only_when_unwinding = false;
};

struct node {
  int id = 0;
  kind k = kind::seq;
  std::vector<node> children;
  int duration = 0;        // ticks: sleep, fail's delay, relative deadline, a group's late spawns
  int at = -1;             // absolute tick: sleep_until, deadlines, a canceller's time; -1: none
  int sem = -1;            // hold
  int event = -1;          // wait_event, set_event
  int target = -1;         // canceller: node id of a scope or group
  int limit = 0;           // run_tasks: max_concurrent
  int checkpoints = 0;     // canceller: checkpoints after waking, to land later in the same step
  int late = -1;           // group: children from this index on are spawned after `duration`
  bool relative = false;   // move_on / fail_after: the *_after form
  bool use_lock = false;   // hold: lock() guard instead of acquire()+release()
  bool shielded = false;   // scope
  bool fail_fast = false;  // run_tasks
  bool throws = false;     // thread
  bool spawn_probes = false;  // group: every spawn carries a probe argument
  probe_spec probe;
  int est_start = 0;  // estimated ticks, for the trace only
  int est_end = 0;
};

struct sem_spec {
  int permits = 1;
  bool bounded = false;
};

struct program {
  std::uint64_t seed = 0;
  node root;
  std::vector<sem_spec> sems;
  int events = 0;
  int horizon = 0;  // tick at which the safety net sets every event
  int nodes = 0;
};

program generate(std::uint64_t seed);
std::string describe(const program& p);

struct settings {
  mode m = mode::virtual_time;
  bool verbose = false;
  std::chrono::nanoseconds tick{};  // one generated tick on the loop clock
};

// Empty when every invariant held; otherwise what failed first.
std::optional<std::string> run_program(const program& p, const settings& s);

// --mode semaphore: `ops` random operations on a few semaphores.
std::optional<std::string> run_semaphore(std::uint64_t seed, long ops, bool verbose);

}  // namespace grove::stress
