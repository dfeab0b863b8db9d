// grove's side of the benchmark workloads W1-W4, W2s and W7 (definitions:
// bench/README.md). Same command line and JSON output as the anchors in
// bench/anchors/: the best run (value), every run (runs), cold (the first run
// in this process) and warm (the best later one), and getrusage's page faults
// (per run and for the process) and peak RSS.
//
//   grove_bench --workload w1 --n 1000000 --repeat 5
//   grove_bench --workload w2s --n 1000000 --c 1000 --repeat 5
//   grove_bench --workload w3 --n 100000 --c 10000     # dies by SIGINT, as grove::run does
//   grove_bench --workload w7 --n 10000 --repeat 5     # raises RLIMIT_NOFILE (see w7)
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <grove/grove.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// --debug-log / --trace: what debug mode costs when it is on (off by default).
grove::debug_options bench_debug;

struct result {
  double value = 0;
  std::string check = "ok";
  nlohmann::json extra = nlohmann::json::object();
};

double ns_per(steady::duration d, long n) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()) /
         static_cast<double>(n);
}

double ms(steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// W1: spawn N no-op tasks into one group, join.
result w1(long n) {
  long counter = 0;
  steady::time_point t0, t1;
  grove::event_loop loop;
  loop.set_debug(bench_debug);
  auto o = loop.run([&]() -> grove::task<void> {
    t0 = steady::now();
    co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
      for (long i = 0; i < n; ++i)
        g.spawn(
            [](long* c) -> grove::task<void> {
              ++*c;
              co_return;
            },
            &counter);
      co_return;
    });
    t1 = steady::now();
  }());
  o.value();
  result r;
  r.value = ns_per(t1 - t0, n);
  if (counter != n) r.check = "counter " + std::to_string(counter) + " != " + std::to_string(n);
  return r;
}

// W2 and W2s: ns per job, checked: every job ran, and C of them at once.
result limited_result(steady::duration took, long n, long c, long counter, long peak) {
  result r;
  r.value = ns_per(took, n);
  if (counter != n) r.check = "counter " + std::to_string(counter);
  if (peak != std::min(n, c)) r.check = "peak " + std::to_string(peak);
  return r;
}

// W2: N jobs through run_tasks with C slots; each job yields once.
result w2(long n, long c) {
  long counter = 0, running = 0, peak = 0;
  std::vector<grove::job> jobs;
  jobs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    jobs.emplace_back([&]() -> grove::task<void> {
      return [](long* cnt, long* run, long* pk) -> grove::task<void> {
        *pk = std::max(*pk, ++*run);
        co_await grove::checkpoint();
        ++*cnt;
        --*run;
      }(&counter, &running, &peak);
    });
  steady::time_point t0, t1;
  grove::event_loop loop;
  loop.set_debug(bench_debug);
  auto o = loop.run([&]() -> grove::task<void> {
    t0 = steady::now();
    grove::run_report rep = co_await grove::run_tasks(std::move(jobs), static_cast<int>(c));
    t1 = steady::now();
  }());
  o.value();
  return limited_result(t1 - t0, n, c, counter, peak);
}

// W2s: N jobs spawned into one task group, each taking one of C permits of a
// grove::semaphore (lock(): the permit goes with the guard) and yielding once
// while it holds it: the shape of the anchors' W2 (TaskGroup + Semaphore).
result w2s(long n, long c) {
  long counter = 0, running = 0, peak = 0;
  steady::time_point t0, t1;
  grove::event_loop loop;
  loop.set_debug(bench_debug);
  auto o = loop.run([&]() -> grove::task<void> {
    grove::semaphore sem(static_cast<std::size_t>(c));
    t0 = steady::now();
    co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
      for (long i = 0; i < n; ++i)
        g.spawn(
            [](grove::semaphore* s, long* cnt, long* run, long* pk) -> grove::task<void> {
              auto permit = co_await s->lock();
              *pk = std::max(*pk, ++*run);
              co_await grove::checkpoint();
              ++*cnt;
              --*run;
            },
            &sem, &counter, &running, &peak);
      co_return;
    });
    t1 = steady::now();
  }());
  o.value();
  return limited_result(t1 - t0, n, c, counter, peak);
}

