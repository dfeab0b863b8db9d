// Uses an installed grove: grove::run, a task group and run_tasks (whose JSON
// report is compiled into libgrove_runner). Prints what happened; exits 0.
#include <chrono>
#include <cstdio>
#include <grove/grove.hpp>
#include <vector>

grove::task<void> nap(int ms, int* done) {
  co_await grove::sleep(std::chrono::milliseconds(ms));
  ++*done;
}

grove::task<int> consumer_main() {
  int spawned_done = 0;
  auto body = [&spawned_done](grove::task_group& g) -> grove::task<void> {
    for (int ms = 1; ms <= 3; ++ms) g.spawn(nap, ms, &spawned_done);
    co_return;
  };
  co_await grove::with_task_group(std::move(body));

  int jobs_done = 0;
  std::vector<grove::job> jobs;
  for (int ms = 1; ms <= 4; ++ms) jobs.push_back([ms, &jobs_done] { return nap(ms, &jobs_done); });
  grove::run_report report = co_await grove::run_tasks(std::move(jobs), 2);

  std::printf("grove consumer: task group: %d of 3 children done\n", spawned_done);
  std::printf("grove consumer: run_tasks: %s", report.summary().c_str());
  std::printf("grove consumer: %s\n", report.to_json().c_str());
  bool ok = spawned_done == 3 && jobs_done == 4 && report.count(grove::job_state::completed) == 4;
  co_return ok ? 0 : 1;
}

int main() {
  return grove::run(consumer_main);
}
