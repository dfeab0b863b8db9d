// move_on_after / move_on_at / fail_after / fail_at: timeouts own only their
// own deadline (DESIGN §1.3).
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

task<int> value_after(duration d, int v) {
  co_await sleep(d);
  co_return v;
}

task<void> probe_sleep(journal& j, duration d) {
  raii_probe p(j, "body");
  co_await sleep(d);
  j("body finished" + at());
}

// ---------------------------------------------------------------------------
// move_on_*

TEST(move_on_after, gives_the_value_when_the_body_finishes_first) {
  auto o = run_virtual([]() -> task<long long> {
    std::optional<int> r = co_await move_on_after(5s, value_after(2s, 11));
    EXPECT_EQ(r, std::optional<int>(11));
    EXPECT_EQ(ms(), 2000);
    bool done = co_await move_on_after(5s, []() -> task<void> { co_await sleep(1s); }());
    EXPECT_TRUE(done);
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 3000);
}

TEST(move_on_after, is_empty_on_its_own_deadline) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    std::optional<int> r = co_await move_on_after(1s, value_after(10s, 11));
    j(std::string(r ? "value" : "empty") + at());
    bool done = co_await move_on_after(2s, probe_sleep(j, 10s));
    j(std::string(done ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"empty at 1000", "~body", "false at 3000"}));
}

TEST(move_on_at, uses_an_absolute_deadline) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    time_point t = now() + 3s;
    co_await sleep(1s);
    auto r = co_await move_on_at(t, value_after(10s, 1));
    j(std::string(r ? "value" : "empty") + at());
    auto r2 = co_await move_on_at(now() + 1s, value_after(500ms, 2));
    j("value " + std::to_string(r2.value_or(-1)) + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"empty at 3000", "value 2 at 3500"}));
}

TEST(move_on_after, takes_its_deadline_when_called) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    auto pending = move_on_after(2s, value_after(10s, 1));
    co_await sleep(1s);
    auto r = co_await std::move(pending);
    j(std::string(r ? "value" : "empty") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"empty at 2000"}));
}

TEST(move_on_after, lets_an_outer_cancel_through) {
  for (bool by_deadline : {true, false}) {
    SCOPED_TRACE(by_deadline ? "outer deadline" : "outer cancel()");
    journal j;
    cancel_scope outer;
    auto o = run_virtual([&]() -> task<void> {
      if (by_deadline) outer.set_deadline(now() + 1s);
      auto r = co_await outer.run([&]() -> task<void> {
        auto m = co_await move_on_after(5s, [&]() -> task<int> {
          if (!by_deadline) {
            co_await sleep(1s);
            outer.cancel();
          }
          co_await probe_sleep(j, 10s);
          co_return 1;
        }());
        j(std::string("after move_on_after: ") + (m ? "value" : "empty"));
      }());
      j(std::string("outer returned ") + (r ? "true" : "false") + at());
    }());
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(outer.cancelled_caught());
    // A cancel() from inside the body means the probe never even starts.
    lines expected{"outer returned false at 1000"};
    if (by_deadline) expected.insert(expected.begin(), "~body");
    EXPECT_EQ(j.lines, expected);
  }
}

TEST(move_on_after, propagates_the_body_exception) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await move_on_after(5s, []() -> task<int> {
        co_await sleep(1s);
        throw custom_error("body failed");
      }());
    } catch (const custom_error& e) {
      j(std::string("caught ") + e.what() + at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"caught body failed at 1000"}));
}

TEST(move_on_after, with_a_past_deadline_runs_code_up_to_the_first_suspension) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    co_await sleep(1s);
    auto r = co_await move_on_at(now() - 1s, [&]() -> task<int> {
      j("before suspension" + at());
      co_await sleep(1s);
      j("not reached");
      co_return 1;
    }());
    j(std::string(r ? "value" : "empty") + at());
    auto z = co_await move_on_after(0s, value_after(1s, 1));
    j(std::string(z ? "value" : "empty") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"before suspension at 1000", "empty at 1000", "empty at 1000"}));
}

// ---------------------------------------------------------------------------
// fail_*

TEST(fail_after, gives_the_value_when_the_body_finishes_first) {
  auto o = run_virtual([]() -> task<long long> {
    int v = co_await fail_after(5s, value_after(2s, 11));
    EXPECT_EQ(v, 11);
    co_await fail_after(5s, []() -> task<void> { co_await sleep(1s); }());
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 3000);
}

TEST(fail_after, throws_timeout_error_on_its_own_deadline) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await fail_after(1s, probe_sleep(j, 10s));
      j("no exception");
    } catch (const timeout_error& e) {
      j(std::string("timeout_error: ") + e.what() + at());
    }
    try {
      co_await fail_at(now() + 2s, value_after(10s, 1));
      j("no exception");
    } catch (const timeout_error&) {
      j("timeout_error" + at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"~body", "timeout_error: grove: operation timed out at 1000",
                            "timeout_error at 3000"}));
}

