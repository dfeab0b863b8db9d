#include <cstdio>
#include <grove/grove.hpp>

using namespace std::chrono_literals;

grove::task<void> work(int id) {
  std::printf("job %d working\n", id);
  co_await grove::sleep(1s);  // a cancellable wait
}

grove::task<void> cleanup(int id) {
  co_await grove::sleep(100ms);  // still runs after Ctrl+C: cleanups are shielded
  std::printf("job %d cleaned up\n", id);
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line, even into a pipe
  return grove::run([]() -> grove::task<int> {
    std::vector<grove::job> jobs;
    for (int id = 0; id < 10; ++id)
      jobs.push_back([id] { return grove::finally(work(id), [id] { return cleanup(id); }); });
    grove::run_report report = co_await grove::run_tasks(std::move(jobs), 3);
    std::fputs(report.summary().c_str(), stdout);  // every job accounted for, even after Ctrl+C
    co_return report.count(grove::job_state::failed) > 0 ? 1 : 0;
  });
}
