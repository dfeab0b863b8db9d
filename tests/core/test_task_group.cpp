// task_group / with_task_group: structured concurrency (DESIGN §1.6, §1.8).
#include <memory>
#include <stdexcept>
#include <string>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

struct value_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

task<void> sleep_then_add(duration d, int v, int* sum) {
  co_await sleep(d);
  *sum += v;
}

task<void> fail_after_ms(int delay_ms, std::string what) {
  co_await sleep(std::chrono::milliseconds(delay_ms));
  throw value_error(what);
}

std::vector<std::string> messages(const exception_group& g) {
  std::vector<std::string> out;
  for (const auto& e : g.exceptions()) {
    try {
      std::rethrow_exception(e);
    } catch (const exception_group& inner) {
      out.push_back(std::string("group(") + inner.what() + ")");
    } catch (const std::exception& x) {
      out.push_back(x.what());
    }
  }
  return out;
}

TEST(task_group, two_children_complete_and_the_group_waits_for_both) {
  int sum = 0;
  auto o = run_virtual([&]() -> task<long long> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      EXPECT_TRUE(g.spawn(sleep_then_add, 1s, 1, &sum));
      EXPECT_TRUE(g.spawn(sleep_then_add, 3s, 2, &sum));
      EXPECT_EQ(g.size(), 2u);
      co_return;
    });
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 3000);
  EXPECT_EQ(sum, 3);
}

TEST(task_group, body_value_is_the_result) {
  auto o = run_virtual(with_task_group([](task_group& g) -> task<int> {
    g.spawn([]() -> task<void> { co_await sleep(2s); });
    co_return 42;
  }));
  EXPECT_EQ(o.value(), 42);
}

TEST(task_group, child_error_cancels_sleeping_sibling_and_body) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await with_task_group([&](task_group& g) -> task<void> {
        g.spawn([&]() -> task<void> {
          raii_probe p(j, "sibling");
          co_await sleep(100s);
          j("sibling finished");
        });
        g.spawn(fail_after_ms, 1000, "boom");
        raii_probe p(j, "body");
        co_await sleep(50s);
        j("body finished");
      });
      j("no error?");
    } catch (const exception_group& e) {
      j("caught " + std::to_string(e.size()) + " at " + std::to_string(ms()));
      EXPECT_EQ(messages(e), std::vector<std::string>{"boom"});
    }
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"~sibling", "~body", "caught 1 at 1000"}));
}

