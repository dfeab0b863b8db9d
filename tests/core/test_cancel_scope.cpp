// cancel_scope and shield: cancellation as frame destruction (DESIGN §1.1–1.3).
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

// ---------------------------------------------------------------------------
// Normal completion through a scope

TEST(cancel_scope, run_gives_the_body_value_when_not_cancelled) {
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<int> {
    std::optional<int> r = co_await scope.run([]() -> task<int> {
      co_await sleep(2s);
      co_return 9;
    }());
    EXPECT_EQ(ms(), 2000);
    co_return r.value_or(-1);
  }());
  EXPECT_EQ(o.value(), 9);
  EXPECT_FALSE(scope.cancelled_caught());
  EXPECT_FALSE(scope.cancel_called());
}

TEST(cancel_scope, run_of_a_void_body_gives_true_when_not_cancelled) {
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<bool> {
    co_return co_await scope.run([]() -> task<void> { co_await sleep(1s); }());
  }());
  EXPECT_TRUE(o.value());
  EXPECT_FALSE(scope.cancelled_caught());
}

TEST(cancel_scope, body_exception_propagates_unchanged) {
  cancel_scope scope;
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await scope.run([]() -> task<int> {
        co_await sleep(1s);
        throw custom_error("from the body");
      }());
      j("no exception");
    } catch (const custom_error& e) {
      j(std::string("custom_error: ") + e.what() + at());
    }
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"custom_error: from the body at 1000"}));
  EXPECT_FALSE(scope.cancelled_caught());
}

// ---------------------------------------------------------------------------
// Cancel while sleeping, before the first step, while running, twice

TEST(cancel_scope, cancel_while_sleeping_destroys_the_body_at_once) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await scope.run([&]() -> task<int> {
          raii_probe p(j, "body local");
          co_await sleep(10s);
          j("body woke");
          co_return 1;
        }());
        j(std::string(r ? "value" : "empty") + at());
      },
      [&]() -> task<void> {
        co_await sleep(1s);
        j("cancel");
        scope.cancel();
        j("cancel returned");
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancel_called());
  EXPECT_TRUE(scope.cancelled_caught());
  // Cancelling a suspended wait is synchronous: the body's frame is gone
  // before cancel() returns.
  EXPECT_EQ(j.lines, (lines{"cancel", "~body local", "cancel returned", "empty at 1000"}));
}

TEST(cancel_scope, cancelled_before_run_cancels_the_body_at_its_first_suspension) {
  journal j;
  cancel_scope scope;
  scope.cancel();
  auto o = run_virtual([&]() -> task<void> {
    co_await sleep(1s);
    auto r = co_await scope.run([&]() -> task<int> {
      raii_probe p(j, "body local");
      j("body starts" + at());
      co_await sleep(1s);
      j("after first suspension");
      co_return 1;
    }());
    j(std::string(r ? "value" : "empty") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"body starts at 1000", "~body local", "empty at 1000"}));
}

TEST(cancel_scope, a_child_awaited_by_a_cancelled_frame_never_starts) {
  journal j;
  cancel_scope scope;
  auto child = [&](std::unique_ptr<raii_probe> arg) -> task<int> {
    j("child body ran");
    co_await sleep(1s);
    (void)arg;
    co_return 2;
  };
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run([&]() -> task<int> {
      raii_probe p(j, "body local");
      scope.cancel();
      j("after cancel");
      int v = co_await child(std::make_unique<raii_probe>(j, "child argument"));
      j("after child " + std::to_string(v));
      co_return v;
    }());
    j(std::string(r ? "value" : "empty") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"after cancel", "~child argument", "~body local", "empty at 0"}));
}

TEST(cancel_scope, cancel_while_running_applies_at_the_next_suspension) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run([&]() -> task<void> {
      co_await sleep(1s);
      j("before cancel");
      scope.cancel();
      j("between cancel and the next co_await");
      co_await sleep(1s);
      j("after the next co_await");
    }());
    j(std::string(r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines,
            (lines{"before cancel", "between cancel and the next co_await", "false at 1000"}));
}

