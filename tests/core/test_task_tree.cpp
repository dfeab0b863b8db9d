// Task names, states and the task-tree dump; the leak report of a
// primitive destroyed while tasks wait on it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <grove/debug.hpp>
#include <sstream>
#include <string>

#include "core/leak_scenarios.hpp"
#include "virtual_time.hpp"

namespace grove::testing {
namespace {

task<void> sleeper(duration d) {
  co_await sleep(d);
}

TEST(task_tree, the_dump_of_a_known_tree) {
  std::string dump;
  auto o = run_virtual([&]() -> task<void> {
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn(named("fetch", sleeper), 10s);
      g.spawn(sleeper, 20s);  // unnamed
      g.spawn(named("guarded", [] {
        return finally(named("work", sleeper(30s)), [] { return sleeper(1s); });
      }));
      co_await sleep(1500ms);
      g.spawn(named("late", sleeper), 1s);  // spawned, not started yet
      std::ostringstream out;
      dump_task_tree(out);
      dump = out.str();
      g.cancel();
    });
  }());
  ASSERT_TRUE(o.cancelled() || o.has_value());
  EXPECT_EQ(dump,
            "grove: task tree at 1.500 s on the loop clock:\n"
            "  main: suspended\n"
            "    task: suspended\n"  // with_task_group's own frame
            "      task_group (4 children)\n"
            "        body: running (or ready to run, or in a wait that cannot be cancelled)\n"
            "        child \"fetch\": suspended for 1.500 s\n"
            "          sleep until 10000000 us on the loop clock\n"
            "        child: suspended\n"
            "          sleep until 20000000 us on the loop clock\n"
            "        child \"guarded\": suspended for 1.500 s\n"
            "          finally (body)\n"
            "            body \"work\": suspended for 1.500 s\n"
            "              sleep until 30000000 us on the loop clock\n"
            "        child \"late\": not started\n");
}

TEST(task_tree, states_show_cancelling_and_the_cleanup) {
  std::string dump;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope scope;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await scope.run(finally(sleeper(1h), named("tidy", [] { return sleeper(2s); })));
      });
      g.spawn([&]() -> task<void> {
        co_await sleep(1s);
        scope.cancel();  // the cleanup starts, shielded
        co_await sleep(500ms);
        dump = task_tree_text();
      });
      co_return;
    });
  }());
  ASSERT_TRUE(o.has_value());
  for (const char* part :
       {"finally (running cleanup, shielded)",
        "cleanup \"tidy\": cancelling, suspended for 0.500 s", "sleep until 3000000 us"})
    EXPECT_NE(dump.find(part), std::string::npos) << "missing '" << part << "' in:\n" << dump;
}

TEST(task_tree, states_are_queryable_from_the_tree) {
  std::vector<task_info> tree;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope scope;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn(named("fetch", sleeper), 10s);
      g.spawn([&]() -> task<void> {
        co_await scope.run(finally(sleeper(1h), named("tidy", [] { return sleeper(2s); })));
      });
      co_await sleep(1s);
      scope.cancel();
      g.spawn(named("late", sleeper), 1s);
      co_await sleep(250ms);
      g.spawn(named("later", sleeper), 1s);
      tree = task_tree();
      g.cancel();
    });
  }());
  ASSERT_TRUE(o.has_value() || o.cancelled());
  auto find = [&](const std::string& name) -> const task_info* {
    for (const auto& t : tree)
      if (t.name == name) return &t;
    return nullptr;
  };
  ASSERT_FALSE(tree.empty());
  EXPECT_EQ(tree[0].role, "main");
  EXPECT_EQ(tree[0].depth, 0);
  EXPECT_EQ(tree[0].status, task_status::suspended);
  const task_info* fetch = find("fetch");
  ASSERT_NE(fetch, nullptr);
  EXPECT_EQ(fetch->role, "child");
  EXPECT_EQ(fetch->status, task_status::suspended);
  EXPECT_FALSE(fetch->cancelling);
  EXPECT_EQ(fetch->waits_on, "sleep until 10000000 us on the loop clock");
  EXPECT_EQ(fetch->for_how_long, std::chrono::nanoseconds(1250ms));
  const task_info* tidy = find("tidy");
  ASSERT_NE(tidy, nullptr);
  EXPECT_EQ(tidy->role, "cleanup");
  EXPECT_EQ(tidy->status, task_status::suspended);
  EXPECT_TRUE(tidy->cancelling);  // its scope was cancelled; the cleanup is shielded
  EXPECT_EQ(tidy->for_how_long, std::chrono::nanoseconds(250ms));
  const task_info* late = find("late");
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(late->status, task_status::suspended);  // it started in the batch after its spawn
  const task_info* later = find("later");
  ASSERT_NE(later, nullptr);
  EXPECT_EQ(later->status, task_status::not_started);
  EXPECT_TRUE(later->waits_on.empty());
  int bodies = 0;
  for (const auto& t : tree)
    if (t.role == "body" && t.status == task_status::running) ++bodies;
  EXPECT_EQ(bodies, 1);  // the group's body, calling task_tree()
}

