// Delivering a cancellation: an awaiter whose resumption is already posted,
// re-entrant cancel() from destructors and stop callbacks, and when the
// cancelled frames' destructors run (include/grove/awaitable protocol,
// detail/reaper.hpp). The first four tests are shared/repro/repro_1..4.
#include <atomic>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

// Counts how often a cleanup started and finished.
struct cleanup_count {
  int started = 0;
  int finished = 0;
  task<void> run() {
    ++started;
    co_await sleep(1ms);
    ++finished;
  }
};

task<int> slow() {
  co_await sleep(1h);
  co_return 2;
}

// Runs `a` and `b` as siblings of one group, under a root that must complete.
template <class A, class B>
void run_siblings(A a, B b) {
  auto o = run_virtual(concurrently(std::move(a), std::move(b)));
  ASSERT_TRUE(o.has_value());
}

// repro_1: the gather posted its resumption; then an outer cancel reaches it
// through finally. It must answer "will be resumed" and deliver its outcomes.
TEST(cancel_delivery, a_gather_that_posted_its_resumption_is_resumed_not_dropped) {
  cleanup_count c;
  cancel_scope scope;
  bool outcomes_delivered = false;
  auto body = [&]() -> task<int> {
    std::vector<task<int>> ts;
    ts.push_back([]() -> task<int> {
      co_await sleep(10ms);
      co_return 1;
    }());
    auto outs = co_await gather(std::move(ts));
    outcomes_delivered = outs.at(0).value() == 1;  // scheduled: runs on (DESIGN §1.2)
    co_await sleep(1s);                            // the next suspension unwinds
    ADD_FAILURE() << "ran past the suspension point after the cancel";
    co_return 0;
  };
  run_siblings(
      [&]() -> task<void> { co_await scope.run(finally(body(), [&] { return c.run(); })); },
      [&]() -> task<void> {
        co_await sleep(5ms);
        co_await sleep(5ms);  // wakes right after the leaf: the gather has posted
        scope.cancel();
      });
  EXPECT_TRUE(outcomes_delivered);
  EXPECT_EQ(c.started, 1);
  EXPECT_EQ(c.finished, 1);
  EXPECT_TRUE(scope.cancelled_caught());
}

// repro_2: a gather child that unwinds releases its RAII objects at once,
// not when its siblings are done: a sibling's cleanup can take its permit.
TEST(cancel_delivery, a_gather_child_that_unwinds_releases_its_guard_at_once) {
  semaphore sem(1);
  cancel_scope scope;
  bool cleanup_got_permit = false;
  journal j;
  auto holder = [&]() -> task<int> {
    raii_probe p(j, "holder");
    auto guard = co_await sem.lock();
    co_await checkpoint();  // scheduled when the cancel arrives
    co_await sleep(1s);     // unwinds here
    co_return 1;
  };
  auto cleanup = [&]() -> task<void> {
    auto guard = co_await sem.lock();
    j("cleanup has the permit" + at());
    cleanup_got_permit = true;
  };
  run_siblings(
      [&]() -> task<void> { co_await scope.run(gather(holder(), finally(slow(), cleanup))); },
      [&]() -> task<void> {
        co_await checkpoint();
        scope.cancel();
      });
  EXPECT_TRUE(cleanup_got_permit);
  EXPECT_EQ(j.lines, (lines{"~holder", "cleanup has the permit at 0"}));
  EXPECT_EQ(sem.available(), 1u);
}

// repro_3: a destructor cancels an enclosing scope while gather cancels its
// children. Nothing is destroyed under the gather's feet.
TEST(cancel_delivery, a_destructor_may_cancel_an_enclosing_scope_while_gather_cancels) {
  cancel_scope outer;
  cancel_scope inner;
  int destroyed = 0;
  struct stop_all {
    cancel_scope* s;
    int* n;
    ~stop_all() {
      ++*n;
      s->cancel();
    }
  };
  auto worker = [&]() -> task<int> {
    stop_all guard{&outer, &destroyed};
    co_await sleep(1s);
    co_return 1;
  };
  auto inner_body = [&]() -> task<void> { (void)co_await gather(worker(), worker()); };
  auto outer_body = [&]() -> task<void> { co_await inner.run(inner_body()); };
  run_siblings([&]() -> task<void> { co_await outer.run(outer_body()); },
               [&]() -> task<void> {
                 co_await sleep(10ms);
                 inner.cancel();
                 EXPECT_EQ(destroyed, 2);  // cancel() returns after the destructors ran
                 EXPECT_TRUE(outer.cancel_called());
               });
  EXPECT_TRUE(outer.cancelled_caught());  // outermost wins
}

