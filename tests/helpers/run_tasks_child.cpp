// grove::run_tasks under grove::run, for tests/runner/test_examples_signals.cpp to
// drive through every shutdown scenario with real signals. It prints the
// lines examples/run_tasks.cpp prints, so the same parser reads both, and
// adds the knobs a test needs (the example keeps only what a user needs):
//
//   run_tasks_child JOBS LIMIT [flags]
//   --work-ms N          each job sleeps N ms (default 1000)
//   --cleanup-ms N       each cleanup sleeps N ms (default 200)
//   --fail ID...         these jobs throw after their sleep
//   --fail-cleanup ID... these jobs' cleanups throw after their sleep
//   --hold-ms N          before starting the jobs, print "Holding" and wait
//                        N ms, ignoring a graceful shutdown
//   --debounce-ms N      run_options::debounce
//
// stdout: "Task <id> started|finished|: cleaning up|: Cleaned up.|:
// resources released", flushed line by line, then the report's summary.
// stderr: the stage messages of run_options::on_signal, as the example's.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <grove/grove.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct config {
  int jobs = 0;
  int limit = 1;
  long work_ms = 1000;
  long cleanup_ms = 200;
  std::set<int> fail;
  std::set<int> fail_cleanup;
  long hold_ms = 0;
  long debounce_ms = -1;
} cfg;

grove::duration ms(long n) {
  return std::chrono::milliseconds(n);
}

void say(const std::string& line) {
  std::fputs((line + '\n').c_str(), stdout);
  std::fflush(stdout);
}

std::string task(int id, const char* what) {
  return "Task " + std::to_string(id) + what;
}

// Runs when the job's frame goes, even when a forced shutdown cuts the
// asynchronous cleanup short.
struct resources {
  int id;
  ~resources() { say(task(id, ": resources released")); }
};

grove::task<void> work(int id) {
  resources r{id};
  say(task(id, " started"));
  co_await grove::sleep(ms(cfg.work_ms));
  if (cfg.fail.count(id) > 0) throw std::runtime_error("task " + std::to_string(id) + " failed");
  say(task(id, " finished"));
}

grove::task<void> cleanup(int id) {
  say(task(id, ": cleaning up"));
  co_await grove::sleep(ms(cfg.cleanup_ms));
  if (cfg.fail_cleanup.count(id) > 0)
    throw std::runtime_error("cleanup of task " + std::to_string(id) + " failed");
  say(task(id, ": Cleaned up."));
}

// Shielded from a graceful shutdown, so that a test can signal before any
// job has started.
grove::task<void> hold() {
  say("Holding");
  co_await grove::shield(grove::sleep(ms(cfg.hold_ms)));
}

grove::task<int> main_task() {
  std::vector<grove::job> jobs;
  for (int id = 0; id < cfg.jobs; ++id)
    jobs.push_back([id] { return grove::finally(work(id), [id] { return cleanup(id); }); });
  if (cfg.hold_ms > 0) co_await hold();
  grove::run_report report = co_await grove::run_tasks(std::move(jobs), cfg.limit);
  std::string text = report.summary();
  if (!text.empty() && text.back() == '\n') text.pop_back();
  say(text);
  co_return report.count(grove::job_state::failed) > 0 ? 1 : 0;
}

long number(const char* s) {
  return std::strtol(s, nullptr, 10);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    auto ids = [&](std::set<int>& into) {
      while (i + 1 < argc && argv[i + 1][0] != '-')
        into.insert(static_cast<int>(number(argv[++i])));
    };
    if (a == "--work-ms" && has_value)
      cfg.work_ms = number(argv[++i]);
    else if (a == "--cleanup-ms" && has_value)
      cfg.cleanup_ms = number(argv[++i]);
    else if (a == "--fail")
      ids(cfg.fail);
    else if (a == "--fail-cleanup")
      ids(cfg.fail_cleanup);
    else if (a == "--hold-ms" && has_value)
      cfg.hold_ms = number(argv[++i]);
    else if (a == "--debounce-ms" && has_value)
      cfg.debounce_ms = number(argv[++i]);
    else if (a[0] != '-' && positional.size() < 2)
      positional.push_back(number(argv[i]));
    else {
      std::fprintf(stderr, "run_tasks_child: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (positional.size() != 2) {
    std::fprintf(stderr, "usage: run_tasks_child JOBS LIMIT [flags]\n");
    return 2;
  }
  cfg.jobs = static_cast<int>(positional[0]);
  cfg.limit = static_cast<int>(positional[1]);

  grove::run_options options;
  if (cfg.debounce_ms >= 0) options.debounce = ms(cfg.debounce_ms);
  options.on_signal = [](int, int stage) {
    if (stage == 1) std::fputs("stopping: cleaning up; press Ctrl+C again to force\n", stderr);
    if (stage == 2) std::fputs("forcing shutdown\n", stderr);
  };
  return grove::run(main_task, std::move(options));
}
