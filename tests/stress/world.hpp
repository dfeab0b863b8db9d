// The world a generated program runs in: its semaphores and events, the
// registry of live scopes and groups (for cancellers), the harness's model of
// which contexts are cancelled, and the ledger of everything the invariants
// need (exceptions thrown and observed, cleanups, probes, permit holders).
#pragma once

#include <atomic>
#include <deque>
#include <exception>
#include <grove/grove.hpp>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "stress.hpp"

namespace grove::stress {

// What generated code throws: each throw has its own id, so that the world can
// tell which ones reached the program again.
struct stress_error : std::runtime_error {
  explicit stress_error(int xid)
      : std::runtime_error("stress error #" + std::to_string(xid)), id(xid) {}
  int id;
};

enum class verdict { no, maybe, yes };

// The harness's model of one cancellation context (grove's cancel_node chain):
// a frame's code is doomed when some context from it outwards, up to and
// including the first shielding one, is cancelled (DESIGN §1.3).
struct ctx {
  enum class type : unsigned char { root, group, scope, deadline, shield, cleanup, runner };
  type t = type::root;
  const ctx* parent = nullptr;
  int node = -1;
  const task_group* group = nullptr;    // group: set by the group's body
  const cancel_scope* scope = nullptr;  // scope
  const bool* flag = nullptr;           // runner: run_tasks' fail_fast cancelled its group
  time_point lo{}, hi{};                // deadline: grove's deadline lies in [lo, hi]
  bool past_at_start = false;           // deadline: already passed when the scope armed
  bool shield = false;

  static ctx of(type t, int node, const ctx& parent) {
    ctx c;
    c.t = t;
    c.node = node;
    c.parent = &parent;
    c.shield = t == type::shield || t == type::cleanup;
    return c;
  }
  std::string name() const;
};

struct sem_slot {
  sem_slot(const sem_spec& s)
      : sem(s.bounded ? semaphore::bounded(static_cast<std::size_t>(s.permits))
                      : semaphore(static_cast<std::size_t>(s.permits))),
        permits(s.permits) {}
  semaphore sem;
  int permits;
  int holders = 0;  // counted by the harness between acquisition and release
};

class world {
 public:
  world(const program& p, const settings& s, event_loop& loop);
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  // --- time: ticks on the loop clock, from the root's start ---
  void start() { start_ = loop_.now(); }
  time_point at(int tick) const { return start_ + tick * settings_.tick; }
  duration ticks(int n) const { return n * settings_.tick; }
  std::string now_string() const;
  const program& prog() const { return program_; }

  // --- the cancellation model ---
  verdict cancelled_here(const ctx& c);
  // yes: code at `c` must not pass its next suspension point. `why` names the
  // cancelled context.
  verdict doomed(const ctx& c, std::string* why = nullptr);

  // --- registry of live scopes and groups, by node id ---
  void enlist(int node, cancel_scope* s) { scopes_[static_cast<std::size_t>(node)] = s; }
  void enlist(int node, task_group* g) { groups_[static_cast<std::size_t>(node)] = g; }
  void delist(int node) {
    scopes_[static_cast<std::size_t>(node)] = nullptr;
    groups_[static_cast<std::size_t>(node)] = nullptr;
  }
  void cancel_target(int target, int by) noexcept;
  // Cancels issued by probe destructors so far: frames destroyed after a
  // scope decided it caught (at the end of its co_await) may cancel around it.
  long probe_cancels() const { return probe_cancels_; }
  void count_probe_cancel() { ++probe_cancels_; }

  sem_slot& sem(int i) { return *sems_[static_cast<std::size_t>(i)]; }
  event& ev(int i) { return events_[static_cast<std::size_t>(i)]; }
  std::deque<event>& events() { return events_; }

  // --- the ledger ---
  int throwing(int node);                               // a new exception id, thrown now
  std::atomic<bool>& thread_throw(int node, int& xid);  // an id a worker thread may throw
  void observe(const std::exception_ptr& e, const std::string& where);
  int new_probe(int node);
  void probe_destroyed(int id);
  int new_finally(int node);
  void finally_body_started(int inst);
  void cleanup_started(int inst);
  void cleanup_ended(int inst);
  void holder_in(int sem, int node);
  void holder_out(int sem) { --sems_[static_cast<std::size_t>(sem)]->holders; }

  void violation(const std::string& what);
  void deadlock(const std::string& report);
  void trace(int node, const std::string& what);
  bool verbose() const { return settings_.verbose; }
  bool real() const { return settings_.m == mode::real; }

  // The end-of-program invariants; then the first failure, if any.
  void check_end();
  std::optional<std::string> failure() const;

 private:
  struct finally_record {
    int node;
    bool body_started = false;
    int cleanups_started = 0;
    int cleanups_ended = 0;
  };
  struct probe_record {
    int node;
    bool destroyed = false;
  };
  struct thrown_record {
    int node;
    bool certain;  // false: thrown only if its thread flag is set
    bool observed = false;
  };

  void observe_iteration();
  bool deadline_fired(time_point t);

  const program& program_;
  settings settings_;
  event_loop& loop_;
  time_point start_{};
  time_point iteration_{};       // the latest loop iteration the harness ran in
  time_point prev_iteration_{};  // the one before it (ended: its timers have all fired)
  std::vector<cancel_scope*> scopes_;
  std::vector<task_group*> groups_;
  std::vector<std::unique_ptr<sem_slot>> sems_;
  std::deque<event> events_;
  std::vector<thrown_record> thrown_;
  std::deque<std::atomic<bool>> thread_flags_;
  std::vector<int> thread_xids_;
  std::vector<probe_record> probes_;
  std::vector<finally_record> finallies_;
  std::vector<std::string> violations_;
  std::optional<std::string> deadlock_;
  long probe_cancels_ = 0;
};

// RAII in a node's frame (or a spawn argument): counted by the world; may
// cancel an enclosing scope or group when destroyed.
class probe {
 public:
  probe(world& w, int node, const probe_spec& spec);
  probe(probe&& o) noexcept;
  probe& operator=(probe&&) = delete;
  ~probe();
  void completed() noexcept { completed_ = true; }

 private:
  world* w_;
  int node_;
  int id_ = -1;  // -1: owns nothing (absent, or moved from)
  probe_spec spec_;
  bool completed_ = false;
};

// Every node's frame starts with one: the node's probe and its trace.
class entry {
 public:
  entry(world& w, const node& n);
  entry(const entry&) = delete;
  entry& operator=(const entry&) = delete;
  ~entry();
  void done();

 private:
  world& w_;
  const node& n_;
  probe probe_;
  bool done_ = false;
};

// One suspension point: records whether the context was doomed when the
// co_await started; passed() (code after it runs) is then a violation.
class point {
 public:
  point(world& w, const ctx& c, int node, const char* what);
  void passed();

 private:
  world& w_;
  int node_;
  const char* what_;
  std::string why_;  // non-empty: doomed at the start
};

// Removes a scope or group from the registry when the block that ran it ends.
class enlisted {
 public:
  enlisted(world& w, int node) : w_(w), node_(node) {}
  enlisted(const enlisted&) = delete;
  enlisted& operator=(const enlisted&) = delete;
  ~enlisted() { w_.delist(node_); }

 private:
  world& w_;
  int node_;
};

}  // namespace grove::stress
