// Helpers for tests on the virtual-clock loop.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <grove/awaitable.hpp>  // core only: core tests link grove::core alone
#include <grove/cancel.hpp>
#include <grove/errors.hpp>
#include <grove/event.hpp>
#include <grove/event_loop.hpp>
#include <grove/finally.hpp>
#include <grove/gather.hpp>
#include <grove/outcome.hpp>
#include <grove/semaphore.hpp>
#include <grove/settle.hpp>
#include <grove/task.hpp>
#include <grove/task_group.hpp>
#include <grove/thread.hpp>
#include <grove/time.hpp>
#include <string>
#include <vector>

namespace grove::testing {

using namespace std::chrono_literals;

// Milliseconds of virtual time since the loop started.
inline long long ms() {
  static_assert(sizeof(long long) >= 8);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
}

// Runs `t` on a fresh virtual-clock loop and returns its outcome.
template <class T>
outcome<T> run_virtual(task<T> t) {
  virtual_loop loop;
  return loop.run(std::move(t));
}

using lines = std::vector<std::string>;

// " at <virtual ms>", for journal lines.
inline std::string at() {
  return " at " + std::to_string(ms());
}

struct custom_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs the callables as concurrent children of one task group (they start
// in argument order, in the loop's next batch).
template <class... F>
task<void> concurrently(F... fs) {
  co_await with_task_group([&](task_group& g) -> task<void> {
    ((void)g.spawn(fs), ...);
    co_return;
  });
}

// Runs `body` inside `s`, so that a test can cancel one child on its own.
inline task<void> in_scope(cancel_scope& s, task<void> body) {
  co_await s.run(std::move(body));
}

// An ordered record of what happened, for timeline assertions.
struct journal {
  std::vector<std::string> lines;
  void operator()(std::string s) { lines.push_back(std::move(s)); }
};

// Appends "<label>" to a journal when destroyed: observes RAII order.
struct raii_probe {
  journal* j;
  std::string label;
  raii_probe(journal& jj, std::string l) : j(&jj), label(std::move(l)) {}
  raii_probe(const raii_probe&) = delete;
  raii_probe& operator=(const raii_probe&) = delete;
  ~raii_probe() { (*j)("~" + label); }
};

}  // namespace grove::testing
