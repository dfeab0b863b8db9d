// grove::event: set/wait/clear, wake-up through the ready queue, cancellation.
// Every test runs on the virtual clock.
#include <deque>
#include <grove/event.hpp>
#include <string>
#include <vector>

#include "virtual_time.hpp"

namespace {

using namespace std::chrono_literals;
using grove::cancel_scope;
using grove::checkpoint;
using grove::event;
using grove::sleep;
using grove::task;
using grove::task_group;
using grove::with_task_group;
using grove::testing::journal;
using grove::testing::ms;
using grove::testing::run_virtual;

using grove::testing::in_scope;

TEST(Event, StartsClear) {
  event e;
  EXPECT_FALSE(e.is_set());
  EXPECT_EQ(e.waiters(), 0u);
  e.set();
  EXPECT_TRUE(e.is_set());
  e.set();  // idempotent
  EXPECT_TRUE(e.is_set());
  e.clear();
  EXPECT_FALSE(e.is_set());
}

TEST(Event, WaitOnASetEventDoesNotSuspend) {
  journal j;
  event e;
  e.set();
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await e.wait();
        j("a passed");  // before b runs: wait() did not yield
        co_return;
      });
      g.spawn([&]() -> task<void> {
        j("b runs");
        co_return;
      });
      co_return;
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"a passed", "b runs"}));
}

TEST(Event, WaitThenSetResumesThroughTheReadyQueue) {
  journal j;
  event e;
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await e.wait();
        j("woken at " + std::to_string(ms()));
      });
      co_await sleep(3ms);
      EXPECT_EQ(e.waiters(), 1u);
      e.set();
      EXPECT_TRUE(j.lines.empty()) << "set() must not resume the waiter inline";
      EXPECT_EQ(e.waiters(), 0u);
      co_await checkpoint();
      EXPECT_EQ(j.lines, (std::vector<std::string>{"woken at 3"}));
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines.size(), 1u);
}

TEST(Event, SetWakesEveryWaiterOnceInArrivalOrder) {
  journal j;
  event e;
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      for (int i = 0; i < 5; ++i) {
        g.spawn([&, i]() -> task<void> {
          co_await sleep(std::chrono::milliseconds(i));  // arrive at 0, 1, 2, 3, 4 ms
          co_await e.wait();
          j("w" + std::to_string(i));
        });
      }
      co_await sleep(10ms);
      EXPECT_EQ(e.waiters(), 5u);
      e.set();
      e.set();  // a second set() must not wake anyone twice
      co_await sleep(1ms);
      e.set();
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"w0", "w1", "w2", "w3", "w4"}));
}

TEST(Event, CancelledWaiterIsNotResumedBySet) {
  journal j;
  event e;
  cancel_scope scope;
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await in_scope(scope, [&]() -> task<void> {
          co_await e.wait();
          j("resumed");  // never
        }());
        j("scope done");
      });
      co_await sleep(1ms);
      EXPECT_EQ(e.waiters(), 1u);
      scope.cancel();
      EXPECT_EQ(e.waiters(), 0u) << "cancelling a waiter unlinks it synchronously";
      e.set();
      co_await sleep(1ms);
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"scope done"}));
  EXPECT_TRUE(scope.cancelled_caught());
}

// set() woke three waiters; the middle one is cancelled before it resumes
// (same loop step): the other two still resume, the cancelled one never does.
TEST(Event, WaiterCancelledWhileOthersAreWoken) {
  journal j;
  event e;
  std::deque<cancel_scope> scopes(3);
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      for (int i = 0; i < 3; ++i) {
        g.spawn([&, i]() -> task<void> {
          co_await in_scope(scopes[static_cast<std::size_t>(i)], [&, i]() -> task<void> {
            co_await e.wait();
            j("w" + std::to_string(i));
          }());
        });
      }
      co_await checkpoint();
      EXPECT_EQ(e.waiters(), 3u);
      e.set();
      scopes[1].cancel();  // woken, not yet resumed
      co_await checkpoint();
      EXPECT_EQ(j.lines, (std::vector<std::string>{"w0", "w2"}));
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"w0", "w2"}));
  EXPECT_FALSE(scopes[0].cancelled_caught());
  EXPECT_TRUE(scopes[1].cancelled_caught());
  EXPECT_FALSE(scopes[2].cancelled_caught());
}

