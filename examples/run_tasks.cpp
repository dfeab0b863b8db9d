// The seed's test harness in C++: N jobs, at most LIMIT at once. Each job
// prints when it starts, sleeps, prints when it finishes; its cleanup awaits
// a sleep and prints "Cleaned up.". Press Ctrl+C while it runs: running jobs
// clean up, queued jobs never start, a report accounts for every job, and
// the process exits killed by SIGINT (status 130), as Unix expects.
//
//   run_tasks 20 4                     # 20 jobs, 4 at a time
//   run_tasks 6 2 --fail 3 --json      # job 3 throws; JSON report
//
// The other flags exist so that tests/test_examples_signals.cpp can drive
// every shutdown scenario with real signals (see --help).
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
  int work_ms = 1000;
  int cleanup_ms = 200;
  std::set<int> fail;
  std::set<int> fail_cleanup;
  int hold_ms = 0;
  int debounce_ms = 50;
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

grove::task<void> work(int id, std::chrono::milliseconds d, bool fail) {
  resources r{id};
  say("Task " + std::to_string(id) + " started");
  co_await grove::sleep(d);
  if (fail) throw std::runtime_error("task " + std::to_string(id) + " failed");
  say("Task " + std::to_string(id) + " finished");
}

grove::task<void> cleanup(int id, std::chrono::milliseconds d, bool fail) {
  say("Task " + std::to_string(id) + ": cleaning up");
  co_await grove::sleep(d);  // runs shielded: a first Ctrl+C does not stop it
  if (fail) throw std::runtime_error("cleanup of task " + std::to_string(id) + " failed");
  say("Task " + std::to_string(id) + ": Cleaned up.");
}

// Waits `d` ignoring a graceful shutdown (so a test can signal the program
// before any job has started).
grove::task<void> hold(std::chrono::milliseconds d) {
  say("Holding");
  grove::cancel_scope s;
  s.set_shield(true);
  s.set_deadline(grove::now() + d);
  co_await s.run([]() -> grove::task<void> { co_await grove::sleep(std::chrono::hours(24)); }());
}

grove::task<int> main_task(const settings& s) {
  std::vector<grove::job> jobs;
  for (int id = 0; id < s.jobs; ++id) {
    jobs.push_back([id, &s]() {
      return grove::finally(work(id, std::chrono::milliseconds(s.work_ms), s.fail.count(id) > 0),
                            [id, &s] {
                              return cleanup(id, std::chrono::milliseconds(s.cleanup_ms),
                                             s.fail_cleanup.count(id) > 0);
                            });
    });
  }
  if (s.hold_ms > 0) co_await hold(std::chrono::milliseconds(s.hold_ms));
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
  app.add_option("--work-ms", s.work_ms, "how long each job sleeps")->check(CLI::Range(0, big));
  app.add_option("--cleanup-ms", s.cleanup_ms, "how long each cleanup sleeps")
      ->check(CLI::Range(0, big));
  app.add_option("--fail", s.fail, "ids of jobs that throw");
  app.add_option("--fail-cleanup", s.fail_cleanup, "ids of jobs whose cleanup throws");
  app.add_option("--hold-ms", s.hold_ms, "before starting, wait this long ignoring Ctrl+C")
      ->check(CLI::Range(0, big));
  app.add_option("--debounce-ms", s.debounce_ms, "signals closer than this count once")
      ->check(CLI::Range(0, big));
  app.add_flag("--json", s.json, "print the report as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as is customary
  }

  grove::run_options options;
  options.debounce = std::chrono::milliseconds(s.debounce_ms);
  options.on_signal = [](int, int stage) {
    if (stage == 1) std::fputs("stopping: cleaning up; press Ctrl+C again to force\n", stderr);
    if (stage == 2) std::fputs("forcing shutdown\n", stderr);
  };
  return grove::run([&] { return main_task(s); }, options);
}
