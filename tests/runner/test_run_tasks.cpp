// run_tasks: the seed's runner, on the virtual clock (signals: test_run_tasks_signals).
#include <grove/grove.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

// The seed's job: prints when it starts, sleeps, prints when it finishes;
// its cleanup awaits a sleep and records "cleaned".
struct harness {
  journal j;
  int running = 0;
  int peak = 0;

  job make(int id, duration work, bool fail = false) {
    return [this, id, work, fail]() -> task<void> {
      return finally(body(id, work, fail), [this, id]() -> task<void> { return cleanup(id); });
    };
  }
  task<void> body(int id, duration work, bool fail) {
    peak = std::max(peak, ++running);
    j("start " + std::to_string(id) + " at " + std::to_string(ms()));
    co_await sleep(work);
    if (fail) throw std::runtime_error("job " + std::to_string(id) + " failed");
    j("finish " + std::to_string(id));
  }
  task<void> cleanup(int id) {
    co_await sleep(100ms);  // the slot is still held here
    j("cleaned " + std::to_string(id));
    --running;
  }
};

TEST(run_tasks, all_complete_and_the_limit_holds_through_cleanup) {
  harness h;
  std::vector<job> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(h.make(i, 1s));
  auto o = run_virtual(run_tasks(std::move(jobs), 2));
  const run_report& r = o.value();
  EXPECT_EQ(r.size(), 5u);
  EXPECT_EQ(r.count(job_state::completed), 5u);
  EXPECT_FALSE(r.interrupted());
  EXPECT_EQ(h.peak, 2);
  // Jobs 2 and 3 start only after 0 and 1 finished *and* cleaned up.
  EXPECT_EQ(r.jobs()[2].started, r.jobs()[0].ended);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*r.jobs()[2].started -
                                                                  *r.jobs()[0].started)
                .count(),
            1100);
  EXPECT_EQ(r.ended_at() - r.started_at(), 3300ms);
}

TEST(run_tasks, cancel_with_queued_jobs_running_ones_clean_up_queued_never_start) {
  harness h;
  std::vector<job> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(h.make(i, 10s));
  auto o = run_virtual([&]() -> task<run_report> {
    cancel_scope scope;
    scope.set_deadline(now() + 1s);  // "Ctrl+C" while jobs 0-1 run, 2-5 queued
    std::optional<run_report> report;
    co_await scope.run([&]() -> task<void> {
      report = co_await run_tasks(std::move(jobs), 2);
      h.j("report delivered at " + std::to_string(ms()));
      co_await checkpoint();  // the caller unwinds here
      h.j("never");
    }());
    EXPECT_TRUE(scope.cancelled_caught());
    co_return std::move(*report);
  }());
  const run_report& r = o.value();
  EXPECT_EQ(r.count(job_state::cancelled), 2u);
  EXPECT_EQ(r.count(job_state::not_started), 4u);
  EXPECT_TRUE(r.interrupted());
  EXPECT_EQ(h.j.lines, (std::vector<std::string>{"start 0 at 0", "start 1 at 0", "cleaned 0",
                                                 "cleaned 1", "report delivered at 1100"}));
  EXPECT_FALSE(r.jobs()[2].started.has_value());
}

TEST(run_tasks, cancel_when_fewer_jobs_than_slots) {
  harness h;
  std::vector<job> jobs;
  for (int i = 0; i < 2; ++i) jobs.push_back(h.make(i, 10s));
  auto o = run_virtual([&]() -> task<std::optional<run_report>> {
    std::optional<run_report> report;
    co_await move_on_after(
        1s, [&]() -> task<void> { report = co_await run_tasks(std::move(jobs), 8); }());
    co_return report;
  }());
  const run_report& r = *o.value();
  EXPECT_EQ(r.count(job_state::cancelled), 2u);
  EXPECT_EQ(h.j.lines.size(), 4u);  // two starts, two cleanups, nothing else
}