// The woken waiter is already in the batch the loop is running when an
// earlier task of that batch cancels it.
TEST(Event, WokenWaiterCancelledFromTheRunningBatch) {
  journal j;
  event e;
  std::deque<cancel_scope> scopes(2);
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      for (int i = 0; i < 2; ++i) {
        g.spawn([&, i]() -> task<void> {
          co_await in_scope(scopes[static_cast<std::size_t>(i)], [&, i]() -> task<void> {
            co_await e.wait();
            j("w" + std::to_string(i));
          }());
        });
      }
      co_await checkpoint();
      g.spawn([&]() -> task<void> {  // starts ahead of the wake-ups
        j("cancel w0");
        scopes[0].cancel();
        co_return;
      });
      e.set();
      co_await checkpoint();
      EXPECT_EQ(j.lines, (std::vector<std::string>{"cancel w0", "w1"}));
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"cancel w0", "w1"}));
  EXPECT_TRUE(scopes[0].cancelled_caught());
}

// Counts how often a proxy handle was resumed.
struct resume_counter {
  int resumed = 0;
  void on_resume() noexcept { ++resumed; }
};

// Drives the awaiter by hand, as the adapter does: await_cancel() after
// set() woke the waiter must take the wake-up back, even though the awaiter
// (the frame) stays alive afterwards.
TEST(Event, ProtocolCancelAfterWakeUpNeverResumes) {
  event e;
  resume_counter c;
  auto r = run_virtual([&]() -> task<void> {
    auto proxy = grove::detail::make_proxy<resume_counter, &resume_counter::on_resume>(&c);
    {
      auto aw = e.wait();
      EXPECT_FALSE(aw.await_ready());
      aw.await_suspend(proxy.handle());
      EXPECT_EQ(e.waiters(), 1u);
      e.set();  // the wake-up sits in the ready queue
      EXPECT_EQ(e.waiters(), 0u);
      EXPECT_TRUE(aw.await_cancel(proxy.handle()));
      EXPECT_TRUE(aw.await_cancel(proxy.handle())) << "a repeated cancel is harmless";
      co_await checkpoint();
      co_await checkpoint();
      EXPECT_EQ(c.resumed, 0) << "a cancelled waiter must never be resumed";
    }
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(c.resumed, 0);
}

TEST(Event, ProtocolCancelWhileWaitingNeverResumes) {
  event e;
  resume_counter c;
  auto r = run_virtual([&]() -> task<void> {
    auto proxy = grove::detail::make_proxy<resume_counter, &resume_counter::on_resume>(&c);
    auto aw = e.wait();
    aw.await_suspend(proxy.handle());
    EXPECT_TRUE(aw.await_cancel(proxy.handle()));
    EXPECT_EQ(e.waiters(), 0u);
    e.set();
    co_await checkpoint();
    EXPECT_EQ(c.resumed, 0);
  }());
  EXPECT_TRUE(r.has_value());
}

TEST(Event, WaitIsACancellationPointEvenWhenSet) {
  event e;
  e.set();
  bool reached = false;
  cancel_scope scope;
  auto r = run_virtual([&]() -> task<void> {
    co_await scope.run([&]() -> task<void> {
      scope.cancel();
      co_await e.wait();
      reached = true;
    }());
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_FALSE(reached);
  EXPECT_TRUE(scope.cancelled_caught());
}

TEST(Event, WaitCancelledByADeadline) {
  event e;
  long long gave_up_at = -1;
  auto r = run_virtual([&]() -> task<void> {
    bool done = co_await grove::move_on_after(5ms, [&]() -> task<void> { co_await e.wait(); }());
    EXPECT_FALSE(done);
    gave_up_at = ms();
    EXPECT_EQ(e.waiters(), 0u);
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(gave_up_at, 5);
}

TEST(Event, ClearMakesLaterWaitsSuspendAgain) {
  journal j;
  event e;
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      e.set();
      e.clear();
      g.spawn([&]() -> task<void> {
        co_await e.wait();
        j("woken at " + std::to_string(ms()));
      });
      co_await sleep(2ms);
      EXPECT_TRUE(j.lines.empty());
      e.set();
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"woken at 2"}));
}

// A waiter woken by set() still resumes when clear() follows in the same step.
TEST(Event, ClearDoesNotTakeBackAWakeUp) {
  int woken = 0;
  event e;
  auto r = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await e.wait();
        ++woken;
      });
      co_await checkpoint();
      e.set();
      e.clear();
    });
  }());
  EXPECT_TRUE(r.has_value());
  EXPECT_EQ(woken, 1);
  EXPECT_FALSE(e.is_set());
}

TEST(Event, DeadlockReportNamesTheEventWait) {
  event e;
  try {
    auto r = run_virtual([&]() -> task<void> { co_await e.wait(); }());
    (void)r;
    ADD_FAILURE() << "expected a deadlock";
  } catch (const grove::deadlock_error& x) {
    EXPECT_NE(std::string(x.what()).find("event wait (waiting)"), std::string::npos) << x.what();
  }
  EXPECT_EQ(e.waiters(), 0u);
}

}  // namespace