// W3: N jobs, C slots, each sleeping an hour with a cleanup that counts
// itself; when all C run, the process sends itself SIGINT. Measures from the
// signal (as the loop sees it) to every job accounted for. Prints its JSON
// line itself: grove::run then re-raises SIGINT and the process dies by it.
[[noreturn]] void w3(long n, long c, const std::function<void(const result&)>& print) {
  long started = 0, cleaned = 0;
  steady::time_point t_kill, t_signal, t_done;
  std::vector<grove::job> jobs;
  jobs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i)
    jobs.emplace_back([&]() -> grove::task<void> {
      if (++started == c) {
        t_kill = steady::now();
        ::kill(::getpid(), SIGINT);
      }
      return grove::finally([]() -> grove::task<void> { co_await grove::sleep(1h); }(),
                            [&]() -> grove::task<void> {
                              ++cleaned;
                              co_return;
                            });
    });
  grove::run_options opts;
  opts.debug = bench_debug;
  opts.on_signal = [&](int, int stage) {
    if (stage == 1) t_signal = steady::now();
  };
  grove::run(
      [&]() -> grove::task<void> {
        grove::run_report rep = co_await grove::run_tasks(std::move(jobs), static_cast<int>(c));
        t_done = steady::now();
        result r;
        r.value = ms(t_done - t_signal);
        r.extra["from_kill_ms"] = ms(t_done - t_kill);
        long not_started = static_cast<long>(rep.count(grove::job_state::not_started));
        if (started != c || cleaned != c || not_started != n - c ||
            static_cast<long>(rep.count(grove::job_state::cancelled)) != c)
          r.check = "started " + std::to_string(started) + " cleaned " + std::to_string(cleaned) +
                    " not_started " + std::to_string(not_started);
        print(r);
      },
      opts);
  std::fputs("grove_bench: w3 expected to end by SIGINT\n", stderr);
  std::exit(3);
}

// This process's page faults so far and its peak resident set (getrusage).
struct faults {
  long minflt = 0, majflt = 0, maxrss_kb = 0;
};

faults usage() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return {ru.ru_minflt, ru.ru_majflt, ru.ru_maxrss};
}

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// W4: resident memory per task with N tasks blocked in sleep.
result w4(long n) {
  long rss_before = 0, rss_after = 0;
  grove::event_loop loop;
  loop.set_debug(bench_debug);
  auto o = loop.run([&]() -> grove::task<void> {
    rss_before = resident_bytes();
    co_await grove::move_on_after(
        1h, grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
          for (long i = 0; i < n; ++i)
            g.spawn([]() -> grove::task<void> { co_await grove::sleep(1h); });
          co_await grove::checkpoint();  // every child has started and now sleeps
          rss_after = resident_bytes();
          g.cancel();
        }));
  }());
  o.value();
  result r;
  r.value = static_cast<double>(rss_after - rss_before) / static_cast<double>(n);
  return r;
}

// W7 needs 2 descriptors per task (a socket pair) and a few more. Raises the
// soft RLIMIT_NOFILE to the hard limit; if the hard limit is still too low,
// tries to raise it too (works only with CAP_SYS_RESOURCE). Returns "ok" or
// why not; `info` records the limits before and after.
std::string raise_nofile(rlim_t needed, nlohmann::json& info) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return "getrlimit failed";
  info = {{"needed", needed}, {"soft_before", rl.rlim_cur}, {"hard_before", rl.rlim_max}};
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < needed) {
    rlimit want{needed, std::max(needed, rl.rlim_max)};
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) info["raised_hard"] = true;
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  info["soft"] = rl.rlim_cur;
  info["hard"] = rl.rlim_max;
  if (rl.rlim_cur < needed)
    return "RLIMIT_NOFILE: hard limit " + std::to_string(rl.rlim_max) + " < " +
           std::to_string(needed) +
           " descriptors needed (raising it needs CAP_SYS_RESOURCE: ulimit -Hn or prlimit as root)";
  return "ok";
}

struct w7_counts {
  long entered = 0;   // reached read_some
  long returned = 0;  // read_some returned (must stay 0: no byte is ever sent)
  long unwound = 0;   // frames destroyed
};

// Counts its coroutine's frame going, however it goes.
struct unwind_counter {
  long* n;
  ~unwind_counter() { ++*n; }
};