TEST(cancel_scope, cancel_from_a_running_child_reaches_the_parent_at_its_next_suspension) {
  journal j;
  cancel_scope scope;
  auto child = [&]() -> task<int> {
    scope.cancel();
    j("child continues after cancel");
    co_return 5;  // no suspension: the child completes normally
  };
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run([&]() -> task<int> {
      co_await sleep(1s);
      int v = co_await child();
      j("parent got " + std::to_string(v));
      co_await checkpoint();
      j("after checkpoint");
      co_return v;
    }());
    j(std::string(r ? "value" : "empty") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"child continues after cancel", "parent got 5", "empty at 1000"}));
}

TEST(cancel_scope, cancel_without_a_later_suspension_lets_the_body_finish) {
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<std::optional<int>> {
    co_return co_await scope.run([&]() -> task<int> {
      co_await sleep(1s);
      scope.cancel();
      co_return 3;
    }());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value(), std::optional<int>(3));
  EXPECT_TRUE(scope.cancel_called());
  EXPECT_FALSE(scope.cancelled_caught());
}

TEST(cancel_scope, cancel_twice_is_delivered_once) {
  journal j;
  cancel_scope scope(time_point{} + 2s);  // its deadline is a third request
  int cleanups = 0;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await scope.run([&]() -> task<void> {
          raii_probe p(j, "body local");
          co_await finally(
              [&]() -> task<void> {
                raii_probe q(j, "inner local");
                co_await sleep(10s);
              }(),
              [&]() -> task<void> {
                ++cleanups;
                j("cleanup starts" + at());
                co_await sleep(3s);
                j("cleanup ends" + at());
              });
          j("after finally");
        }());
        j(std::string(r ? "true" : "false") + at());
      },
      [&]() -> task<void> {
        co_await sleep(1s);
        scope.cancel();
        scope.cancel();
        co_await sleep(500ms);
        scope.cancel();
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(cleanups, 1);
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"~inner local", "cleanup starts at 1000", "cleanup ends at 4000",
                            "~body local", "false at 4000"}));
}

// ---------------------------------------------------------------------------
// Frame destruction: RAII order, catch (...)

struct nested_frames {
  journal& j;
  task<void> inner() {
    raii_probe a(j, "inner a");
    raii_probe b(j, "inner b");
    co_await sleep(10s);
    j("inner woke");
  }
  task<void> middle() {
    raii_probe a(j, "middle a");
    co_await inner();
    j("middle resumed");
  }
  task<void> outer() {
    raii_probe a(j, "outer a");
    raii_probe b(j, "outer b");
    co_await middle();
    j("outer resumed");
  }
};

const lines reverse_order{"~inner b", "~inner a", "~middle a", "~outer b", "~outer a"};

TEST(cancellation, destructors_run_innermost_first_when_a_deadline_cancels) {
  journal j;
  nested_frames f{j};
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope scope(now() + 1s);
    auto r = co_await scope.run(f.outer());
    j(std::string(r ? "true" : "false") + at());
    EXPECT_TRUE(scope.cancelled_caught());
  }());
  ASSERT_TRUE(o.has_value());
  lines expected = reverse_order;
  expected.push_back("false at 1000");
  EXPECT_EQ(j.lines, expected);
}

