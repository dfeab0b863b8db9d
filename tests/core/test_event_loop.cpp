// event_loop / virtual_loop: outcomes, root cancellation, forced shutdown,
// deadlock reports, nesting, the virtual and the real clock.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

// Calls `fn` on the loop thread when the running loop's clock reaches `t`,
// from outside every task (like a signal arriving). Built on the loop's
// timer primitive; create it inside the loop (timers are armed only while
// their loop runs).
class at_time {
 public:
  at_time(time_point t, std::function<void()> fn) : fn_(std::move(fn)) {
    proxy_ = grove::detail::make_proxy<at_time, &at_time::fire>(this);
    timer_.fire().target = proxy_.handle();
    event_loop::current()->add_timer(timer_, t);
  }
  at_time(const at_time&) = delete;
  at_time& operator=(const at_time&) = delete;

 private:
  void fire() noexcept { fn_(); }
  std::function<void()> fn_;
  grove::detail::timer_node timer_;
  grove::detail::proxy_frame proxy_;
};

// A wait that nothing ever ends; cancellable.
struct never_wakes {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  bool await_cancel(std::coroutine_handle<>) noexcept { return true; }
  void await_resume() const noexcept {}
};

// A wait that nothing ever ends; not cancellable.
struct never_wakes_uncancellable {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

// Work done on another thread that posts the waiting task back to the loop.
class on_other_thread {
 public:
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    loop_ = event_loop::current();
    loop_->hold_external();
    node_.target = h;
    thread_ = std::thread([this] { loop_->post_threadsafe(node_); });
  }
  std::thread::id await_resume() {
    thread_.join();
    loop_->release_external();
    return std::this_thread::get_id();
  }

