// The seed's test harness in C++: N jobs, at most LIMIT at once. Each job
// prints when it starts, sleeps a second, prints when it finishes; its
// cleanup awaits a sleep and prints "Cleaned up.". Press Ctrl+C while it
// runs: running jobs clean up, queued jobs never start, a report accounts for
// every job, and the process exits killed by SIGINT (status 130), as Unix
// expects.
//
//   run_tasks 20 4                     # 20 jobs, 4 at a time
//   run_tasks 6 2 --fail 3 --json      # job 3 throws; JSON report
#include <CLI/CLI.hpp>
#include <cstdio>
#include <grove/grove.hpp>
#include <set>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

struct settings {
  int jobs = 10;
  int limit = 3;
  std::set<int> fail;
  bool json = false;
};

// One line, flushed at once: the output may be a pipe read line by line.
void say(const std::string& line) {
  std::fputs((line + '\n').c_str(), stdout);
  std::fflush(stdout);
}

// Synchronous cleanup: runs whenever the job's frame goes, even on a forced
// shutdown that cuts the async cleanup short.
struct resources {
  int id;
  ~resources() { say("Task " + std::to_string(id) + ": resources released"); }
};

grove::task<void> work(int id, bool fail) {
  resources r{id};
  say("Task " + std::to_string(id) + " started");
  co_await grove::sleep(1s);
  if (fail) throw std::runtime_error("task " + std::to_string(id) + " failed");
  say("Task " + std::to_string(id) + " finished");
}

grove::task<void> cleanup(int id) {
  say("Task " + std::to_string(id) + ": cleaning up");
  co_await grove::sleep(200ms);  // runs shielded: a first Ctrl+C does not stop it
  say("Task " + std::to_string(id) + ": Cleaned up.");
}

grove::task<int> main_task(const settings& s) {
  std::vector<grove::job> jobs;
  for (int id = 0; id < s.jobs; ++id) {
    bool fail = s.fail.count(id) > 0;
    jobs.push_back(
        [id, fail] { return grove::finally(work(id, fail), [id] { return cleanup(id); }); });
  }
  grove::run_report report = co_await grove::run_tasks(std::move(jobs), s.limit);
  std::string text = s.json ? report.to_json() : report.summary();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  say(text);
  co_return report.count(grove::job_state::failed) > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"Run jobs concurrently with a limit; Ctrl+C shuts down cleanly."};
  constexpr int big = 100'000'000;
  app.add_option("jobs", s.jobs, "number of jobs")->check(CLI::Range(0, big));
  app.add_option("limit", s.limit, "at most this many at once")->check(CLI::Range(1, big));
  app.add_option("--fail", s.fail, "ids of jobs that throw");
  app.add_flag("--json", s.json, "print the report as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as is customary
  }

  grove::run_options options;
  options.on_signal = [](int, int stage) {
    if (stage == 1) std::fputs("stopping: cleaning up; press Ctrl+C again to force\n", stderr);
    if (stage == 2) std::fputs("forcing shutdown\n", stderr);
  };
  return grove::run([&] { return main_task(s); }, options);
}