// repro_4: a group child's destructor cancels its own group while the group
// is being cancelled from outside; the group must not answer "never
// resumed" after it posted its resumption.
TEST(cancel_delivery, a_destructor_may_cancel_its_own_group_while_it_is_cancelled) {
  cleanup_count c;
  cancel_scope scope;
  struct cancel_group_on_exit {
    task_group* g;
    ~cancel_group_on_exit() { g->cancel(); }
  };
  auto child = [](task_group* g) -> task<void> {
    cancel_group_on_exit guard{g};
    co_await sleep(1s);
  };
  auto body = [&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn(child, &g);
      co_return;
    });
  };
  run_siblings(
      [&]() -> task<void> { co_await scope.run(finally(body(), [&] { return c.run(); })); },
      [&]() -> task<void> {
        co_await sleep(10ms);
        scope.cancel();
      });
  EXPECT_EQ(c.started, 1);
  EXPECT_EQ(c.finished, 1);
}

// (stress seed 360 on the old core) finally's body unwinds later (it was
// scheduled when the cancel came); a destructor in it cancels the group
// around the finally while finally destroys the body. The cancel reaches
// finally between body and cleanup; the cleanup still runs once.
TEST(cancel_delivery, a_destructor_in_an_unwinding_finally_body_may_cancel_around_it) {
  cleanup_count c;
  cancel_scope scope;
  struct cancel_group_on_exit {
    task_group* g;
    ~cancel_group_on_exit() { g->cancel(); }
  };
  auto body = [](task_group* g) -> task<void> {
    cancel_group_on_exit guard{g};
    co_await checkpoint();  // scheduled when the scope is cancelled
    co_await sleep(1h);     // unwinds here
  };
  auto o = run_virtual(with_task_group([&](task_group& g) -> task<void> {
    g.spawn(
        [&]() -> task<void> { co_await scope.run(finally(body(&g), [&] { return c.run(); })); });
    g.spawn([&]() -> task<void> {
      scope.cancel();  // same step: the body has just parked in its checkpoint
      co_return;
    });
    co_return;
  }));
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(c.started, 1);
  EXPECT_EQ(c.finished, 1);
}

