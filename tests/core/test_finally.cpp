// finally(body, cleanup): async cleanup that always runs, shielded
// (DESIGN §1.4), and its result precedence.
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

struct body_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct cleanup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// How the body and the cleanup end in the precedence tests.
enum class ends { value, error, cancelled };

struct precedence_case {
  ends body;
  bool cleanup_throws;
};

// Runs finally(body, cleanup) in a scope whose deadline (1s) cancels a body
// that is still sleeping; reports what the awaiter observed.
lines observe(precedence_case c) {
  journal j;
  cancel_scope scope;
  auto body = [&]() -> task<int> {
    raii_probe p(j, "body local");
    co_await sleep(c.body == ends::cancelled ? 10s : 500ms);
    if (c.body == ends::error) throw body_error("body failed");
    co_return 7;
  };
  auto cleanup = [&]() -> task<void> {
    j("cleanup starts" + at());
    co_await sleep(1s);
    j("cleanup ends" + at());
    if (c.cleanup_throws) throw cleanup_error("cleanup failed");
  };
  auto o = run_virtual([&]() -> task<void> {
    scope.set_deadline(now() + 1s);
    auto r = co_await scope.run([&]() -> task<void> {
      try {
        int v = co_await finally(body(), cleanup);
        j("value " + std::to_string(v) + at());
      } catch (const exception_group& g) {
        std::string s = "exception_group of " + std::to_string(g.size()) + ":";
        for (const auto& e : g.exceptions()) s += " [" + describe_exception(e) + "]";
        j(s);
      } catch (const std::exception&) {
        j("caught " + describe_exception(std::current_exception()));
      }
      co_await sleep(5s);  // a cancelled scope unwinds here
      j("after sleep" + at());
    }());
    j(std::string("scope returned ") + (r ? "true" : "false") + at() +
      (scope.cancelled_caught() ? " (caught)" : ""));
  }());
  EXPECT_TRUE(o.has_value());
  return j.lines;
}

TEST(finally, body_value_and_cleanup_ok_give_the_value) {
  EXPECT_EQ(observe({ends::value, false}), (lines{"~body local", "cleanup starts at 500",
                                                  "cleanup ends at 1500", "value 7 at 1500",
                                                  // the scope's deadline passed during the cleanup:
                                                  // the next suspension point is cancelled
                                                  "scope returned false at 1500 (caught)"}));
}

TEST(finally, cleanup_error_is_thrown_after_a_body_value) {
  EXPECT_EQ(observe({ends::value, true}),
            (lines{"~body local", "cleanup starts at 500", "cleanup ends at 1500",
                   "caught grove::testing::(anonymous namespace)::cleanup_error: cleanup failed",
                   "scope returned false at 1500 (caught)"}));
}

TEST(finally, body_error_is_rethrown_unchanged_after_the_cleanup) {
  EXPECT_EQ(observe({ends::error, false}),
            (lines{"~body local", "cleanup starts at 500", "cleanup ends at 1500",
                   "caught grove::testing::(anonymous namespace)::body_error: body failed",
                   "scope returned false at 1500 (caught)"}));
}

TEST(finally, body_and_cleanup_errors_give_an_exception_group_in_that_order) {
  EXPECT_EQ(observe({ends::error, true}),
            (lines{"~body local", "cleanup starts at 500", "cleanup ends at 1500",
                   "exception_group of 2: [grove::testing::(anonymous namespace)::body_error: body "
                   "failed] [grove::testing::(anonymous namespace)::cleanup_error: cleanup failed]",
                   "scope returned false at 1500 (caught)"}));
}

TEST(finally, a_cancelled_body_stays_cancelled_after_a_clean_cleanup) {
  EXPECT_EQ(observe({ends::cancelled, false}),
            (lines{"~body local", "cleanup starts at 1000", "cleanup ends at 2000",
                   "scope returned false at 2000 (caught)"}));
}

TEST(finally, a_cleanup_error_after_a_cancelled_body_reaches_the_awaiter) {
  // The error wins over the cancellation and can be caught; the scope is
  // still cancelled, so the awaiter unwinds at its next suspension point.
  EXPECT_EQ(observe({ends::cancelled, true}),
            (lines{"~body local", "cleanup starts at 1000", "cleanup ends at 2000",
                   "caught grove::testing::(anonymous namespace)::cleanup_error: cleanup failed",
                   "scope returned false at 2000 (caught)"}));
}