TEST(task_tree, outside_a_loop_the_dump_says_so) {
  EXPECT_TRUE(task_tree().empty());
  EXPECT_EQ(task_tree_text(), "grove: no loop is running on this thread: no task tree to show\n");
}

TEST(task_tree, a_name_goes_with_its_frame) {
  std::size_t before = detail::traced_frames();
  {
    task<void> t = named("never run", sleeper(1s));
    EXPECT_EQ(detail::traced_frames(), before + 1);
  }  // destroyed unrun
  EXPECT_EQ(detail::traced_frames(), before);
  auto o = run_virtual([]() -> task<void> {
    co_await named("run", sleeper(1s));
    co_await with_task_group([](task_group& g) -> task<void> {
      for (int i = 0; i < 10; ++i) g.spawn(named("child", sleeper), 1s);
      co_return;
    });
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(detail::traced_frames(), before);
}

TEST(task_tree, a_trace_file_name_may_hold_the_process_id) {
  std::string pid = std::to_string(::getpid());
  EXPECT_EQ(detail::trace_path("/tmp/run-%p.json"), "/tmp/run-" + pid + ".json");
  EXPECT_EQ(detail::trace_path("plain.json"), "plain.json");
  EXPECT_EQ(detail::trace_path("100%"), "100%");
}

#ifndef NDEBUG
TEST(leak_report_death, a_semaphore_destroyed_while_tasks_wait_names_them) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(run_virtual(semaphore_deleted_under_a_waiter(nullptr)),
               "grove: leak: a grove::semaphore was destroyed while 1 task waits on it"
               "(.|\n)*child \"stuck waiter\": suspended(.|\n)*semaphore acquire");
}

// grove's own runners cannot leave a task behind; using a runner's API by
// hand can: this task starts outside the tree, sleeps, and the root ends.
TEST(leak_report_death, a_task_still_pending_when_its_loop_stops_is_reported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto escape = [] {
    virtual_loop loop;
    loop.run([]() -> task<void> {
      auto h = named("escapee", sleeper(1h)).release();
      h.promise().attach(nullptr, nullptr);  // as a runner would, but nobody waits for it
      h.resume();                            // it runs to its sleep and stays there
      co_return;
    }());
  };
  EXPECT_DEATH(escape(),
               "grove: leak: 1 task that ran on this loop is still pending as it stops"
               "(.|\n)*Named: \"escapee\"");
}

TEST(leak_report_death, an_event_destroyed_while_tasks_wait_names_them) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      run_virtual(event_deleted_under_two_waiters()),
      "grove::event was destroyed while 2 tasks wait on it(.|\n)*\"first\"(.|\n)*\"second\"");
}
#endif

}  // namespace
}  // namespace grove::testing