// (review B2) A failed child's callable cancels the scope around its group
// as the record goes: the group must still throw the child's error.
TEST(cancel_delivery, a_childs_error_survives_its_callables_destructor_cancelling_around) {
  struct cancel_on_exit {
    cancel_scope* s;
    explicit cancel_on_exit(cancel_scope* sc) : s(sc) {}
    cancel_on_exit(cancel_on_exit&& o) noexcept : s(std::exchange(o.s, nullptr)) {}
    ~cancel_on_exit() {
      if (s != nullptr) s->cancel();
    }
  };
  cancel_scope scope;
  bool reported = false;
  auto o = run_virtual([&]() -> task<void> {
    try {
      co_await scope.run(with_task_group([&](task_group& g) -> task<void> {
        g.spawn([guard = cancel_on_exit{&scope}]() -> task<void> {
          co_await sleep(1ms);
          throw custom_error("child failed");
        });
        co_await sleep(1h);
      }));
    } catch (const exception_group& e) {
      reported = e.contains<custom_error>();
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(reported);
}

// (review R1) settle keeps cancel() synchronous: when it returns, the
// settled task's frame is gone and its permit is back.
TEST(cancel_delivery, settle_releases_a_cancelled_tasks_frame_before_cancel_returns) {
  semaphore sem(1);
  cancel_scope scope;
  std::size_t free_after_cancel = 9;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        co_await scope.run([&]() -> task<void> {
          outcome<void> r = co_await settle([](semaphore& s) -> task<void> {
            auto g = co_await s.lock();
            co_await sleep(1h);
          }(sem));
          EXPECT_TRUE(r.cancelled());
        }());
      },
      [&]() -> task<void> {
        co_await sleep(10ms);
        scope.cancel();
        free_after_cancel = sem.available();
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(free_after_cancel, 1u);
}

// (review N1) A forced shutdown that cuts a cleanup short does not drop the
// body's error: errors win over cancellation, forced or not.
TEST(cancel_delivery, a_forced_shutdown_during_cleanup_keeps_the_bodys_error) {
  virtual_loop loop;
  auto o = loop.run(concurrently(
      []() -> task<void> {
        co_await finally(
            []() -> task<void> {
              co_await sleep(1ms);
              throw custom_error("body failed");
            }(),
            []() -> task<void> { co_await sleep(1h); });
      },
      [&]() -> task<void> {
        co_await sleep(10ms);
        loop.force_cancel();
      }));
  ASSERT_TRUE(o.has_error());
  bool found = false;
  try {
    std::rethrow_exception(o.error());
  } catch (const exception_group& g) {
    found = g.contains<custom_error>();
  } catch (const custom_error&) {
    found = true;
  }
  EXPECT_TRUE(found);
}

// A group that finished and posted its resumption, then an outer cancel in
// the same step: the group's body value is delivered, not dropped.
TEST(cancel_delivery, a_group_that_posted_its_resumption_delivers_its_value) {
  cancel_scope scope;
  int got = 0;
  run_siblings(
      [&]() -> task<void> {
        co_await scope.run([&]() -> task<void> {
          got = co_await with_task_group([](task_group& g) -> task<int> {
            g.spawn([]() -> task<void> { co_await sleep(10ms); });
            co_return 7;
          });
          co_await sleep(1s);
          ADD_FAILURE() << "ran past the suspension point after the cancel";
        }());
      },
      [&]() -> task<void> {
        co_await sleep(5ms);
        co_await sleep(5ms);  // right after the child: the group has posted
        scope.cancel();
      });
  EXPECT_EQ(got, 7);
  EXPECT_TRUE(scope.cancelled_caught());
}

// A scope whose cancel already posted its resumption, reached again by an
// outer cancel in the same step: one resumption, and the outer scope catches.
TEST(cancel_delivery, a_scope_that_posted_its_resumption_is_cancelled_once) {
  cancel_scope outer;
  cancel_scope inner;
  journal j;
  run_siblings(
      [&]() -> task<void> {
        co_await outer.run([&]() -> task<void> {
          raii_probe p(j, "outer body");
          co_await inner.run([&]() -> task<void> {
            raii_probe q(j, "inner body");
            co_await sleep(1s);
          }());
          ADD_FAILURE() << "the outer scope's body went on";
        }());
        j("after" + at());
      },
      [&]() -> task<void> {
        co_await sleep(10ms);
        inner.cancel();
        outer.cancel();
      });
  EXPECT_EQ(j.lines, (lines{"~inner body", "~outer body", "after at 10"}));
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancelled_caught());
}

// A stop callback (run on the loop thread while to_thread is cancelled) that
// cancels an enclosing scope re-enters the delivery that called it.
TEST(cancel_delivery, a_stop_callback_may_cancel_an_enclosing_scope) {
  cancel_scope outer;
  cancel_scope inner;
  std::atomic<bool> running{false};
  bool stopped = false;
  run_siblings(
      [&]() -> task<void> {
        co_await outer.run([&]() -> task<void> {
          co_await inner.run([&]() -> task<void> {
            co_await to_thread([&](std::stop_token st) {
              std::stop_callback cb(st, [&] { outer.cancel(); });  // runs on the loop thread
              running = true;
              while (!st.stop_requested()) std::this_thread::yield();
              stopped = true;
            });
          }());
        }());
      },
      [&]() -> task<void> {
        while (!running) co_await checkpoint();  // virtual time stands still while fn runs
        inner.cancel();
      });
  EXPECT_TRUE(stopped);
  EXPECT_TRUE(outer.cancel_called());
}

// cancel() stays synchronous for the caller: when it returns, the cancelled
// frames' destructors have run and the permit is back.
TEST(cancel_delivery, cancel_returns_after_the_cancelled_frames_destructors_ran) {
  semaphore sem(1);
  cancel_scope scope;
  journal j;
  run_siblings(
      [&]() -> task<void> {
        co_await scope.run([&]() -> task<void> {
          std::vector<task<void>> ts;
          for (int i = 0; i < 3; ++i)
            ts.push_back([](journal& jj, semaphore& s, int k) -> task<void> {
              raii_probe p(jj, "child " + std::to_string(k));
              auto g = co_await s.lock();
              co_await sleep(1h);
            }(j, sem, i));
          (void)co_await gather(std::move(ts));
        }());
      },
      [&]() -> task<void> {
        co_await sleep(10ms);
        scope.cancel();
        j("cancel returned; " + std::to_string(sem.available()) + " free");
      });
  EXPECT_EQ(j.lines, (lines{"~child 0", "~child 1", "~child 2", "cancel returned; 1 free"}));
}

// A wait that a sibling ends by posting the frame's resumption. It has
// await_cancel but no await_must_resume, so it always resumes its frame,
// and the frame's adapter hands it the frame's own handle (no proxy).
struct posted_wake {
  detail::ready_node wake;
  int cancels = 0;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { wake.target = h; }
  // Posted: refused (the posted-resumption rule). Not posted: nothing to undo.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    ++cancels;
    return !wake.linked();
  }
  void await_resume() const noexcept {}
};

// A cancel that arrives while such a resumption is posted is refused and met
// at the frame's next suspension point; once the frame has resumed, the wait
// is over: a cancel made while the frame runs no longer reaches the awaiter.
TEST(cancel_delivery, a_posted_resumption_without_must_resume_is_met_at_the_next_wait) {
  posted_wake w;
  cancel_scope outer;
  cancel_scope inner;
  journal j;
  run_siblings(
      [&]() -> task<void> {
        co_await outer.run([&]() -> task<void> {
          co_await inner.run([&]() -> task<void> {
            raii_probe p(j, "body");
            co_await w;
            j("resumed" + at());
            outer.cancel();  // reaches this running frame: noticed below
            j("cancels " + std::to_string(w.cancels));
            co_await sleep(1h);
            ADD_FAILURE() << "the cancelled body went on";
          }());
        }());
        j("after" + at());
      },
      [&]() -> task<void> {
        co_await sleep(10ms);
        event_loop::current()->post(w.wake);
        inner.cancel();
        EXPECT_EQ(w.cancels, 1);  // refused: the resumption is posted
      });
  EXPECT_EQ(j.lines, (lines{"resumed at 10", "cancels 1", "~body", "after at 10"}));
  EXPECT_TRUE(outer.cancelled_caught());
  EXPECT_FALSE(inner.cancelled_caught());
}

}  // namespace
}  // namespace grove::testing