TEST(cancellation, destructors_run_innermost_first_when_the_cancel_comes_while_running) {
  // The innermost frame cancels the scope itself and then suspends: the
  // unwinding goes through the level-triggered path, not the synchronous one.
  journal j;
  cancel_scope scope;
  auto inner = [&]() -> task<void> {
    raii_probe a(j, "inner a");
    raii_probe b(j, "inner b");
    co_await sleep(1s);
    scope.cancel();
    co_await sleep(10s);
    j("inner woke");
  };
  auto middle = [&]() -> task<void> {
    raii_probe a(j, "middle a");
    co_await inner();
    j("middle resumed");
  };
  auto outer = [&]() -> task<void> {
    raii_probe a(j, "outer a");
    raii_probe b(j, "outer b");
    co_await middle();
    j("outer resumed");
  };
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run(outer());
    j(std::string(r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  lines expected = reverse_order;
  expected.push_back("false at 1000");
  EXPECT_EQ(j.lines, expected);
}

TEST(cancellation, catch_all_never_sees_it) {
  for (bool from_outside : {true, false}) {
    SCOPED_TRACE(from_outside ? "deadline while suspended" : "cancel while running");
    journal j;
    cancel_scope scope;
    auto inner = [&]() -> task<void> {
      try {
        if (!from_outside) scope.cancel();
        co_await sleep(10s);
      } catch (...) {
        j("inner catch");
        throw;
      }
      j("after inner try");
    };
    auto outer = [&]() -> task<void> {
      try {
        co_await inner();
      } catch (...) {
        j("outer catch");
      }
      j("after outer try");
      co_await sleep(1s);
    };
    auto o = run_virtual([&]() -> task<void> {
      scope.set_deadline(now() + 1s);
      auto r = co_await scope.run(outer());
      j(std::string(r ? "true" : "false") + at());
    }());
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_EQ(j.lines, (lines{std::string("false at ") + (from_outside ? "1000" : "0")}));
  }
}

// ---------------------------------------------------------------------------
// Nested scopes: who catches

TEST(cancel_scope, nested_outer_deadline_first_is_caught_by_the_outer) {
  journal j;
  cancel_scope outer;
  cancel_scope inner;
  auto o = run_virtual([&]() -> task<void> {
    outer.set_deadline(now() + 1s);
    inner.set_deadline(now() + 5s);
    auto r = co_await outer.run([&]() -> task<void> {
      auto ri = co_await inner.run([&]() -> task<void> {
        raii_probe p(j, "inner body");
        co_await sleep(10s);
      }());
      j(std::string("inner run returned ") + (ri ? "true" : "false"));
    }());
    j(std::string("outer run returned ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"~inner body", "outer run returned false at 1000"}));
}

TEST(cancel_scope, nested_inner_deadline_first_is_caught_by_the_inner) {
  journal j;
  cancel_scope outer;
  cancel_scope inner;
  auto o = run_virtual([&]() -> task<std::optional<int>> {
    outer.set_deadline(now() + 5s);
    inner.set_deadline(now() + 1s);
    co_return co_await outer.run([&]() -> task<int> {
      auto ri = co_await inner.run([&]() -> task<void> { co_await sleep(10s); }());
      j(std::string("inner run returned ") + (ri ? "true" : "false") + at());
      co_await sleep(1s);
      co_return 7;
    }());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value(), std::optional<int>(7));
  EXPECT_TRUE(inner.cancelled_caught());
  EXPECT_FALSE(outer.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"inner run returned false at 1000"}));
}

TEST(cancel_scope, nested_deadlines_at_the_same_instant_are_caught_by_the_outermost) {
  // Both orders of arming: the outer's timer set first, and the inner's
  // timer set first (the inner body moves the outer deadline).
  for (bool inner_armed_first : {false, true}) {
    SCOPED_TRACE(inner_armed_first ? "inner armed first" : "outer armed first");
    journal j;
    cancel_scope outer;
    cancel_scope middle;
    cancel_scope inner;
    auto o = run_virtual([&]() -> task<void> {
      time_point t = now() + 2s;
      if (!inner_armed_first) outer.set_deadline(t);
      middle.set_deadline(t);
      auto r = co_await outer.run([&]() -> task<void> {
        co_await middle.run([&]() -> task<void> {
          inner.set_deadline(t);
          co_await inner.run([&]() -> task<void> {
            if (inner_armed_first) outer.set_deadline(t);
            co_await sleep(10s);
          }());
          j("after inner");
        }());
        j("after middle");
      }());
      j(std::string("outer run returned ") + (r ? "true" : "false") + at());
    }());
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(outer.cancelled_caught());
    EXPECT_FALSE(middle.cancelled_caught());
    EXPECT_FALSE(inner.cancelled_caught());
    EXPECT_EQ(j.lines, (lines{"outer run returned false at 2000"}));
  }
}

TEST(cancel_scope, nested_explicit_cancels_in_one_step_are_caught_by_the_outermost) {
  for (bool inner_first : {true, false}) {
    SCOPED_TRACE(inner_first ? "inner.cancel() first" : "outer.cancel() first");
    journal j;
    cancel_scope outer;
    cancel_scope inner;
    auto o = run_virtual(concurrently(
        [&]() -> task<void> {
          auto r = co_await outer.run([&]() -> task<void> {
            co_await inner.run([&]() -> task<void> { co_await sleep(10s); }());
            j("after inner");
          }());
          j(std::string("outer run returned ") + (r ? "true" : "false") + at());
        },
        [&]() -> task<void> {
          co_await sleep(1s);
          if (inner_first) inner.cancel();
          outer.cancel();
          if (!inner_first) inner.cancel();
        }));
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(outer.cancelled_caught());
    EXPECT_FALSE(inner.cancelled_caught());
    EXPECT_EQ(j.lines, (lines{"outer run returned false at 1000"}));
  }
}

TEST(cancel_scope, cancelled_from_outside_lets_the_cancellation_through) {
  journal j;
  cancel_scope inner;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await move_on_after(1s, [&]() -> task<void> {
      auto ri = co_await inner.run([&]() -> task<void> { co_await sleep(10s); }());
      j(std::string("inner returned ") + (ri ? "true" : "false"));
    }());
    j(std::string("move_on_after returned ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(inner.cancelled_caught());
  EXPECT_FALSE(inner.cancel_called());
  EXPECT_EQ(j.lines, (lines{"move_on_after returned false at 1000"}));
}

// ---------------------------------------------------------------------------
// Deadlines

TEST(cancel_scope, deadline_in_the_past_fires_at_the_first_suspension) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    co_await sleep(5s);
    cancel_scope past(now() - 1s);
    cancel_scope present(now());
    cancel_scope later;
    later.set_deadline(now() - 2s);  // set before run(): taken when run() starts
    for (cancel_scope* s : {&past, &present, &later}) {
      auto r = co_await s->run([&]() -> task<void> {
        j("code before the first suspension runs" + at());
        co_await sleep(1s);
        j("after the first suspension");
      }());
      j(std::string(r ? "true" : "false") + (s->cancelled_caught() ? " caught" : " not caught") +
        at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  lines once{"code before the first suspension runs at 5000", "false caught at 5000"};
  lines expected;
  for (int i = 0; i < 3; ++i) expected.insert(expected.end(), once.begin(), once.end());
  EXPECT_EQ(j.lines, expected);
}

TEST(cancel_scope, set_deadline_earlier_while_running) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    scope.set_deadline(now() + 5s);
    co_await scope.run([&]() -> task<void> {
      co_await sleep(1s);
      scope.set_deadline(now() + 1s);  // 5000 -> 2000
      EXPECT_EQ(scope.deadline(), time_point{} + 2s);
      co_await sleep(10s);
      j("not reached");
    }());
    j("returned" + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"returned at 2000"}));
}

TEST(cancel_scope, set_deadline_later_while_running) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    scope.set_deadline(now() + 2s);
    co_await scope.run([&]() -> task<void> {
      co_await sleep(1s);
      scope.set_deadline(now() + 7s);  // 2000 -> 8000
      co_await sleep(10s);
      j("not reached");
    }());
    j("returned" + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"returned at 8000"}));
}

TEST(cancel_scope, set_deadline_from_another_task_while_the_body_sleeps) {
  for (int variant : {0, 1, 2}) {  // earlier, later, in the past
    SCOPED_TRACE(variant);
    journal j;
    cancel_scope scope;
    auto o = run_virtual(concurrently(
        [&]() -> task<void> {
          scope.set_deadline(now() + 5s);
          co_await scope.run([&]() -> task<void> {
            raii_probe p(j, "body");
            co_await sleep(10s);
          }());
          j("returned" + at());
        },
        [&]() -> task<void> {
          co_await sleep(1s);
          if (variant == 0) scope.set_deadline(now() + 2s);
          if (variant == 1) scope.set_deadline(now() + 7s);
          if (variant == 2) {
            scope.set_deadline(now() - 1s);
            j("set_deadline returned");
          }
        }));
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(scope.cancelled_caught());
    const char* when[] = {"returned at 3000", "returned at 8000", "returned at 1000"};
    if (variant == 2)
      EXPECT_EQ(j.lines, (lines{"~body", "set_deadline returned", when[variant]}));
    else
      EXPECT_EQ(j.lines, (lines{"~body", when[variant]}));
  }
}

TEST(cancel_scope, deadline_max_means_no_deadline) {
  cancel_scope scope;
  EXPECT_EQ(scope.deadline(), time_point::max());
  auto o = run_virtual([&]() -> task<long long> {
    scope.set_deadline(now() + 5s);
    co_await scope.run([&]() -> task<void> {
      scope.set_deadline(time_point::max());  // removes the deadline
      co_await sleep(10s);
    }());
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 10000);
  EXPECT_FALSE(scope.cancelled_caught());
}

// A wait nothing ever ends (cancellable).
struct never_wakes {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  bool await_cancel(std::coroutine_handle<>) noexcept { return true; }
  void await_resume() const noexcept {}
};

TEST(cancel_scope, a_removed_deadline_does_not_fire_at_the_end_of_time) {
  // With the deadline removed (set to time_point::max()), a body that blocks
  // forever is a deadlock, not a cancellation at the end of virtual time.
  cancel_scope scope;
  virtual_loop loop;
  auto body = [&]() -> task<void> {
    scope.set_deadline(now() + 5s);
    co_await scope.run([&]() -> task<void> {
      scope.set_deadline(time_point::max());
      co_await never_wakes{};
    }());
  };
  EXPECT_THROW(loop.run(body()), deadlock_error);
  EXPECT_FALSE(scope.cancelled_caught());
  EXPECT_EQ(loop.now(), time_point{});
}

// ---------------------------------------------------------------------------
// Shields

TEST(shield, blocks_an_outer_cancel) {
  journal j;
  cancel_scope outer;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await outer.run([&]() -> task<void> {
          int v = co_await shield([&]() -> task<int> {
            co_await sleep(3s);
            j("shielded work done" + at());
            co_return 4;
          }());
          j("shield returned " + std::to_string(v) + at());
          co_await sleep(1s);
          j("not reached");
        }());
        j(std::string("outer returned ") + (r ? "true" : "false") + at());
      },
      [&]() -> task<void> {
        co_await sleep(1s);
        outer.cancel();
        j("cancelled" + at());
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"cancelled at 1000", "shielded work done at 3000",
                            "shield returned 4 at 3000", "outer returned false at 3000"}));
}