TEST(run_tasks, cancel_before_any_job_starts) {
  harness h;
  std::vector<job> jobs;
  for (int i = 0; i < 3; ++i) jobs.push_back(h.make(i, 1s));
  std::optional<run_report> report;
  auto o = run_virtual(with_task_group([&](task_group& g) -> task<void> {
    // The first child starts run_tasks (its workers are scheduled for the
    // next batch); the second, in the same batch, cancels everything.
    g.spawn([&]() -> task<void> { report = co_await run_tasks(std::move(jobs), 2); });
    g.spawn([&]() -> task<void> {
      g.cancel();
      co_return;
    });
    co_return;
  }));
  EXPECT_TRUE(o.has_value());
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->count(job_state::not_started), 3u);
  EXPECT_TRUE(report->interrupted());
  EXPECT_TRUE(h.j.lines.empty());
}

TEST(run_tasks, a_caller_already_cancelled_still_gets_a_report_of_every_job) {
  harness h;
  std::vector<job> jobs;
  for (int i = 0; i < 3; ++i) jobs.push_back(h.make(i, 1s));
  std::optional<run_report> report;
  auto o = run_virtual([&]() -> task<void> {
    cancel_scope scope;
    scope.cancel();
    co_await scope.run([&]() -> task<void> {
      report = co_await run_tasks(std::move(jobs), 2);
      h.j("report received; unwinds at the next suspension point");
      co_await checkpoint();
    }());
  }());
  EXPECT_TRUE(o.has_value());
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->count(job_state::not_started), 3u);
  EXPECT_EQ(h.j.lines,
            std::vector<std::string>{"report received; unwinds at the next suspension point"});
}

TEST(run_tasks, a_failing_job_is_recorded_and_the_others_go_on) {
  harness h;
  std::vector<job> jobs;
  jobs.push_back(h.make(0, 1s, /*fail=*/true));
  jobs.push_back(h.make(1, 2s));
  jobs.push_back(h.make(2, 1s));
  auto o = run_virtual(run_tasks(std::move(jobs), 2));
  const run_report& r = o.value();
  EXPECT_EQ(r.count(job_state::failed), 1u);
  EXPECT_EQ(r.count(job_state::completed), 2u);
  EXPECT_THROW(std::rethrow_exception(r.jobs()[0].error), std::runtime_error);
  EXPECT_NE(r.summary().find("job 0 failed: std::runtime_error: job 0 failed"), std::string::npos);
}

TEST(run_tasks, all_jobs_failing_every_error_reported) {
  std::vector<job> jobs;
  for (int i = 0; i < 4; ++i)
    jobs.push_back([i]() -> task<void> {
      return [](int id) -> task<void> {
        co_await sleep(1s);
        throw std::runtime_error("fail " + std::to_string(id));
      }(i);
    });
  auto o = run_virtual(run_tasks(std::move(jobs), 3));
  const run_report& r = o.value();
  EXPECT_EQ(r.count(job_state::failed), 4u);
  for (int i = 0; i < 4; ++i)
    EXPECT_NE(r.summary().find("fail " + std::to_string(i)), std::string::npos);
}

TEST(run_tasks, fail_fast_cancels_the_rest) {
  harness h;
  std::vector<job> jobs;
  jobs.push_back(h.make(0, 1s, /*fail=*/true));
  jobs.push_back(h.make(1, 10s));
  jobs.push_back(h.make(2, 10s));
  run_tasks_options opts;
  opts.fail_fast = true;
  auto o = run_virtual(run_tasks(std::move(jobs), 2, opts));
  const run_report& r = o.value();
  EXPECT_EQ(r.jobs()[0].state, job_state::failed);
  EXPECT_EQ(r.jobs()[1].state, job_state::cancelled);
  EXPECT_EQ(r.jobs()[2].state, job_state::not_started);
  EXPECT_EQ(r.ended_at() - r.started_at(), 1200ms);  // 0's cleanup, then 1's cleanup
}