TEST(finally, value_and_void_bodies_outside_any_cancellation) {
  journal j;
  auto o = run_virtual([&]() -> task<int> {
    int v = co_await finally([]() -> task<int> { co_return 3; }(),
                             [&]() -> task<void> {
                               j("cleanup 1");
                               co_return;
                             });
    co_await finally(
        [&]() -> task<void> {
          co_await sleep(1s);
          j("body 2" + at());
        }(),
        [&]() -> task<void> {
          co_await sleep(1s);
          j("cleanup 2" + at());
        });
    co_return v;
  }());
  EXPECT_EQ(o.value(), 3);
  EXPECT_EQ(j.lines, (lines{"cleanup 1", "body 2 at 1000", "cleanup 2 at 2000"}));
}

TEST(finally, cleanup_that_sleeps_completes_after_a_cancel_at_the_right_time) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    scope.set_deadline(now() + 1s);
    auto r = co_await scope.run([&]() -> task<void> {
      co_await finally(
          [&]() -> task<void> {
            raii_probe p(j, "body local");
            co_await sleep(10s);
          }(),
          [&]() -> task<void> {
            raii_probe p(j, "cleanup local");
            j("cleanup starts" + at());
            co_await sleep(2s);
            j("cleanup slept" + at());
            co_await checkpoint();
            co_await sleep(500ms);
            j("cleanup ends" + at());
          });
      j("not reached");
    }());
    j(std::string("scope returned ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines,
            (lines{"~body local", "cleanup starts at 1000", "cleanup slept at 3000",
                   "cleanup ends at 3500", "~cleanup local", "scope returned false at 3500"}));
}

TEST(finally, a_cancel_that_arrives_during_the_cleanup_does_not_cut_it_short) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await scope.run([&]() -> task<void> {
          int v = co_await finally(
              [&]() -> task<int> {
                co_await sleep(1s);
                co_return 5;
              }(),
              [&]() -> task<void> {
                co_await sleep(3s);
                j("cleanup ends" + at());
              });
          j("finally gave " + std::to_string(v) + at());
          co_await sleep(1s);
          j("not reached");
        }());
        j(std::string("scope returned ") + (r ? "true" : "false") + at());
      },
      [&]() -> task<void> {
        co_await sleep(2s);
        scope.cancel();
        j("cancelled" + at());
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"cancelled at 2000", "cleanup ends at 4000", "finally gave 5 at 4000",
                            "scope returned false at 4000"}));
}

TEST(finally, nested_cleanups_run_innermost_first_and_each_completes) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await move_on_after(1s, [&]() -> task<void> {
      co_await finally(
          [&]() -> task<void> {
            co_await finally([]() -> task<void> { co_await sleep(10s); }(),
                             [&]() -> task<void> {
                               co_await sleep(1s);
                               j("inner cleanup" + at());
                             });
            j("not reached");
          }(),
          [&]() -> task<void> {
            co_await sleep(1s);
            j("outer cleanup" + at());
          });
    }());
    j(std::string("move_on_after ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"inner cleanup at 2000", "outer cleanup at 3000",
                            "move_on_after false at 3000"}));
}

TEST(finally, a_deadline_inside_the_cleanup_still_fires) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await move_on_after(1s, [&]() -> task<void> {
      co_await finally([]() -> task<void> { co_await sleep(10s); }(),
                       [&]() -> task<void> {
                         auto m = co_await move_on_after(
                             2s, []() -> task<void> { co_await sleep(10s); }());
                         j(std::string("cleanup's move_on_after ") + (m ? "true" : "false") + at());
                       });
    }());
    j(std::string("outer ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"cleanup's move_on_after false at 3000", "outer false at 3000"}));
}

TEST(finally, a_finally_reached_in_a_cancelled_frame_runs_neither_part) {
  // Documented at finally(): "A finally that is cancelled before it starts
  // runs neither."
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run([&]() -> task<void> {
      scope.cancel();
      co_await finally(
          [&]() -> task<void> {
            j("body ran");
            co_return;
          }(),
          [&]() -> task<void> {
            j("cleanup ran");
            co_return;
          });
      j("not reached");
    }());
    j(std::string("scope returned ") + (r ? "true" : "false"));
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"scope returned false"}));
}

TEST(finally, a_cleanup_callable_that_throws_is_reported_like_a_cleanup_error) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await finally([]() -> task<void> { co_await sleep(1s); }(),
                       []() -> task<void> { throw cleanup_error("no cleanup task"); });
      j("no exception");
    } catch (const cleanup_error& e) {
      j(std::string("caught ") + e.what() + at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"caught no cleanup task at 1000"}));
}

}  // namespace
}  // namespace grove::testing