// W7: N tasks in one group, each blocked in read_some on its own socket pair
// (nothing is ever written). Measures from g.cancel() to the group having
// returned, i.e. every task unwound. The sockets outlive the group: closing
// them is not timed.
result w7(long n) {
  result r;
  std::vector<grove::stream> readers;
  std::vector<grove::unique_fd> writers;  // the other ends, kept open and silent
  readers.reserve(static_cast<std::size_t>(n));
  writers.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
      r.check = "socketpair #" + std::to_string(i) + ": " +
                std::error_code(errno, std::generic_category()).message();
      return r;
    }
    readers.emplace_back(grove::unique_fd(sv[0]));
    writers.emplace_back(sv[1]);
  }
  w7_counts cnt;
  steady::time_point t0, t1, t_cancelled;
  {
    grove::event_loop loop;  // goes before the sockets: their close is untimed
    loop.set_debug(bench_debug);
    auto o = loop.run([&]() -> grove::task<void> {
      co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
        for (long i = 0; i < n; ++i)
          g.spawn(
              [](grove::stream* s, w7_counts* c) -> grove::task<void> {
                unwind_counter guard{&c->unwound};
                std::array<std::byte, 64> buf;
                ++c->entered;
                co_await s->read_some(buf);
                ++c->returned;
              },
              &readers[static_cast<std::size_t>(i)], &cnt);
        // Every child runs to its wait before the body runs again; the sleep
        // lets the loop drain the registrations' first epoll events (the
        // sockets are writable) so that none is pending when the clock starts.
        for (int k = 0; k < 100 && cnt.entered < n; ++k) co_await grove::checkpoint();
        co_await grove::sleep(20ms);
        t0 = steady::now();
        g.cancel();
        t_cancelled = steady::now();
      });
      t1 = steady::now();
    }());
    o.value();
  }
  r.value = ms(t1 - t0);
  r.extra["cancel_call_ms"] = ms(t_cancelled - t0);
  if (cnt.entered != n || cnt.returned != 0 || cnt.unwound != n)
    r.check = "entered " + std::to_string(cnt.entered) + " returned " +
              std::to_string(cnt.returned) + " unwound " + std::to_string(cnt.unwound) + " (want " +
              std::to_string(n) + ", 0, " + std::to_string(n) + ")";
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string workload;
  long n = 0, c = 0;
  int repeat = 1;
  CLI::App app{"grove benchmark workloads (see bench/README.md)"};
  app.add_option("--workload", workload)
      ->required()
      ->check(CLI::IsMember({"w1", "w2", "w2s", "w3", "w4", "w7"}));
  app.add_option("--n", n)->required()->check(CLI::Range(1L, 100'000'000L));
  app.add_option("--c", c, "slots (w2, w2s: default 1000; w3: required)")
      ->check(CLI::Range(1L, 100'000'000L));
  app.add_option("--repeat", repeat, "runs; the best is reported (w3: 1)")
      ->check(CLI::Range(1, 100));
  bool debug_log = false;
  app.add_flag("--debug-log", debug_log, "debug mode's event log on (written to /dev/null)");
  app.add_option("--trace", bench_debug.trace_file, "debug mode's trace file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (debug_log) {
    bench_debug.log = true;
    bench_debug.log_file = std::fopen("/dev/null", "w");
  }
  if ((workload == "w2" || workload == "w2s") && c == 0) c = 1000;
  if (workload == "w3" && (c == 0 || c > n)) {
    std::fputs("grove_bench: w3 needs --c with 1 <= c <= n\n", stderr);
    return 2;
  }
  const char* units[] = {"ns/task", "ns/job", "ms", "bytes/task", "", "", "ms"};
  const char* unit = units[workload[1] - '1'];
  const faults start = usage();
  nlohmann::json nofile;
  if (workload == "w7") {
    std::string why = raise_nofile(static_cast<rlim_t>(2 * n + 64), nofile);
    if (why != "ok") {
      std::fprintf(stderr, "grove_bench: w7: %s\n", why.c_str());
      nlohmann::json j{{"impl", "grove"}, {"workload", workload}, {"n", n},
                       {"c", nullptr},    {"value", nullptr},     {"unit", unit},
                       {"check", why},    {"nofile", nofile}};
      std::puts(j.dump().c_str());
      return 1;
    }
  }
  // Page faults per run (the first is the cold run's), and the process's own.
  std::vector<long> runs_minflt, runs_majflt;
  auto print = [&](const std::vector<double>& runs, const result& best) {
    const faults end = usage();
    nlohmann::json j{{"impl", "grove"},
                     {"workload", workload},
                     {"n", n},
                     {"c", c ? nlohmann::json(c) : nlohmann::json()},
                     {"value", best.value},
                     {"unit", unit},
                     {"check", best.check},
                     {"runs", runs}};
    j.update(best.extra);
    // Cold: the first run in this fresh process. Warm: the best later one.
    j["cold"] = runs.front();
    j["warm"] = runs.size() > 1 ? nlohmann::json(*std::min_element(runs.begin() + 1, runs.end()))
                                : nlohmann::json();
    j["runs_minflt"] = runs_minflt;
    j["runs_majflt"] = runs_majflt;
    j["minflt"] = end.minflt;  // the whole process, start-up included
    j["majflt"] = end.majflt;
    j["maxrss_kb"] = end.maxrss_kb;
    if (workload == "w7") j["nofile"] = nofile;
    std::puts(j.dump().c_str());
    std::fflush(stdout);
  };
  if (workload == "w3")
    w3(n, c, [&](const result& r) {
      const faults now = usage();
      runs_minflt.push_back(now.minflt - start.minflt);
      runs_majflt.push_back(now.majflt - start.majflt);
      print({r.value}, r);
    });

  std::vector<double> runs;
  result best;
  for (int i = 0; i < repeat; ++i) {
    const faults before = usage();
    result r = workload == "w1"    ? w1(n)
               : workload == "w2"  ? w2(n, c)
               : workload == "w2s" ? w2s(n, c)
               : workload == "w7"  ? w7(n)
                                   : w4(n);
    const faults after = usage();
    runs_minflt.push_back(after.minflt - before.minflt);
    runs_majflt.push_back(after.majflt - before.majflt);
    runs.push_back(r.value);
    if (i == 0 || r.value < best.value || r.check != "ok") best = r;
    if (r.check != "ok") break;
  }
  print(runs, best);
  return best.check == "ok" ? 0 : 1;
}