TEST(shield, blocks_an_outer_deadline) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope outer(now() + 1s);
    auto r = co_await outer.run([&]() -> task<void> {
      co_await shield([&]() -> task<void> {
        co_await sleep(500ms);
        j("shield step 1" + at());
        co_await sleep(1500ms);  // suspended here when the deadline passes
        j("shield step 2" + at());
        co_await checkpoint();
        j("shield step 3" + at());
      }());
      j("after shield" + at());
      co_await checkpoint();
      j("not reached");
    }());
    j(std::string("outer returned ") + (r ? "true" : "false") + at());
    EXPECT_TRUE(outer.cancelled_caught());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines,
            (lines{"shield step 1 at 500", "shield step 2 at 2000", "shield step 3 at 2000",
                   "after shield at 2000", "outer returned false at 2000"}));
}

TEST(shield, starts_even_when_the_awaiting_frame_is_already_cancelled) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    auto r = co_await scope.run([&]() -> task<void> {
      scope.cancel();
      co_await shield([&]() -> task<void> {
        co_await sleep(1s);
        j("first shield" + at());
      }());
      co_await shield([&]() -> task<void> {
        co_await sleep(1s);
        j("second shield" + at());
      }());
      co_await sleep(1s);  // level-triggered: still cancelled after the shields
      j("not reached");
    }());
    j(std::string(r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"first shield at 1000", "second shield at 2000", "false at 2000"}));
}

