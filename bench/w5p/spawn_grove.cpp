// W5p, grove's side: spawn and wait N processes of PROGRAM, P at a time, from
// a grove event loop (bench/README.md; bench/w5p/README.md).
//
//   spawn_grove [--n 2000] [--parallel 2] [--program /usr/bin/true]
//
// One task group holds P worker tasks; each takes the next job number from a
// shared counter, spawns PROGRAM (grove::process::spawn, default options: the
// parent's environment and stdio, PATH lookup only if PROGRAM has no '/'),
// co_awaits wait(), checks the exit status is 0, and takes the next, until N
// children have been reaped. Times from just before the group opens to just
// after it joined, and prints one JSON line, the same shape as spawn_floor's:
//   {"impl":"grove","workload":"w5p","n":..,"parallel":..,"program":..,
//    "total_ms":..,"value":<µs per spawn>,"unit":"us/spawn","cpu_ms":..,"check":"ok"}
// cpu_ms: this process's own CPU time (user + system, getrusage), its whole
// life so far, start-up included; the children's is not in it.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <grove/grove.hpp>
#include <string>
#include <utility>

namespace {

using steady = std::chrono::steady_clock;

// What the workers share; lives outside the group (with_task_group's rule).
struct jobs {
  const char* program = nullptr;
  long n = 0;
  long taken = 0;   // jobs handed to a worker
  long ok = 0;      // children reaped with exit status 0
  long failed = 0;  // children reaped with any other status
  std::string first_failure;
};

grove::task<void> worker(jobs* jp) {
  jobs& j = *jp;
  while (j.taken < j.n) {
    ++j.taken;
    grove::process_options o;
    o.argv.emplace_back(j.program);
    grove::process child = grove::process::spawn(std::move(o));
    grove::exit_status st = co_await child.wait();
    if (st.ok()) {
      ++j.ok;
    } else if (j.failed++ == 0) {
      j.first_failure = "pid " + std::to_string(child.pid()) + " " + st.describe();
    }
  }
}

// JSON string contents: the program path and error messages are quoted.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + '"';
}

double own_cpu_ms() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

bool parse_long(const char* s, long& out) {
  char* end = nullptr;
  out = std::strtol(s, &end, 10);
  return *s != '\0' && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
  long n = 2000, parallel = 2;
  const char* program = "/usr/bin/true";
  for (int i = 1; i < argc; ++i) {
    bool has_value = i + 1 < argc;
    bool good = false;
    if (std::strcmp(argv[i], "--n") == 0 && has_value)
      good = parse_long(argv[++i], n) && n >= 1;
    else if (std::strcmp(argv[i], "--parallel") == 0 && has_value)
      good = parse_long(argv[++i], parallel) && parallel >= 1;
    else if (std::strcmp(argv[i], "--program") == 0 && has_value)
      good = (program = argv[++i])[0] != '\0';
    if (!good) {
      std::fputs("usage: spawn_grove [--n N] [--parallel P] [--program PATH]\n", stderr);
      return 2;
    }
  }

  jobs j;
  j.program = program;
  j.n = n;
  steady::time_point t0, t1;
  std::string check = "ok";
  try {
    grove::event_loop loop;
    grove::outcome<void> o = loop.run([&]() -> grove::task<void> {
      t0 = steady::now();
      co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
        for (long w = 0; w < parallel; ++w) g.spawn(worker, &j);
        co_return;
      });
      t1 = steady::now();
    }());
    o.value();
  } catch (const std::exception& e) {
    check = std::string("error: ") + e.what();
  }
  if (check == "ok" && j.failed != 0)
    check = std::to_string(j.failed) + " children did not exit with 0; first: " + j.first_failure;
  else if (check == "ok" && j.ok != n)
    check = "reaped " + std::to_string(j.ok) + " of " + std::to_string(n);

  bool good = check == "ok";
  double total_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  char total[32] = "null", per[32] = "null";
  if (good) {
    std::snprintf(total, sizeof total, "%.3f", total_ms);
    std::snprintf(per, sizeof per, "%.3f", total_ms * 1000.0 / static_cast<double>(n));
  }
  std::printf(
      "{\"impl\": \"grove\", \"workload\": \"w5p\", \"n\": %ld, \"parallel\": %ld, "
      "\"program\": %s, \"total_ms\": %s, \"value\": %s, \"unit\": \"us/spawn\", "
      "\"cpu_ms\": %.3f, \"check\": %s}\n",
      n, parallel, quoted(program).c_str(), total, per, own_cpu_ms(), quoted(check).c_str());
  return good ? 0 : 1;
}