 private:
  event_loop* loop_ = nullptr;
  grove::detail::ready_node node_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// run() and its outcome

TEST(event_loop, run_gives_a_value_outcome) {
  virtual_loop loop;
  auto o = loop.run([]() -> task<std::string> {
    co_await sleep(1s);
    co_return "done";
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(o.has_error());
  EXPECT_FALSE(o.cancelled());
  EXPECT_EQ(o.value(), "done");
  EXPECT_EQ(loop.now(), time_point{} + 1s);

  auto v = loop.run([]() -> task<void> { co_await sleep(1s); }());
  EXPECT_TRUE(v.has_value());
  EXPECT_FALSE(v.cancelled());
  EXPECT_NO_THROW(v.value());
  EXPECT_EQ(loop.now(), time_point{} + 2s);  // a loop can run several roots in turn
}

TEST(event_loop, run_gives_an_error_outcome) {
  virtual_loop loop;
  auto o = loop.run([]() -> task<int> {
    co_await sleep(1s);
    throw custom_error("root failed");
  }());
  ASSERT_TRUE(o.has_error());
  EXPECT_FALSE(o.has_value());
  EXPECT_FALSE(o.cancelled());
  try {
    std::rethrow_exception(o.error());
  } catch (const custom_error& e) {
    EXPECT_STREQ(e.what(), "root failed");
  } catch (...) {
    ADD_FAILURE() << "wrong exception type";
  }
  EXPECT_THROW(o.value(), custom_error);

  auto v = loop.run([]() -> task<void> {
    throw custom_error("at once");
    co_return;
  }());
  EXPECT_TRUE(v.has_error());
  EXPECT_THROW(v.value(), custom_error);
}

TEST(event_loop, cancel_root_from_inside_gives_a_cancelled_outcome) {
  journal j;
  virtual_loop loop;
  auto o = loop.run([&]() -> task<int> {
    raii_probe p(j, "root local");
    co_await sleep(1s);
    event_loop::current()->cancel_root();
    j("runs until the next suspension" + at());
    co_await sleep(1s);
    j("not reached");
    co_return 1;
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_FALSE(o.has_value());
  EXPECT_FALSE(o.has_error());
  EXPECT_THROW(o.value(), cancelled_error);
  EXPECT_EQ(j.lines, (lines{"runs until the next suspension at 1000", "~root local"}));
  EXPECT_EQ(loop.now(), time_point{} + 1s);

  auto v = loop.run([&]() -> task<void> {
    event_loop::current()->cancel_root();
    co_await checkpoint();
  }());
  EXPECT_TRUE(v.cancelled());
  EXPECT_THROW(v.value(), cancelled_error);
}

TEST(event_loop, cancel_root_without_a_later_suspension_keeps_the_value) {
  virtual_loop loop;
  auto o = loop.run([&]() -> task<int> {
    co_await sleep(1s);
    event_loop::current()->cancel_root();
    co_return 5;
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value(), 5);
}

TEST(event_loop, cancel_root_from_outside_the_tasks_while_they_sleep) {
  journal j;
  virtual_loop loop;
  auto child = [&]() -> task<void> {
    raii_probe p(j, "child local");
    co_await sleep(10s);
  };
  auto o = loop.run([&]() -> task<void> {
    at_time cancel(now() + 1s, [&] {
      j("cancel_root");
      loop.cancel_root();
      j("cancel_root returned");
    });
    raii_probe p(j, "root local");
    co_await child();
    j("not reached");
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_EQ(loop.now(), time_point{} + 1s);
  // Every frame is gone, innermost first, once run() has returned.
  EXPECT_EQ(j.lines, (lines{"cancel_root", "cancel_root returned", "~child local", "~root local"}));
}

// Records which loop was current when it was destroyed.
struct loop_witness {
  std::vector<event_loop*>* seen;
  ~loop_witness() { seen->push_back(event_loop::current()); }
};

TEST(event_loop, a_cancelled_root_is_destroyed_before_run_returns) {
  // DESIGN §1.9: nothing runs after run() returns. The destructors of a
  // cancelled root's locals are user code (they may log with now(), release
  // a semaphore, ...): they must run inside the loop, not when the caller's
  // task<T> argument happens to be destroyed.
  for (bool from_outside : {false, true}) {
    SCOPED_TRACE(from_outside ? "cancel_root while the root sleeps" : "cancel_root from inside");
    std::vector<event_loop*> seen;
    virtual_loop loop;
    auto child = [&]() -> task<void> {
      loop_witness w{&seen};
      if (!from_outside) event_loop::current()->cancel_root();
      co_await sleep(10s);
    };
    auto root = [&]() -> task<void> {
      at_time cancel(now() + 1s, [&] {
        if (from_outside) loop.cancel_root();
      });
      loop_witness w{&seen};
      co_await child();
    };
    auto o = loop.run(root());
    EXPECT_TRUE(o.cancelled());
    EXPECT_EQ(seen, (std::vector<event_loop*>{&loop, &loop}));
  }
}

TEST(event_loop, cancel_root_is_graceful_shields_and_cleanups_finish) {
  journal j;
  virtual_loop loop;
  int cleanups = 0;
  auto o = loop.run([&]() -> task<void> {
    at_time cancel(now() + 1s, [&] { loop.cancel_root(); });
    co_await finally(
        [&]() -> task<void> {
          co_await shield([&]() -> task<void> {
            co_await sleep(2s);
            j("shielded work done" + at());
          }());
          j("after shield" + at());
          co_await sleep(10s);
          j("not reached");
        }(),
        [&]() -> task<void> {
          ++cleanups;
          co_await sleep(1s);
          j("cleanup done" + at());
        });
    j("not reached either");
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_EQ(cleanups, 1);
  EXPECT_EQ(loop.now(), time_point{} + 3s);
  EXPECT_EQ(j.lines,
            (lines{"shielded work done at 2000", "after shield at 2000", "cleanup done at 3000"}));
}

TEST(event_loop, cancel_root_twice_is_delivered_once) {
  journal j;
  virtual_loop loop;
  int cleanups = 0;
  auto o = loop.run([&]() -> task<void> {
    at_time first(now() + 1s, [&] { loop.cancel_root(); });
    at_time second(now() + 1500ms, [&] { loop.cancel_root(); });
    co_await finally([]() -> task<void> { co_await sleep(10s); }(),
                     [&]() -> task<void> {
                       raii_probe p(j, "cleanup local");
                       ++cleanups;
                       co_await sleep(1s);
                       j("cleanup done" + at());
                     });
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_EQ(cleanups, 1);
  EXPECT_EQ(j.lines, (lines{"cleanup done at 2000", "~cleanup local"}));
}

TEST(event_loop, force_cancel_breaks_shields_and_runs_destructors) {
  journal j;
  virtual_loop loop;
  auto o = loop.run([&]() -> task<void> {
    at_time graceful(now() + 1s, [&] {
      j("graceful");
      loop.cancel_root();
    });
    at_time forced(now() + 2s, [&] {
      j("forced");
      loop.force_cancel();
      EXPECT_TRUE(loop.forced());
    });
    raii_probe p(j, "root local");
    co_await shield([&]() -> task<void> {
      raii_probe q(j, "shielded local");
      co_await sleep(10s);
      j("not reached");
    }());
    j("not reached either");
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_EQ(loop.now(), time_point{} + 2s);
  EXPECT_EQ(j.lines, (lines{"graceful", "forced", "~shielded local", "~root local"}));
}

TEST(event_loop, force_cancel_cuts_a_finally_cleanup_short) {
  journal j;
  virtual_loop loop;
  auto o = loop.run([&]() -> task<void> {
    at_time graceful(now() + 1s, [&] { loop.cancel_root(); });
    at_time forced(now() + 3s, [&] { loop.force_cancel(); });
    co_await finally([]() -> task<void> { co_await sleep(10s); }(),
                     [&]() -> task<void> {
                       raii_probe p(j, "cleanup local");
                       j("cleanup starts" + at());
                       co_await sleep(10s);
                       j("not reached");
                     });
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_EQ(loop.now(), time_point{} + 3s);
  EXPECT_EQ(j.lines, (lines{"cleanup starts at 1000", "~cleanup local"}));
}

// ---------------------------------------------------------------------------
// Which loop is current; nesting

TEST(event_loop, current_is_set_only_while_a_loop_runs) {
  EXPECT_EQ(event_loop::current(), nullptr);
  virtual_loop loop;
  event_loop* seen = nullptr;
  auto o = loop.run([&]() -> task<void> {
    seen = event_loop::current();
    co_await sleep(1s);
    EXPECT_EQ(event_loop::current(), &loop);
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(seen, &loop);
  EXPECT_EQ(event_loop::current(), nullptr);

  EXPECT_THROW(loop.run([]() -> task<void> { co_await never_wakes{}; }()), deadlock_error);
  EXPECT_EQ(event_loop::current(), nullptr);  // reset after an exception too
}

TEST(event_loop, nested_run_throws_logic_error_and_the_outer_loop_goes_on) {
  journal j;
  virtual_loop outer;
  auto o = outer.run([&]() -> task<long long> {
    co_await sleep(1s);
    virtual_loop inner;
    try {
      inner.run([&](std::unique_ptr<raii_probe>) -> task<void> {
        j("inner root ran");
        co_return;
      }(std::make_unique<raii_probe>(j, "inner root argument")));
      j("no exception");
    } catch (const std::logic_error& e) {
      j(std::string("logic_error: ") + (std::string(e.what()).empty() ? "empty" : "message"));
    }
    EXPECT_EQ(event_loop::current(), &outer);
    co_await sleep(1s);
    co_return ms();
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value(), 2000);
  EXPECT_EQ(j.lines, (lines{"~inner root argument", "logic_error: message"}));

  // Nesting the *same* loop is refused too.
  auto same = outer.run([&]() -> task<bool> {
    try {
      outer.run([]() -> task<void> { co_return; }());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  }());
  EXPECT_TRUE(same.value());
}

TEST(event_loop, a_refused_nested_run_leaves_the_running_root_untouched) {
  // The refused run() must not touch the running loop's state: here the
  // root was already cancelled, and must stay cancelled.
  journal j;
  virtual_loop loop;
  auto o = loop.run([&]() -> task<void> {
    co_await sleep(1s);
    event_loop::current()->cancel_root();
    try {
      loop.run([]() -> task<void> { co_return; }());
    } catch (const std::logic_error&) {
      j("refused");
    }
    co_await sleep(1s);
    j("not reached" + at());
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_EQ(j.lines, (lines{"refused"}));
  EXPECT_EQ(loop.now(), time_point{} + 1s);
}

// ---------------------------------------------------------------------------
// Deadlocks

TEST(event_loop, a_blocked_root_with_no_timer_is_a_deadlock_reported_at_once) {
  virtual_loop loop;
  journal j;
  std::string report;
  try {
    loop.run([&]() -> task<void> {
      raii_probe p(j, "root local");
      co_await sleep(5s);
      cancel_scope scope;
      co_await scope.run([]() -> task<void> { co_await never_wakes{}; }());
    }());
    ADD_FAILURE() << "no deadlock_error";
  } catch (const deadlock_error& e) {
    report = e.what();
  }
  EXPECT_EQ(loop.now(), time_point{} + 5s);    // no jump to some far timer
  EXPECT_EQ(j.lines, (lines{"~root local"}));  // the frames were destroyed
  EXPECT_NE(report.find("deadlock"), std::string::npos) << report;
  EXPECT_NE(report.find("cancel_scope"), std::string::npos) << report;
  EXPECT_NE(report.find("never_wakes"), std::string::npos) << report;
}

TEST(event_loop, the_deadlock_report_shows_the_task_tree) {
  virtual_loop loop;
  std::string report;
  auto leaf = []() -> task<void> { co_await never_wakes{}; };
  try {
    loop.run([&]() -> task<void> {
      co_await concurrently([&]() -> task<void> { co_await leaf(); },
                            [&]() -> task<void> {
                              co_await finally(
                                  []() -> task<void> { co_return; }(),
                                  []() -> task<void> { co_await never_wakes_uncancellable{}; });
                            },
                            [&]() -> task<void> {
                              co_await sleep(2s);  // a pending timer is not a deadlock
                              co_await shield([]() -> task<void> { co_await never_wakes{}; }());
                            });
    }());
    ADD_FAILURE() << "no deadlock_error";
  } catch (const deadlock_error& e) {
    report = e.what();
  }
  EXPECT_EQ(loop.now(), time_point{} + 2s);
  for (const char* part : {"deadlock", "Task tree", "task_group", "finally (running cleanup",
                           "shielded cancel_scope", "never_wakes", "cannot be cancelled"})
    EXPECT_NE(report.find(part), std::string::npos) << "missing '" << part << "' in:\n" << report;
}

TEST(event_loop, a_real_clock_loop_reports_a_deadlock_too) {
  event_loop loop;
  EXPECT_THROW(loop.run([]() -> task<void> { co_await never_wakes{}; }()), deadlock_error);
}

// ---------------------------------------------------------------------------
// Clocks and external work

TEST(virtual_loop, time_jumps_without_waiting) {
  auto start = std::chrono::steady_clock::now();
  auto o = run_virtual([]() -> task<long long> {
    co_await sleep(std::chrono::hours(24 * 365));
    co_return ms();
  }());
  auto spent = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(o.value(), 365LL * 24 * 3600 * 1000);
  EXPECT_LT(spent, 5s);
}

TEST(virtual_loop, starts_at_zero_and_waits_for_external_work_without_jumping) {
  journal j;
  virtual_loop loop;
  EXPECT_TRUE(loop.is_virtual());
  EXPECT_EQ(loop.now(), time_point{});
  auto loop_thread = std::this_thread::get_id();
  auto o = loop.run(concurrently(
      [&]() -> task<void> {
        co_await sleep(1s);
        j("sleeper" + at());
      },
      [&]() -> task<void> {
        std::thread::id resumed_on = co_await on_other_thread{};
        EXPECT_EQ(resumed_on, loop_thread);
        j("external work done" + at());
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"external work done at 0", "sleeper at 1000"}));
}

TEST(event_loop, the_real_clock_really_waits) {
  event_loop loop;
  EXPECT_FALSE(loop.is_virtual());
  auto start = std::chrono::steady_clock::now();
  auto o = loop.run([]() -> task<duration> {
    time_point t0 = now();
    co_await sleep(20ms);
    co_return now() - t0;
  }());
  auto spent = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(o.has_value());
  EXPECT_GE(o.value(), 20ms);
  EXPECT_GE(spent, 20ms);
}

// DESIGN §4: however full the ready queue, the loop polls the OS at least
// every 64 tasks. A task in a storm of 10,000 ready tasks makes a pipe
// readable; the loop's watch sees it before 64 more tasks have run (counted
// in tasks, not in time).
TEST(event_loop, a_descriptor_made_readable_during_a_storm_is_seen_within_a_batch) {
  struct storm_state : detail::fd_watch {
    long steps = 0;
    long written_at = -1;
    long seen_after = -1;
    int write_end = -1;
  } st;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  st.fd = fds[0];
  st.write_end = fds[1];
  st.events = EPOLLIN;
  st.on_event = [](detail::fd_watch* w, std::uint32_t) {
    auto* s = static_cast<storm_state*>(w);
    if (s->seen_after < 0) s->seen_after = s->steps - s->written_at;
  };
  constexpr long tasks = 10000;
  event_loop loop;  // the real clock: this is about the OS poll
  auto o = loop.run(with_task_group([&](task_group& g) -> task<void> {
    event_loop::current()->watch_fd(st);
    for (long i = 0; i < tasks; ++i)
      g.spawn([&]() -> task<void> {
        while (st.seen_after < 0) {
          if (++st.steps == 4 * tasks + 17) {  // mid-batch
            st.written_at = st.steps;
            char byte = 1;
            EXPECT_EQ(::write(st.write_end, &byte, 1), 1);
          }
          co_await checkpoint();
        }
      });
    co_return;
  }));
  loop.unwatch_fd(st);
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_TRUE(o.has_value());
  EXPECT_GE(st.seen_after, 0);
  EXPECT_LE(st.seen_after, 64) << "tasks that ran after the write before the loop saw it";
}

// (review B1) Tearing down a deadlocked tree: a destructor cancels a scope
// whose body is still suspended elsewhere in the tree. The body goes while
// the frame that owns the scope (and the local the body writes to) exists.
TEST(event_loop, a_deadlocked_tree_is_torn_down_in_order_when_destructors_cancel) {
  event never1;
  event never2;
  cancel_scope* scope_ptr = nullptr;
  struct cancel_on_exit {
    cancel_scope** s;
    ~cancel_on_exit() {
      if (*s != nullptr) (*s)->cancel();
    }
  };
  struct writes_to {
    std::string* log;
    ~writes_to() { *log += ", worker gone"; }
  };
  std::string seen;
  virtual_loop loop;
  EXPECT_THROW(loop.run(with_task_group([&](task_group& g) -> task<void> {
    g.spawn([&]() -> task<void> {  // deleted first by the teardown
      cancel_on_exit c{&scope_ptr};
      co_await never1.wait();
    });
    g.spawn([&]() -> task<void> {
      std::string log = "parent local";
      cancel_scope s;
      scope_ptr = &s;
      co_await s.run([](event& e, std::string& l) -> task<void> {
        writes_to w{&l};
        co_await e.wait();
      }(never2, log));
      seen = log;  // not reached: the scope is cancelled by teardown
    });
    co_return;
  })),
               deadlock_error);
  EXPECT_EQ(seen, "");
}

}  // namespace
}  // namespace grove::testing
