// sleep, sleep_until, checkpoint: the loop clock's waits and the yield.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

// ---------------------------------------------------------------------------
// sleep / sleep_until

TEST(sleep, advances_virtual_time_exactly) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    j("start" + at());
    co_await sleep(1500ms);
    j("slept 1500ms" + at());
    co_await sleep(std::chrono::hours(24));
    j("slept a day" + at());
    co_await sleep(1ns);
    EXPECT_EQ(now().time_since_epoch(), std::chrono::hours(24) + 1500ms + 1ns);
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"start at 0", "slept 1500ms at 1500", "slept a day at 86401500"}));
}

TEST(sleep, measures_from_when_it_suspends) {
  auto o = run_virtual([]() -> task<long long> {
    auto later = sleep(1s);  // not started yet
    co_await sleep(2s);
    co_await later;
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 3000);
}

TEST(sleep_until, wakes_at_the_given_time) {
  auto o = run_virtual([]() -> task<long long> {
    time_point t = now() + 2500ms;
    co_await sleep(1s);
    co_await sleep_until(t);
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 2500);
}

TEST(sleep_until, a_time_in_the_past_still_yields_once) {
  for (int variant : {0, 1, 2}) {  // sleep_until(past), sleep_until(now()), sleep(0)
    SCOPED_TRACE(variant);
    journal j;
    auto o = run_virtual(concurrently(
        [&]() -> task<void> {
          co_await sleep(1s);
          j("a before" + at());
          if (variant == 0) co_await sleep_until(now() - 500ms);
          if (variant == 1) co_await sleep_until(now());
          if (variant == 2) co_await sleep(0s);
          j("a after" + at());
        },
        [&]() -> task<void> {
          co_await sleep(1s);
          j("b" + at());
        }));
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(j.lines, (lines{"a before at 1000", "b at 1000", "a after at 1000"}));
  }
}

TEST(sleep, concurrent_sleepers_wake_in_deadline_order_and_ties_in_arming_order) {
  journal j;
  auto sleeper = [&](std::string name, duration d) {
    return [&j, name, d]() -> task<void> {
      co_await sleep(d);
      j(name + at());
    };
  };
  auto o = run_virtual(concurrently(sleeper("a", 3s), sleeper("b", 1s), sleeper("c", 2s),
                                    sleeper("d", 1s), sleeper("e", 2s)));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"b at 1000", "d at 1000", "c at 2000", "e at 2000", "a at 3000"}));
}

TEST(sleep, many_timers_with_cancellations_each_wake_at_their_own_time) {
  // A timer heap exercise: 300 sleepers with scattered deadlines, every
  // third one cut short by its own move_on_after. Each must end exactly at
  // min(sleep, timeout), and the order of endings must be sorted by time.
  constexpr int n = 300;
  std::vector<std::pair<long long, int>> ended;  // (ms, id)
  std::vector<long long> expected(n);
  std::uint32_t seed = 12345;
  auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<long long>(seed >> 8) % 5000 + 1;
  };
  auto o = run_virtual(with_task_group([&](task_group& g) -> task<void> {
    for (int i = 0; i < n; ++i) {
      long long s = next();
      long long t = i % 3 == 0 ? next() : 1'000'000;
      expected[static_cast<std::size_t>(i)] = std::min(s, t);
      g.spawn([&ended, i, s, t]() -> task<void> {
        co_await move_on_after(std::chrono::milliseconds(t), [](long long d) -> task<void> {
          co_await sleep(std::chrono::milliseconds(d));
        }(s));
        ended.emplace_back(ms(), i);
      });
    }
    co_return;
  }));
  ASSERT_TRUE(o.has_value());
  ASSERT_EQ(ended.size(), static_cast<std::size_t>(n));
  EXPECT_TRUE(std::is_sorted(ended.begin(), ended.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; }));
  for (const auto& [when, id] : ended)
    EXPECT_EQ(when, expected[static_cast<std::size_t>(id)]) << id;
}

TEST(sleep, is_a_cancellation_point) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    co_await sleep(1s);
    auto r = co_await scope.run([&]() -> task<void> {
      scope.cancel();
      j("before sleep");
      co_await sleep(10s);
      j("not reached");
    }());
    j(std::string(r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"before sleep", "false at 1000"}));
}

TEST(sleep, a_cancelled_sleep_leaves_no_timer_behind) {
  virtual_loop loop;
  auto o = loop.run([]() -> task<long long> {
    co_await move_on_after(1s, []() -> task<void> { co_await sleep(std::chrono::hours(1)); }());
    co_await sleep(1ms);
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 1001);
  EXPECT_EQ(loop.now(), time_point{} + 1001ms);
}

TEST(sleep, cancelled_after_its_timer_fired_it_runs_on_to_the_next_suspension) {
  // The canceller's timer and the sleeper's timer fire at the same instant,
  // the canceller's first: the sleeper is already scheduled when the cancel
  // arrives, so (DESIGN §1.2) it runs on to its next suspension point.
  journal j;
  cancel_scope scope;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        co_await sleep(1s);
        scope.cancel();
        j("cancelled" + at());
      },
      [&]() -> task<void> {
        auto r = co_await scope.run([&]() -> task<void> {
          co_await sleep(1s);
          j("sleeper woke" + at());
          co_await sleep(1s);
          j("not reached");
        }());
        j(std::string(r ? "true" : "false") + at());
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"cancelled at 1000", "sleeper woke at 1000", "false at 1000"}));
}

// ---------------------------------------------------------------------------
// checkpoint

TEST(checkpoint, yields_to_other_ready_tasks) {
  journal j;
  auto worker = [&](std::string name) {
    return [&j, name]() -> task<void> {
      for (int i = 1; i <= 3; ++i) {
        j(name + std::to_string(i));
        co_await checkpoint();
      }
    };
  };
  auto o = run_virtual(concurrently(worker("a"), worker("b"), worker("c")));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"}));
}

TEST(checkpoint, does_not_advance_virtual_time) {
  auto o = run_virtual([]() -> task<long long> {
    co_await sleep(7ms);
    for (int i = 0; i < 1000; ++i) co_await checkpoint();
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 7);
}

TEST(checkpoint, is_a_cancellation_point) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run([&]() -> task<void> {
      co_await checkpoint();
      j("first checkpoint passed");
      scope.cancel();
      j("cancel requested");
      co_await checkpoint();
      j("not reached");
    }());
    j(std::string(r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"first checkpoint passed", "cancel requested", "false at 0"}));
}

TEST(checkpoint, a_cancel_that_arrives_while_parked_applies_at_the_next_suspension) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await scope.run([&]() -> task<void> {
          j("a1");
          co_await checkpoint();
          j("a2");
          co_await checkpoint();
          j("not reached");
        }());
        j(std::string("a scope ") + (r ? "true" : "false"));
      },
      [&]() -> task<void> {
        j("b1");
        scope.cancel();
        j("b2");
        co_return;
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"a1", "b1", "b2", "a2", "a scope false"}));
}

}  // namespace
}  // namespace grove::testing