TEST(run_tasks, a_job_that_throws_while_others_are_cancelled_keeps_its_error) {
  std::vector<job> jobs;
  jobs.push_back([]() -> task<void> {
    return finally([]() -> task<void> { co_await sleep(10s); }(),
                   []() -> task<void> {
                     co_await sleep(1ms);
                     throw std::runtime_error("cleanup failed");
                   });
  });
  jobs.push_back([]() -> task<void> { return []() -> task<void> { co_await sleep(10s); }(); });
  auto o = run_virtual([&]() -> task<run_report> {
    std::optional<run_report> report;
    co_await move_on_after(
        1s, [&]() -> task<void> { report = co_await run_tasks(std::move(jobs), 2); }());
    co_return std::move(*report);
  }());
  const run_report& r = o.value();
  EXPECT_EQ(r.jobs()[0].state, job_state::failed);
  EXPECT_EQ(r.jobs()[1].state, job_state::cancelled);
}

TEST(run_tasks, edge_cases_empty_zero_negative) {
  auto o = run_virtual(run_tasks({}, 4));
  EXPECT_EQ(o.value().size(), 0u);
  // Without suspending: a sibling scheduled first has not run yet after it.
  auto order = run_virtual([]() -> task<std::string> {
    std::string seen;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        seen += "sibling;";
        co_return;
      });
      (void)co_await run_tasks({}, 1);
      seen += "report;";
    });
    co_return seen;
  }());
  EXPECT_EQ(order.value(), "report;sibling;");
  EXPECT_THROW((void)run_tasks({}, 0), std::invalid_argument);
  EXPECT_THROW((void)run_tasks({}, -3), std::invalid_argument);
  try {
    (void)run_tasks({}, 0);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "grove::run_tasks: max_concurrent must be at least 1, got 0");
  }
}

TEST(run_tasks, an_empty_job_function_is_a_failed_job_not_a_crash) {
  std::vector<job> jobs(1);
  auto o = run_virtual(run_tasks(std::move(jobs), 1));
  EXPECT_EQ(o.value().jobs()[0].state, job_state::failed);
}

TEST(run_tasks, progress_callback_and_json) {
  std::vector<std::size_t> done;
  std::vector<job> jobs;
  for (int i = 0; i < 3; ++i)
    jobs.push_back([i]() -> task<void> {
      return [](int s) -> task<void> { co_await sleep(std::chrono::seconds(3 - s)); }(i);
    });
  run_tasks_options opts;
  opts.on_job_done = [&](std::size_t i, const job_result& r) {
    EXPECT_EQ(r.state, job_state::completed);
    done.push_back(i);
  };
  auto o = run_virtual(run_tasks(std::move(jobs), 3, opts));
  EXPECT_EQ(done, (std::vector<std::size_t>{2, 1, 0}));
  auto doc = nlohmann::json::parse(o.value().to_json());
  EXPECT_EQ(doc["jobs"].size(), 3u);
  EXPECT_EQ(doc["jobs"][0]["state"], "completed");
  EXPECT_DOUBLE_EQ(doc["jobs"][0]["end_ms"].get<double>(), 3000.0);
  EXPECT_EQ(doc["counts"]["completed"], 3);
  EXPECT_EQ(doc["interrupted"], false);
}

TEST(run_tasks, a_hundred_thousand_jobs_cancel_in_linear_time) {
  // Correctness at scale (speed lives in bench/): 100k jobs, 10k slots.
  int cleaned = 0;
  std::vector<job> jobs;
  for (int i = 0; i < 100000; ++i)
    jobs.push_back([&cleaned]() -> task<void> {
      return finally([]() -> task<void> { co_await sleep(1h); }(),
                     [&cleaned]() -> task<void> {
                       ++cleaned;
                       co_return;
                     });
    });
  auto o = run_virtual([&]() -> task<run_report> {
    std::optional<run_report> report;
    co_await move_on_after(
        1s, [&]() -> task<void> { report = co_await run_tasks(std::move(jobs), 10000); }());
    co_return std::move(*report);
  }());
  EXPECT_EQ(cleaned, 10000);
  EXPECT_EQ(o.value().count(job_state::cancelled), 10000u);
  EXPECT_EQ(o.value().count(job_state::not_started), 90000u);
}

}  // namespace
}  // namespace grove::testing