TEST(fail_after, uncaught_timeout_error_reaches_the_outcome) {
  // (fail_after reads now(), so it is called inside the loop.)
  auto o =
      run_virtual([]() -> task<int> { co_return co_await fail_after(1s, value_after(10s, 1)); }());
  ASSERT_TRUE(o.has_error());
  EXPECT_THROW(o.value(), timeout_error);
}

TEST(fail_after, lets_an_outer_cancel_through_unchanged) {
  for (bool by_deadline : {true, false}) {
    SCOPED_TRACE(by_deadline ? "outer deadline" : "outer cancel()");
    journal j;
    cancel_scope outer;
    auto o = run_virtual([&]() -> task<void> {
      if (by_deadline) outer.set_deadline(now() + 1s);
      auto r = co_await outer.run([&]() -> task<void> {
        try {
          co_await fail_after(5s, [&]() -> task<void> {
            if (!by_deadline) {
              co_await sleep(1s);
              outer.cancel();
            }
            co_await probe_sleep(j, 10s);
          }());
          j("after fail_after");
        } catch (const timeout_error&) {
          j("timeout_error");
        } catch (...) {
          j("some exception");
        }
        j("after try");
      }());
      j(std::string("outer returned ") + (r ? "true" : "false") + at());
    }());
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(outer.cancelled_caught());
    // A cancel() from inside the body means the probe never even starts.
    lines expected{"outer returned false at 1000"};
    if (by_deadline) expected.insert(expected.begin(), "~body");
    EXPECT_EQ(j.lines, expected);
  }
}

TEST(fail_after, propagates_the_body_exception_not_a_timeout) {
  auto o = run_virtual([]() -> task<int> {
    co_return co_await fail_after(5s, []() -> task<int> {
      co_await sleep(1s);
      throw custom_error("body failed");
    }());
  }());
  ASSERT_TRUE(o.has_error());
  EXPECT_THROW(o.value(), custom_error);
}

TEST(fail_after, with_a_past_deadline_throws_at_the_first_suspension) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    co_await sleep(1s);
    try {
      co_await fail_at(now() - 1s, [&]() -> task<void> {
        j("before suspension" + at());
        co_await sleep(1s);
        j("not reached");
      }());
    } catch (const timeout_error&) {
      j("timeout_error" + at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"before suspension at 1000", "timeout_error at 1000"}));
}

// ---------------------------------------------------------------------------
// Timeouts around code that handles errors itself

TEST(timeouts, a_body_catching_everything_never_sees_the_timeout) {
  journal j;
  auto guarded = [&]() -> task<int> {
    try {
      co_await sleep(10s);
    } catch (...) {
      j("body catch ran");
      co_return -1;
    }
    j("body finished");
    co_return 1;
  };
  auto o = run_virtual([&]() -> task<void> {
    try {
      int v = co_await fail_after(1s, guarded());
      j("fail_after returned " + std::to_string(v));
    } catch (const timeout_error&) {
      j("timeout_error" + at());
    }
    auto r = co_await move_on_after(1s, guarded());
    j(std::string(r ? "value" : "empty") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"timeout_error at 1000", "empty at 2000"}));
}

// ---------------------------------------------------------------------------
// Nested timeouts: each owns only its deadline

TEST(timeouts, nested_the_outer_deadline_first) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await fail_after(1s, [&]() -> task<void> {
        try {
          co_await fail_after(5s, probe_sleep(j, 10s));
        } catch (const timeout_error&) {
          j("inner timeout_error");
        }
        j("after inner");
      }());
    } catch (const timeout_error&) {
      j("outer timeout_error" + at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"~body", "outer timeout_error at 1000"}));
}

TEST(timeouts, nested_the_inner_deadline_first) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await fail_after(5s, [&]() -> task<void> {
        try {
          co_await fail_after(1s, probe_sleep(j, 10s));
        } catch (const timeout_error&) {
          j("inner timeout_error" + at());
        }
        co_await sleep(1s);
        j("after inner" + at());
      }());
      j("outer finished" + at());
    } catch (const timeout_error&) {
      j("outer timeout_error");
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"~body", "inner timeout_error at 1000", "after inner at 2000",
                            "outer finished at 2000"}));
}

TEST(timeouts, nested_deadlines_at_the_same_instant_belong_to_the_outermost) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    time_point t = now() + 1s;
    auto r = co_await move_on_at(t, [&]() -> task<void> {
      try {
        co_await fail_at(t, probe_sleep(j, 10s));
      } catch (const timeout_error&) {
        j("inner timeout_error");
      }
      j("after inner");
    }());
    j(std::string("move_on_at ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"~body", "move_on_at false at 1000"}));
}

}  // namespace
}  // namespace grove::testing