TEST(task_group, three_children_failing_at_the_same_instant_are_all_collected) {
  auto o = run_virtual(with_task_group([](task_group& g) -> task<void> {
    g.spawn(fail_after_ms, 1000, "a");
    g.spawn(fail_after_ms, 1000, "b");
    g.spawn(fail_after_ms, 1000, "c");
    co_return;
  }));
  ASSERT_TRUE(o.has_error());
  try {
    std::rethrow_exception(o.error());
  } catch (const exception_group& e) {
    // All three were woken in the same batch: the first error cancels the
    // others, but they are already scheduled, so they run on and fail too.
    EXPECT_EQ(messages(e), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_STREQ(e.what(),
                 "3 errors: grove::testing::(anonymous namespace)::value_error: a; "
                 "grove::testing::(anonymous namespace)::value_error: b; "
                 "grove::testing::(anonymous namespace)::value_error: c");
  }
}

TEST(task_group, body_throwing_after_spawning_cancels_children_that_never_ran) {
  int started = 0;
  auto o = run_virtual(with_task_group([&](task_group& g) -> task<void> {
    for (int i = 0; i < 3; ++i)
      g.spawn([&]() -> task<void> {
        ++started;
        co_await sleep(1s);
      });
    throw value_error("body failed");
    co_return;
  }));
  EXPECT_EQ(started, 0);
  ASSERT_TRUE(o.has_error());
  try {
    std::rethrow_exception(o.error());
  } catch (const exception_group& e) {
    EXPECT_EQ(messages(e), std::vector<std::string>{"body failed"});
    EXPECT_TRUE(e.contains<value_error>());
  }
}

TEST(task_group, outer_cancel_with_throwing_cleanups_errors_win) {
  auto o = run_virtual([&]() -> task<std::string> {
    cancel_scope scope;
    std::string seen = "none";
    try {
      co_await scope.run(with_task_group([&](task_group& g) -> task<void> {
        for (auto name : {"x", "y"})
          g.spawn([&, name]() -> task<void> {
            co_await finally([]() -> task<void> { co_await sleep(100s); }(),
                             [name]() -> task<void> {
                               co_await sleep(1s);  // shielded: proceeds
                               throw value_error(std::string("cleanup ") + name);
                             });
          });
        g.spawn([&]() -> task<void> {
          co_await sleep(2s);
          scope.cancel();
        });
        co_return;
      }));
    } catch (const exception_group& e) {
      seen = std::to_string(ms()) + ":" + messages(e)[0] + "," + messages(e)[1];
    }
    EXPECT_FALSE(scope.cancelled_caught());  // the errors went through it
    co_return seen;
  }());
  EXPECT_EQ(o.value(), "3000:cleanup x,cleanup y");
}

TEST(task_group, cancel_exits_without_error) {
  journal j;
  auto o = run_virtual([&]() -> task<long long> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        raii_probe p(j, "child");
        co_await sleep(100s);
      });
      g.spawn([&]() -> task<void> {
        co_await sleep(2s);
        g.cancel();
        g.cancel();  // twice: delivered once
        j("after cancel, before next suspension");
        co_await checkpoint();
        j("never");
      });
      raii_probe p(j, "body");
      co_await sleep(100s);
    });
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 2000);
  EXPECT_EQ(j.lines,
            (std::vector<std::string>{"~child", "~body", "after cancel, before next suspension"}));
}

TEST(task_group, cancel_with_value_body_throws_cancelled_error_when_no_value) {
  auto o = run_virtual(with_task_group([](task_group& g) -> task<int> {
    g.cancel();
    co_await sleep(1s);
    co_return 1;
  }));
  ASSERT_TRUE(o.has_error());
  EXPECT_THROW(std::rethrow_exception(o.error()), cancelled_error);
}

TEST(task_group, child_spawns_children) {
  int leaves = 0;
  auto o = run_virtual([&]() -> task<long long> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await sleep(1s);
        for (int i = 0; i < 3; ++i)
          g.spawn([&]() -> task<void> {
            co_await sleep(1s);
            ++leaves;
          });
      });
      co_return;
    });
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 2000);
  EXPECT_EQ(leaves, 3);
}

