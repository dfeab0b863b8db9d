// Programs with a leak bug: a semaphore or event destroyed while tasks wait
// on it. The debug build aborts on them (test_task_tree.cpp), a release
// build reports and orphans the waiters (test_leak_report_release.cpp).
#pragma once

#include <grove/debug.hpp>
#include <string>

#include "virtual_time.hpp"

namespace grove::testing {

// One task "stuck waiter" waits on a semaphore the group's body deletes;
// `dump_after` gets the task tree just after, then the group is cancelled.
inline task<void> semaphore_deleted_under_a_waiter(std::string* dump_after) {
  auto* sem = new semaphore(0);
  co_await with_task_group([&](task_group& g) -> task<void> {
    g.spawn(named("stuck waiter", [sem]() -> task<void> { co_await sem->acquire(); }));
    co_await sleep(1s);
    delete sem;  // the bug
    if (dump_after != nullptr) *dump_after = task_tree_text();
    g.cancel();  // an orphan unwinds without touching the semaphore
  });
}

// Tasks "first" and "second" wait on an event the body deletes.
inline task<void> event_deleted_under_two_waiters() {
  auto* ev = new event;
  co_await with_task_group([&](task_group& g) -> task<void> {
    g.spawn(named("first", [ev]() -> task<void> { co_await ev->wait(); }));
    g.spawn(named("second", [ev]() -> task<void> { co_await ev->wait(); }));
    co_await sleep(1s);
    delete ev;  // the bug
    g.cancel();
  });
}

}  // namespace grove::testing
