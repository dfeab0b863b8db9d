// Combinators take any awaitable (DESIGN §2): move_on/fail_after/at, shield,
// cancel_scope::run, finally's body and the variadic gather accept shield(t),
// to_thread(fn), sem.acquire(), sem.lock(), ev.wait(), sleep(d) as they
// accept a task, with the same results and the same cancellation.
#include <atomic>
#include <stop_token>
#include <thread>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

task<int> work(int ms_, int v) {
  co_await sleep(std::chrono::milliseconds(ms_));
  co_return v;
}

TEST(any_awaitable, move_on_after_a_shield_lets_the_shielded_work_finish) {
  auto o = run_virtual([]() -> task<long long> {
    std::optional<int> r = co_await move_on_after(10ms, shield(work(50, 7)));
    EXPECT_EQ(r, 7);  // the shield held against the deadline, as asyncio's wait_for(shield(x))
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 50);
}

TEST(any_awaitable, shield_starts_even_when_the_awaiting_task_is_cancelled) {
  event ev;
  bool waited = false;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        cancel_scope s;
        s.cancel();
        co_await s.run([&]() -> task<void> {
          co_await shield(ev.wait());
          waited = true;
        }());
      },
      [&]() -> task<void> {
        co_await sleep(1ms);
        ev.set();
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(waited);
}

TEST(any_awaitable, fail_after_to_thread_gives_fns_value_or_its_exception) {
  auto o = run_virtual([]() -> task<void> {
    int v = co_await fail_after(1s, to_thread([] { return 41 + 1; }));
    EXPECT_EQ(v, 42);
    EXPECT_THROW(co_await fail_after(1s, to_thread([]() -> int { throw custom_error("fn"); })),
                 custom_error);
  }());
  EXPECT_TRUE(o.has_value());
}

// An outer cancel passes through fail_after (no timeout_error) and reaches
// fn as a stop request, as with a task body.
TEST(any_awaitable, an_outer_cancel_reaches_to_thread_through_fail_after) {
  cancel_scope outer;
  std::atomic<bool> running{false};
  bool stopped = false;
  bool ran_on = false;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        co_await outer.run([&]() -> task<void> {
          co_await fail_after(1h, to_thread([&](std::stop_token st) {
                                running = true;
                                while (!st.stop_requested()) std::this_thread::yield();
                                stopped = true;
                              }));
          ran_on = true;
        }());
      },
      [&]() -> task<void> {
        while (!running) co_await checkpoint();  // virtual time stands still while fn runs
        outer.cancel();
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(ran_on);
  EXPECT_TRUE(outer.cancelled_caught());
}

TEST(any_awaitable, move_on_after_an_event_wait) {
  event ev;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        EXPECT_TRUE(co_await move_on_after(5s, ev.wait()));  // set at 2 s
        EXPECT_EQ(ms(), 2000);
        event never;
        EXPECT_FALSE(co_await move_on_after(5s, never.wait()));
        EXPECT_EQ(ms(), 7000);
        EXPECT_EQ(never.waiters(), 0u);
      },
      [&]() -> task<void> {
        co_await sleep(2s);
        ev.set();
      }));
  EXPECT_TRUE(o.has_value());
}

// Before, at and after the deadline; at it, the release comes first (the
// permit is handed over, not yet resumed, when the deadline cancels the
// waiter) or second. Either the waiter got the permit (and releases it) or
// the permit went back: never lost, never doubled.
TEST(any_awaitable, move_on_after_a_semaphore_acquire_loses_no_permit) {
  for (int release_at : {3, 5, 7}) {
    for (bool releaser_first : {false, true}) {
      semaphore sem(0);
      bool got = false;
      auto acquirer = [&]() -> task<void> {
        got = co_await move_on_after(5ms, sem.acquire());
        EXPECT_EQ(ms(), got ? release_at : 5);
        if (got) sem.release();
      };
      auto releaser = [&]() -> task<void> {
        co_await sleep(std::chrono::milliseconds(release_at));
        sem.release();
      };
      auto o = releaser_first ? run_virtual(concurrently(releaser, acquirer))
                              : run_virtual(concurrently(acquirer, releaser));
      ASSERT_TRUE(o.has_value());
      EXPECT_EQ(got, release_at < 5) << "release at " << release_at;
      EXPECT_EQ(sem.available(), 1u) << "release at " << release_at;
      EXPECT_EQ(sem.waiters(), 0u);
    }
  }
}

TEST(any_awaitable, move_on_after_a_semaphore_lock_gives_the_guard) {
  semaphore sem(1);
  auto o = run_virtual([&]() -> task<void> {
    std::optional<semaphore::guard> g = co_await move_on_after(5ms, sem.lock());
    EXPECT_TRUE(g.has_value() && g->owns_permit());
    EXPECT_EQ(sem.available(), 0u);
    std::optional<semaphore::guard> none = co_await move_on_after(5ms, sem.lock());
    EXPECT_FALSE(none.has_value());
    EXPECT_EQ(sem.waiters(), 0u);
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(sem.available(), 1u);
}

TEST(any_awaitable, a_scope_runs_a_sleep_and_finally_guards_one) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope s(now() + 10ms);
    EXPECT_FALSE(co_await s.run(sleep(1h)));
    EXPECT_TRUE(s.cancelled_caught());
    co_await finally(sleep(3ms), [&]() -> task<void> {
      j("cleanup" + at());
      co_return;
    });
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"cleanup at 13"}));
}

TEST(any_awaitable, gather_mixes_tasks_and_other_awaitables) {
  event ev;
  auto o = run_virtual([&]() -> task<void> {
    ev.set();
    auto [a, b, c, d] =
        co_await gather(work(2, 5), to_thread([] { return 6; }), sleep(4ms), ev.wait());
    EXPECT_EQ(a.value(), 5);
    EXPECT_EQ(b.value(), 6);
    EXPECT_TRUE(c.has_value());
    EXPECT_TRUE(d.has_value());
    EXPECT_EQ(ms(), 4);
  }());
  EXPECT_TRUE(o.has_value());
}

}  // namespace
}  // namespace grove::testing
