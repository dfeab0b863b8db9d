// settle(t), cancellation_requested(), always_start(t): awaiting work that
// owes a report whatever happens (run_tasks is built on them).
#include <stdexcept>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

task<int> value_after(int ms_, int v) {
  co_await sleep(std::chrono::milliseconds(ms_));
  co_return v;
}

task<int> fails() {
  co_await sleep(1ms);
  throw custom_error("boom");
}

TEST(settle, gives_a_value_or_the_error_without_throwing) {
  auto o = run_virtual([]() -> task<void> {
    outcome<int> a = co_await settle(value_after(1, 7));
    EXPECT_EQ(a.value(), 7);
    outcome<int> b = co_await settle(fails());
    EXPECT_TRUE(b.has_error());
    EXPECT_THROW(b.value(), custom_error);
  }());
  EXPECT_TRUE(o.has_value());
}

// The awaiting task is cancelled while t waits: t is cancelled, the awaiting
// task still resumes with the outcome, and unwinds at its next suspension.
TEST(settle, resumes_with_the_outcome_when_the_awaiting_task_is_cancelled) {
  cancel_scope scope;
  journal j;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        co_await scope.run([&]() -> task<void> {
          outcome<int> r = co_await settle(value_after(1000, 1));
          j(std::string(r.cancelled() ? "cancelled" : "not cancelled") + at());
          co_await sleep(1ms);
          j("ran past the next suspension point");
        }());
      },
      [&]() -> task<void> {
        co_await sleep(10ms);
        scope.cancel();
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"cancelled at 10"}));
  EXPECT_TRUE(scope.cancelled_caught());
}

TEST(settle, starts_in_a_cancelled_context_and_reports) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope s;
    s.cancel();
    co_await s.run([&]() -> task<void> {
      outcome<int> r = co_await settle([&]() -> task<int> {
        j("started");
        co_await sleep(1ms);  // meets the cancellation here
        co_return 1;
      }());
      j(r.cancelled() ? "cancelled" : "not cancelled");
    }());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"started", "cancelled"}));
}

TEST(cancellation_requested, answers_without_suspending_or_unwinding) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope s;
    co_await s.run([&]() -> task<void> {
      j(co_await cancellation_requested() ? "yes" : "no");
      s.cancel();
      j(co_await cancellation_requested() ? "yes" : "no");  // level-triggered, no unwind
      j("still here" + at());
      co_await checkpoint();
      j("not reached");
    }());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"no", "yes", "still here at 0"}));
}

TEST(always_start, a_marked_task_starts_in_a_cancelled_context) {
  journal j;
  auto body = [&](const char* name) -> task<void> {
    j(name);
    co_return;
  };
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope s;
    s.cancel();
    co_await s.run([&]() -> task<void> {
      co_await always_start(body("marked"));
      co_await body("plain");  // never starts: the frame unwinds here
    }());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"marked"}));
}

// The mark lives in what was padding: frames do not grow for it.
static_assert(sizeof(detail::promise_base) <= 4 * sizeof(void*) + sizeof(std::exception_ptr));

}  // namespace
}  // namespace grove::testing
