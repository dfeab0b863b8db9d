// A grove::run program whose tasks wait on child processes, for
// tests/process/test_process_under_run.cpp to signal and watch.
//
//   run_children --mark NAME=VALUE [--children N] [--ignore-term]
//                [--kill-grace-ms N] [--grace-ms N] [--debounce-ms N] [--log FILE]
//
// Starts N shells (default 3), each with two background `sleep 1000`
// grandchildren, all carrying NAME=VALUE in their environment (the test
// finds leftovers by it). With --ignore-term the shells and their children
// ignore SIGTERM; otherwise, with --log, each shell appends "terminated" to
// FILE from its SIGTERM handler (so a test can tell a graceful stop from a
// SIGKILL). Each shell prints "started" once its grandchildren are
// forked (on the inherited stdout); the program prints "ready" (flushed) once
// every wait has begun, and
// "signal <signo> stage <n>" (flushed) for each counted signal.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grove/grove.hpp>
#include <string>
#include <vector>

extern char** environ;

int main(int argc, char** argv) {
  std::string mark, log;
  int children = 3;
  bool ignore_term = false;
  long kill_grace_ms = 5000;
  grove::run_options ro;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--mark")
      mark = next();
    else if (a == "--children")
      children = std::atoi(next());
    else if (a == "--ignore-term")
      ignore_term = true;
    else if (a == "--log")
      log = next();
    else if (a == "--kill-grace-ms")
      kill_grace_ms = std::atol(next());
    else if (a == "--grace-ms")
      ro.grace = std::chrono::milliseconds(std::atol(next()));
    else if (a == "--debounce-ms")
      ro.debounce = std::chrono::milliseconds(std::atol(next()));
    else {
      std::fprintf(stderr, "run_children: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  ro.on_signal = [](int signo, int stage) {
    std::printf("signal %d stage %d\n", signo, stage);
    std::fflush(stdout);
  };
  return grove::run(
      [&]() -> grove::task<int> {
        std::vector<std::string> env;
        for (char** e = environ; *e; ++e) env.emplace_back(*e);
        env.push_back(mark);
        std::string script = ignore_term   ? "trap '' TERM; "
                             : log.empty() ? ""
                                           : "trap 'echo terminated >> " + log + "; exit 1' TERM; ";
        script += "sleep 1000 & sleep 1000 & echo started; wait";
        std::vector<grove::process> procs;
        for (int i = 0; i < children; ++i) {
          grove::process_options o;
          o.argv = {"/bin/sh", "-c", script};
          o.env = env;
          o.kill_grace = std::chrono::milliseconds(kill_grace_ms);
          procs.push_back(grove::process::spawn(std::move(o)));
        }
        co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
          for (auto& p : procs) g.spawn([&p]() -> grove::task<void> { co_await p.wait(); });
          co_await grove::checkpoint();  // every wait has begun
          std::printf("ready\n");
          std::fflush(stdout);
        });
        co_return 0;
      },
      ro);
}