TEST(shield, an_inner_deadline_still_fires_inside_it) {
  journal j;
  cancel_scope inner;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope outer(now() + 1s);
    auto r = co_await outer.run([&]() -> task<void> {
      co_await shield([&]() -> task<void> {
        auto m = co_await move_on_after(2s, []() -> task<int> {
          co_await sleep(5s);
          co_return 1;
        }());
        j(std::string("move_on_after ") + (m ? "value" : "empty") + at());
        inner.set_deadline(now() + 1s);
        auto ri = co_await inner.run([]() -> task<void> { co_await sleep(5s); }());
        j(std::string("inner scope ") + (ri ? "true" : "false") + at());
      }());
      j("after shield" + at());
      co_await sleep(1s);
      j("not reached");
    }());
    j(std::string("outer returned ") + (r ? "true" : "false") + at());
    EXPECT_TRUE(outer.cancelled_caught());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(inner.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"move_on_after empty at 2000", "inner scope false at 3000",
                            "after shield at 3000", "outer returned false at 3000"}));
}

TEST(shield, a_shielded_scope_still_obeys_its_own_cancel_and_deadline) {
  for (bool by_deadline : {false, true}) {
    SCOPED_TRACE(by_deadline ? "own deadline" : "own cancel()");
    journal j;
    cancel_scope s;
    s.set_shield(true);
    EXPECT_TRUE(s.shield());
    auto o = run_virtual(concurrently(
        [&]() -> task<void> {
          if (by_deadline) s.set_deadline(now() + 2s);
          auto r = co_await s.run([]() -> task<void> { co_await sleep(10s); }());
          j(std::string(r ? "true" : "false") + at());
        },
        [&]() -> task<void> {
          co_await sleep(2s);
          if (!by_deadline) s.cancel();
        }));
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(s.cancelled_caught());
    EXPECT_EQ(j.lines, (lines{"false at 2000"}));
  }
}

