// DESIGN.md §2: the public names users and outside tests rely on, each used
// once through <grove/grove.hpp>. This file failing to compile is the test.
#include <gtest/gtest.h>

#include <grove/grove.hpp>

namespace {

using namespace std::chrono_literals;

grove::task<int> every_name() {
  co_await grove::sleep(1ms);
  co_await grove::sleep_until(grove::now() + 1ms);
  co_await grove::checkpoint();
  int v = co_await grove::finally([]() -> grove::task<int> { co_return 1; }(),
                                  []() -> grove::task<void> { co_return; });
  v += co_await grove::shield([]() -> grove::task<int> { co_return 1; }());

  grove::cancel_scope scope;
  scope.set_deadline(grove::now() + 1s);
  scope.set_shield(false);
  (void)scope.deadline();
  (void)scope.shield();
  std::optional<int> r = co_await scope.run([]() -> grove::task<int> { co_return 1; }());
  (void)scope.cancelled_caught();
  scope.cancel();

  std::optional<int> a =
      co_await grove::move_on_after(1s, []() -> grove::task<int> { co_return 1; }());
  bool b =
      co_await grove::move_on_at(grove::now() + 1s, []() -> grove::task<void> { co_return; }());
  v += co_await grove::fail_after(1s, []() -> grove::task<int> { co_return 1; }());
  v += co_await grove::fail_at(grove::now() + 1s, []() -> grove::task<int> { co_return 1; }());

  co_await grove::with_task_group([](grove::task_group& g) -> grove::task<void> {
    g.spawn([](int) -> grove::task<void> { co_return; }, 1);
    (void)g.size();
    g.cancel();
    co_return;
  });

  std::vector<grove::task<int>> ts;
  ts.push_back([]() -> grove::task<int> { co_return 1; }());
  std::vector<grove::outcome<int>> outs = co_await grove::gather(std::move(ts));
  grove::outcome<int>& o = outs.at(0);
  (void)o.has_value();
  (void)o.has_error();
  (void)o.error();
  (void)o.cancelled();
  v += o.value();

  grove::semaphore sem(1);
  co_await sem.acquire();
  sem.release();
  {
    auto guard = co_await sem.lock();
  }
  grove::event ev;
  ev.set();
  co_await ev.wait();

  v += co_await grove::to_thread([](std::stop_token) { return 1; });

  std::vector<std::function<grove::task<void>()>> jobs;
  jobs.push_back([]() -> grove::task<void> { co_return; });
  grove::run_tasks_options opts;
  opts.fail_fast = false;
  grove::run_report rep = co_await grove::run_tasks(std::move(jobs), 1, opts);
  const grove::job_result& jr = rep.jobs().at(0);
  (void)jr.error;
  (void)jr.started;
  (void)jr.ended;
  (void)rep.count(grove::job_state::completed);
  (void)rep.count(grove::job_state::failed);
  (void)rep.count(grove::job_state::cancelled);
  (void)rep.count(grove::job_state::not_started);
  (void)rep.interrupted();
  (void)rep.size();

  try {
    throw grove::exception_group({std::make_exception_ptr(grove::timeout_error())});
  } catch (const grove::exception_group& g) {
    v += static_cast<int>(g.exceptions().size());
  }
  co_return v + (r ? 1 : 0) + (a ? 1 : 0) + (b ? 1 : 0) + (jr.state == grove::job_state::completed);
}

TEST(public_names, every_design_name_compiles_from_grove_hpp_and_runs) {
  grove::run_options options;
  options.signals = {SIGINT, SIGTERM};
  options.grace = 10s;
  options.on_signal = [](int, int) {};
  int code = grove::run([] { return every_name(); }, options);
  EXPECT_EQ(code, 11);  // 7 from values, 4 from the flags
}

}  // namespace
