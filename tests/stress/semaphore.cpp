// --mode semaphore: random operations on a few semaphores, checked after every
// operation against a model kept by the harness.
//
// A driver task performs one operation per step, synchronously: start a worker
// (acquire() or lock(), then hold until told), let a holder finish, release a
// permit itself, cancel a worker in whatever state it is (queued, handed a
// permit but not resumed, holding), cancel a holder and at once the waiter its
// release handed the permit to, try_acquire, over-release a bounded
// semaphore. Invariants, per semaphore, after every step:
//   available + held + handed == initial  (handed >= 0: handed to a waiter not
//                                           yet resumed; held counted here)
//   waiters + handed == queued             (queued: workers suspended in
//                                           acquire, counted here)
//   available > 0 implies waiters == 0     (no barging)
// and a worker that resumes with a permit is the oldest queued one (FIFO).
#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "world.hpp"

namespace grove::stress {
namespace {

constexpr int slot_count = 12;

struct sem_model {
  explicit sem_model(const sem_spec& s)
      : sem(s.bounded ? semaphore::bounded(static_cast<std::size_t>(s.permits))
                      : semaphore(static_cast<std::size_t>(s.permits))),
        initial(s.permits),
        bounded(s.bounded) {}
  semaphore sem;
  int initial;
  bool bounded;
  int held = 0;           // by workers
  int driver_held = 0;    // taken by the driver with try_acquire()
  std::deque<int> queue;  // slots suspended in acquire, oldest first
};

// starting: spawned, or queued in acquire; holding: has its permit; ending:
// its frame is gone, slot_task has not resumed yet.
enum class phase { idle, starting, holding, ending };

struct slot {
  int sem = -1;
  bool use_lock = false;
  phase ph = phase::idle;
  bool released_by_driver = false;  // acquire() style: the driver released its permit
  std::unique_ptr<cancel_scope> scope;
  std::unique_ptr<event> go;  // set: the holder finishes
};

struct sem_world {
  sem_world(std::uint64_t seed, long n, bool v)
      : r(seed), ops(n), verbose(v), slots(static_cast<std::size_t>(slot_count)) {}
  rng r;
  long ops;
  bool verbose;
  long op = 0;
  std::vector<std::unique_ptr<sem_model>> sems;
  std::vector<slot> slots;
  std::optional<std::string> failure;

  void fail(const std::string& what) {
    if (!failure) failure = "at operation " + std::to_string(op) + ": " + what;
  }
  void trace(const std::string& what) const {
    if (verbose) std::printf("  [op %ld] %s\n", op, what.c_str());
  }
  void check(const char* when);
};

void sem_world::check(const char* when) {
  for (std::size_t i = 0; i < sems.size(); ++i) {
    const sem_model& m = *sems[i];
    auto available = static_cast<long>(m.sem.available());
    auto waiters = static_cast<long>(m.sem.waiters());
    long handed = m.initial - available - m.held - m.driver_held;
    auto queued = static_cast<long>(m.queue.size());
    std::string state = "semaphore " + std::to_string(i) + " " + when + ": initial " +
                        std::to_string(m.initial) + ", available " + std::to_string(available) +
                        ", held " + std::to_string(m.held + m.driver_held) + ", waiters " +
                        std::to_string(waiters) + ", queued " + std::to_string(queued);
    if (handed < 0) fail(state + ": more permits out than exist");
    if (waiters + handed != queued)
      fail(state + ": waiters + handed (" + std::to_string(handed) + ") != queued workers");
    if (available > 0 && waiters > 0) fail(state + ": free permits while tasks wait");
  }
}

// A worker's place in its semaphore's queue, from just before it suspends in
// acquire until it resumes or its frame goes.
class ticket {
 public:
  ticket(sem_world& w, sem_model& m, int slot) : w_(w), m_(m), slot_(slot) {
    if (m.sem.available() == 0) {  // it will suspend
      m.queue.push_back(slot);
      queued_ = true;
    }
  }
  ticket(const ticket&) = delete;
  ticket& operator=(const ticket&) = delete;
  ~ticket() { leave(); }

  void resumed() {
    if (queued_ && m_.queue.front() != slot_)
      w_.fail("slot " + std::to_string(slot_) + " got a permit before the older waiter slot " +
              std::to_string(m_.queue.front()) + " (not FIFO)");
    leave();
  }