TEST(task_group, spawn_after_finish_or_cancel_starts_nothing_and_destroys_the_callable) {
  auto o = run_virtual([]() -> task<void> {
    task_group* saved = nullptr;
    auto group = with_task_group([&](task_group& g) -> task<void> {
      saved = &g;
      co_return;
    });
    co_await group;  // `group` (and the task_group in its frame) is still alive
    auto token = std::make_shared<int>(0);
    bool ran = false;
    EXPECT_FALSE(saved->spawn([token, &ran]() -> task<void> {
      ran = true;
      co_return;
    }));
    EXPECT_EQ(token.use_count(), 1);  // the copy in the callable is gone
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.cancel();
      EXPECT_FALSE(g.spawn([token, &ran]() -> task<void> {
        ran = true;
        co_return;
      }));
      EXPECT_EQ(token.use_count(), 1);
      co_return;
    });
    EXPECT_FALSE(ran);
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(task_group, inner_group_error_reaches_outer_as_nested_exception_group) {
  auto o = run_virtual(with_task_group([](task_group& outer) -> task<void> {
    outer.spawn([]() -> task<void> {
      co_await with_task_group([](task_group& inner) -> task<void> {
        inner.spawn(fail_after_ms, 1000, "deep");
        co_return;
      });
    });
    co_return;
  }));
  ASSERT_TRUE(o.has_error());
  try {
    std::rethrow_exception(o.error());
  } catch (const exception_group& e) {
    ASSERT_EQ(e.size(), 1u);
    EXPECT_THROW(std::rethrow_exception(e.exceptions()[0]), exception_group);
    EXPECT_TRUE(e.contains<value_error>());
    EXPECT_EQ(messages(e),
              std::vector<std::string>{
                  "group(1 error: grove::testing::(anonymous namespace)::value_error: deep)"});
  }
}

TEST(task_group, outer_group_error_cancels_inner_group_children) {
  journal j;
  auto o = run_virtual(with_task_group([&](task_group& outer) -> task<void> {
    outer.spawn([&]() -> task<void> {
      co_await with_task_group([&](task_group& inner) -> task<void> {
        inner.spawn([&]() -> task<void> {
          raii_probe p(j, "inner child");
          co_await sleep(100s);
        });
        co_return;
      });
      j("inner group returned?");
    });
    outer.spawn(fail_after_ms, 1000, "outer child failed");
    co_return;
  }));
  ASSERT_TRUE(o.has_error());
  EXPECT_EQ(j.lines, std::vector<std::string>{"~inner child"});
}

TEST(task_group, children_may_use_state_kept_in_their_callable) {
  // DESIGN §1.8: the body's locals die when it returns; children keep their
  // own state in the spawned callable (ASan guards this test).
  std::string out;
  auto o = run_virtual(with_task_group([&](task_group& g) -> task<void> {
    for (int i = 0; i < 3; ++i) {
      auto label = std::make_unique<std::string>("job" + std::to_string(i));
      g.spawn(
          [&out](std::unique_ptr<std::string>& mine) -> task<void> {
            co_await sleep(1s);
            out += *mine + ";";
          },
          std::move(label));
    }
    co_return;  // the loop's locals are gone; the children still run
  }));
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(out, "job0;job1;job2;");
}

TEST(task_group, cancelling_the_awaiting_task_cancels_everything_and_unwinds) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await move_on_after(2s, [&]() -> task<void> {
      co_await with_task_group([&](task_group& g) -> task<void> {
        g.spawn([&]() -> task<void> {
          raii_probe p(j, "child");
          co_await sleep(100s);
        });
        co_await sleep(100s);
      });
      j("after group (never)");
    }());
    j(r ? "completed" : "moved on at " + std::to_string(ms()));
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"~child", "moved on at 2000"}));
}

TEST(task_group, child_with_shielded_cleanup_delays_the_group_until_it_finishes) {
  auto o = run_virtual([&]() -> task<long long> {
    co_await move_on_after(1s, with_task_group([&](task_group& g) -> task<void> {
                             g.spawn([]() -> task<void> {
                               co_await finally([]() -> task<void> { co_await sleep(100s); }(),
                                                []() -> task<void> { co_await sleep(3s); });
                             });
                             co_return;
                           }));
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 4000);
}

TEST(task_group, many_children_cancelled_at_once) {
  int cleaned = 0;
  auto o = run_virtual([&]() -> task<void> {
    co_await move_on_after(1s, with_task_group([&](task_group& g) -> task<void> {
                             for (int i = 0; i < 10000; ++i)
                               g.spawn([&]() -> task<void> {
                                 struct count_on_exit {
                                   int* n;
                                   ~count_on_exit() { ++*n; }
                                 } c{&cleaned};
                                 co_await sleep(100s);
                               });
                             co_return;
                           }));
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(cleaned, 10000);
}

TEST(exception_group, rethrow_if_single_and_contains) {
  exception_group one({std::make_exception_ptr(value_error("only"))});
  EXPECT_THROW(one.rethrow_if_single(), value_error);
  exception_group two(
      {std::make_exception_ptr(value_error("a")), std::make_exception_ptr(std::logic_error("b"))});
  EXPECT_THROW(two.rethrow_if_single(), exception_group);
  EXPECT_TRUE(two.contains<std::logic_error>());
  EXPECT_FALSE(two.contains<std::bad_alloc>());
  EXPECT_STREQ(
      two.what(),
      "2 errors: grove::testing::(anonymous namespace)::value_error: a; std::logic_error: b");
}

}  // namespace
}  // namespace grove::testing