TEST(shield, lowering_it_under_a_cancelled_outer_scope_cancels_the_body_at_once) {
  journal j;
  cancel_scope outer;
  cancel_scope inner;
  inner.set_shield(true);
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await outer.run([&]() -> task<void> {
          auto ri = co_await inner.run([&]() -> task<void> {
            raii_probe p(j, "shielded body");
            co_await sleep(10s);
            j("not reached");
          }());
          j(std::string("inner returned ") + (ri ? "true" : "false"));
        }());
        j(std::string("outer returned ") + (r ? "true" : "false") + at());
      },
      [&]() -> task<void> {
        co_await sleep(1s);
        outer.cancel();
        j("outer cancelled" + at());
        co_await sleep(1s);
        inner.set_shield(false);
        j("shield lowered" + at());
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"outer cancelled at 1000", "~shielded body", "shield lowered at 2000",
                            "outer returned false at 2000"}));
}

TEST(shield, lowering_it_from_inside_the_body_applies_at_its_next_suspension) {
  journal j;
  cancel_scope inner;
  inner.set_shield(true);
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope outer(now() + 1s);
    auto r = co_await outer.run([&]() -> task<void> {
      co_await inner.run([&]() -> task<void> {
        co_await sleep(2s);
        inner.set_shield(false);
        j("lowered" + at());
        co_await sleep(1s);
        j("not reached");
      }());
      j("not reached either");
    }());
    j(std::string("outer returned ") + (r ? "true" : "false") + at());
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(inner.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"lowered at 2000", "outer returned false at 2000"}));
}

TEST(shield, raising_it_while_the_body_runs_protects_the_body) {
  journal j;
  cancel_scope outer;
  cancel_scope inner;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        auto r = co_await outer.run([&]() -> task<void> {
          co_await inner.run([&]() -> task<void> {
            inner.set_shield(true);
            co_await sleep(3s);
            j("protected body done" + at());
          }());
          co_await sleep(1s);
          j("not reached");
        }());
        j(std::string("outer returned ") + (r ? "true" : "false") + at());
      },
      [&]() -> task<void> {
        co_await sleep(1s);
        outer.cancel();
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"protected body done at 3000", "outer returned false at 3000"}));
}

// ---------------------------------------------------------------------------
// Errors raised around cancellation

TEST(cancel_scope, body_that_throws_after_a_cancel_request_reports_the_error) {
  journal j;
  cancel_scope scope;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await scope.run([&]() -> task<void> {
        co_await sleep(1s);
        scope.cancel();
        throw custom_error("thrown before the next suspension");
      }());
      j("no exception");
    } catch (const custom_error& e) {
      j(std::string("caught: ") + e.what() + at());
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(scope.cancelled_caught());
  EXPECT_EQ(j.lines, (lines{"caught: thrown before the next suspension at 1000"}));
}

TEST(shield, a_shielded_scope_catches_its_own_deadline_while_the_outer_is_cancelled) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope outer;
    co_await outer.run([&]() -> task<void> {
      cancel_scope inner;
      inner.set_shield(true);
      inner.set_deadline(now() + 2s);
      co_await with_task_group([&](task_group& g) -> task<void> {
        g.spawn([&]() -> task<void> {
          co_await sleep(1s);
          outer.cancel();  // blocked by the shield
          co_return;
        });
        co_await inner.run([]() -> task<void> { co_await sleep(100s); }());
      });
      j(std::string("inner caught: ") + (inner.cancelled_caught() ? "yes" : "no") + " at " +
        std::to_string(ms()));
      co_await checkpoint();  // the outer cancellation lands here
      j("never");
    }());
    j(std::string("outer caught: ") + (outer.cancelled_caught() ? "yes" : "no"));
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"inner caught: yes at 2000", "outer caught: yes"}));
}

}  // namespace
}  // namespace grove::testing