 private:
  void leave() {
    if (!queued_) return;
    queued_ = false;
    auto it = std::find(m_.queue.begin(), m_.queue.end(), slot_);
    if (it != m_.queue.end()) m_.queue.erase(it);
  }
  sem_world& w_;
  sem_model& m_;
  int slot_;
  bool queued_ = false;
};

// Counts a worker's permit from acquisition until it goes back.
class held_permit {
 public:
  held_permit(sem_world& w, sem_model& m, slot& s) : m_(m), s_(s) {
    ++m.held;
    if (m.held + m.driver_held > m.initial) w.fail("more holders than permits");
    s.ph = phase::holding;
  }
  held_permit(const held_permit&) = delete;
  held_permit& operator=(const held_permit&) = delete;
  // lock(): the guard (declared before this) releases right after.
  // acquire(): release here, unless the driver already did.
  ~held_permit() {
    s_.ph = phase::ending;
    if (s_.released_by_driver) return;
    --m_.held;
    if (!s_.use_lock) m_.sem.release();
  }

 private:
  sem_model& m_;
  slot& s_;
};

task<void> worker(sem_world& w, int index) {
  slot& s = w.slots[static_cast<std::size_t>(index)];
  sem_model& m = *w.sems[static_cast<std::size_t>(s.sem)];
  ticket t(w, m, index);
  if (s.use_lock) {
    semaphore::guard g = co_await m.sem.lock();
    t.resumed();
    held_permit h(w, m, s);
    co_await s.go->wait();
  } else {
    co_await m.sem.acquire();
    t.resumed();
    held_permit h(w, m, s);
    co_await s.go->wait();
  }
}

task<void> slot_task(sem_world& w, int index) {
  slot& s = w.slots[static_cast<std::size_t>(index)];
  co_await s.scope->run(worker(w, index));
  s.ph = phase::idle;
}

std::vector<int> slots_where(sem_world& w, const std::function<bool(const slot&)>& pred) {
  std::vector<int> out;
  for (int i = 0; i < slot_count; ++i)
    if (pred(w.slots[static_cast<std::size_t>(i)])) out.push_back(i);
  return out;
}

void cancel_slot(sem_world& w, int i, const char* why) {
  w.trace(std::string("cancel slot ") + std::to_string(i) + " (" + why + ")");
  w.slots[static_cast<std::size_t>(i)].scope->cancel();
}

// After a release: cancel, in the same step, the waiter it handed the permit to.
void maybe_cancel_handed(sem_world& w, sem_model& m, int queued_before) {
  if (queued_before == 0 || m.queue.empty() || !w.r.chance(60)) return;
  w.check("after the release");
  cancel_slot(w, m.queue.front(), "was just handed a permit");
}

void start_worker(sem_world& w, task_group& g) {
  auto idle = slots_where(w, [](const slot& s) { return s.ph == phase::idle; });
  if (idle.empty()) return;
  int i = w.r.pick(idle);
  slot& s = w.slots[static_cast<std::size_t>(i)];
  s.sem = w.r.below(static_cast<int>(w.sems.size()));
  s.use_lock = w.r.chance(50);
  s.released_by_driver = false;
  s.ph = phase::starting;
  s.scope = std::make_unique<cancel_scope>();
  s.go = std::make_unique<event>();
  w.trace("start slot " + std::to_string(i) + " on semaphore " + std::to_string(s.sem) +
          (s.use_lock ? " with lock()" : " with acquire()"));
  g.spawn(slot_task, std::ref(w), i);
}

void step(sem_world& w, task_group& g) {
  int roll = w.r.below(100);
  if (roll < 30) return start_worker(w, g);
  auto holders = slots_where(w, [](const slot& s) { return s.ph == phase::holding; });
  auto busy = slots_where(w, [](const slot& s) { return s.ph != phase::idle; });
  if (roll < 45) {  // a holder finishes on its own, in a later step
    if (holders.empty()) return;
    int i = w.r.pick(holders);
    w.trace("let slot " + std::to_string(i) + " finish");
    w.slots[static_cast<std::size_t>(i)].go->set();
  } else if (roll < 55) {  // the driver releases an acquire() holder's permit itself
    auto manual = slots_where(w, [](const slot& s) {
      return s.ph == phase::holding && !s.use_lock && !s.released_by_driver;
    });
    if (manual.empty()) return;
    int i = w.r.pick(manual);
    slot& s = w.slots[static_cast<std::size_t>(i)];
    sem_model& m = *w.sems[static_cast<std::size_t>(s.sem)];
    auto queued = static_cast<int>(m.queue.size());
    w.trace("release slot " + std::to_string(i) + "'s permit");
    s.released_by_driver = true;
    --m.held;
    m.sem.release();
    s.go->set();
    maybe_cancel_handed(w, m, queued);
  } else if (roll < 75) {  // cancel a worker, whatever it is doing
    if (busy.empty()) return;
    cancel_slot(w, w.r.pick(busy), "random");
  } else if (roll < 85) {  // cancel a holder: its permit goes to the oldest waiter...
    if (holders.empty()) return;
    int i = w.r.pick(holders);
    sem_model& m = *w.sems[static_cast<std::size_t>(w.slots[static_cast<std::size_t>(i)].sem)];
    auto queued = static_cast<int>(m.queue.size());
    cancel_slot(w, i, "holder");
    maybe_cancel_handed(w, m, queued);  // ...who is cancelled before it resumes
  } else if (roll < 92) {               // the driver takes or gives back a permit
    sem_model& m = *w.r.pick(w.sems);
    if (m.driver_held > 0 && w.r.chance(50)) {
      auto queued = static_cast<int>(m.queue.size());
      w.trace("driver releases its permit");
      --m.driver_held;
      m.sem.release();
      maybe_cancel_handed(w, m, queued);
    } else {
      bool waiting = m.sem.waiters() > 0;
      bool took = m.sem.try_acquire();
      if (took && waiting) w.fail("try_acquire barged ahead of waiting tasks");
      if (took) ++m.driver_held;
      w.trace(took ? "driver took a permit" : "driver's try_acquire failed");
    }
  } else if (roll < 95) {  // over-release a bounded semaphore whose permits are all in
    sem_model& m = *w.r.pick(w.sems);
    if (!m.bounded || m.sem.available() != static_cast<std::size_t>(m.initial)) return;
    try {
      m.sem.release();
      w.fail("release() on a full bounded semaphore did not throw");
    } catch (const semaphore_overflow_error&) {
    }
    if (m.sem.available() != static_cast<std::size_t>(m.initial))
      w.fail("a refused release() changed the count");
  }
  // else: nothing; the step only yields
}

task<void> drive(sem_world& w, task_group& g) {
  for (w.op = 0; w.op < w.ops && !w.failure; ++w.op) {
    step(w, g);
    w.check("after the operation");
    if (w.r.chance(60)) {
      co_await checkpoint();
      w.check("after a loop step");
    }
  }
  // Wind down: every worker goes, every permit must come back.
  for (int i = 0; i < slot_count; ++i)
    if (w.slots[static_cast<std::size_t>(i)].ph != phase::idle) cancel_slot(w, i, "wind down");
  for (auto& m : w.sems)
    for (; m->driver_held > 0; --m->driver_held) m->sem.release();
  for (int k = 0;
       k < 100 && !slots_where(w, [](const slot& s) { return s.ph != phase::idle; }).empty(); ++k)
    co_await checkpoint();
  w.check("at the end");
  for (std::size_t i = 0; i < w.sems.size(); ++i) {
    const sem_model& m = *w.sems[i];
    if (m.sem.available() != static_cast<std::size_t>(m.initial) || m.sem.waiters() != 0 ||
        m.held != 0)
      w.fail("semaphore " + std::to_string(i) +
             " at the end: " + std::to_string(m.sem.available()) + " of " +
             std::to_string(m.initial) + " permits back, " + std::to_string(m.sem.waiters()) +
             " waiters, " + std::to_string(m.held) + " held");
  }
}

task<void> driver(sem_world& w) {
  auto body = [&w](task_group& g) { return drive(w, g); };
  co_await with_task_group(body);
}

}  // namespace

std::optional<std::string> run_semaphore(std::uint64_t seed, long ops, bool verbose) {
  sem_world w(seed, ops, verbose);
  int count = w.r.between(1, 3);
  for (int i = 0; i < count; ++i) {
    sem_spec spec{w.r.between(1, 3), w.r.chance(50)};
    w.sems.push_back(std::make_unique<sem_model>(spec));
    w.trace("semaphore " + std::to_string(i) + ": " + std::to_string(spec.permits) + " permits" +
            (spec.bounded ? ", bounded" : ""));
  }
  try {
    virtual_loop loop;
    outcome<void> o = loop.run(driver(w));
    if (o.has_error()) w.fail("the driver failed: " + describe_exception(o.error()));
  } catch (const std::exception& e) {
    w.fail(std::string("event_loop::run threw: ") + e.what());
  }
  return w.failure;
}

}  // namespace grove::stress
