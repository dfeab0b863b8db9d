// grove_stress: runs random, seed-deterministic grove programs and checks
// invariants (see README.md). Exits 1 on the first failing seed, printing the
// command that re-runs it alone.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "stress.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GROVE_STRESS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(GROVE_STRESS_ASAN)
#define GROVE_STRESS_ASAN 1
#endif
#ifdef GROVE_STRESS_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace grove::stress {
namespace {

struct options {
  mode m = mode::virtual_time;
  std::optional<std::uint64_t> seed;  // --seed: one seed
  std::optional<long> seeds;          // --seeds: how many
  std::uint64_t start = 0;
  long ops = 1'000'000;
  long timeout_s = 0;  // per seed; 0: the mode's default
  bool verbose = false;
};

// Read by the watchdog thread and the sanitizer's death callback: which seed
// is running, so that a crash or a hang still names it.
std::atomic<long long> last_seed_started{-1};
std::atomic<long long> seed_started_ms{0};
const char* program_name = "grove_stress";
mode run_mode = mode::virtual_time;
long run_ops = 0;

long long steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string rerun_command(long long seed) {
  std::string cmd = std::string(program_name) + " --mode " + to_string(run_mode) + " --seed " +
                    std::to_string(seed);
  if (run_mode == mode::semaphore) cmd += " --ops " + std::to_string(run_ops);
  return cmd;
}

void report_failure(long long seed, const std::string& what) {
  std::printf("FAILED seed %lld (mode %s): %s\n", seed, to_string(run_mode), what.c_str());
  std::printf("re-run it alone: %s   (add --verbose for a trace)\n", rerun_command(seed).c_str());
  std::fflush(stdout);
}

#ifdef GROVE_STRESS_ASAN
void on_sanitizer_death() {
  long long seed = last_seed_started.load();
  std::fprintf(stderr, "\ngrove_stress: died in seed %lld (mode %s); re-run it alone: %s\n", seed,
               to_string(run_mode), rerun_command(seed).c_str());
}
#endif

// A seed that runs longer than the limit hangs (or livelocks): fail it.
void watchdog(std::stop_token stop, long limit_s) {
  while (!stop.stop_requested()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    long long seed = last_seed_started.load();
    if (seed < 0) continue;
    if (steady_ms() - seed_started_ms.load() > limit_s * 1000) {
      report_failure(
          seed, "no hang: the seed still runs after " + std::to_string(limit_s) + " s (watchdog)");
      std::_Exit(1);
    }
  }
}

[[noreturn]] void usage(const char* error) {
  if (error != nullptr) std::fprintf(stderr, "grove_stress: %s\n", error);
  std::fprintf(stderr,
               "usage: grove_stress [--mode virtual|real|semaphore] [--seed N | --seeds N]\n"
               "                    [--start N] [--ops N] [--timeout SECONDS] [--verbose]\n"
               "  --seed N     run seed N alone (with --verbose: the program and a trace)\n"
               "  --seeds N    run seeds start .. start+N-1 (default: 1000 virtual, 100 real,\n"
               "               1 semaphore)\n"
               "  --ops N      operations per seed in semaphore mode (default 1000000)\n"
               "env: GROVE_STRESS_TRACE_SEEDS=1 prints 'running seed N' to stderr before each\n"
               "     seed\n");
  std::exit(2);
}

long long parse_number(const char* name, const char* text) {
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 0)
    usage((std::string(name) + " needs a non-negative number").c_str());
  return v;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    auto eq = arg.find('=');
    bool inline_value = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto next = [&]() -> const char* {
      if (inline_value) return argv[i] + eq + 1;
      if (i + 1 >= argc) usage((arg + " needs a value").c_str());
      return argv[++i];
    };
    if (arg == "--mode") {
      std::string m = next();
      if (m == "virtual")
        o.m = mode::virtual_time;
      else if (m == "real")
        o.m = mode::real;
      else if (m == "semaphore")
        o.m = mode::semaphore;
      else
        usage("--mode is virtual, real or semaphore");
    } else if (arg == "--seed") {
      o.seed = static_cast<std::uint64_t>(parse_number("--seed", next()));
    } else if (arg == "--seeds") {
      o.seeds = static_cast<long>(parse_number("--seeds", next()));
    } else if (arg == "--start") {
      o.start = static_cast<std::uint64_t>(parse_number("--start", next()));
    } else if (arg == "--ops") {
      o.ops = static_cast<long>(parse_number("--ops", next()));
    } else if (arg == "--timeout") {
      o.timeout_s = static_cast<long>(parse_number("--timeout", next()));
    } else if (arg == "--verbose" || arg == "-v") {
      o.verbose = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(nullptr);
    } else {
      usage(("unknown argument " + arg).c_str());
    }
  }
  if (o.seed && o.seeds) usage("--seed and --seeds exclude each other");
  return o;
}

std::optional<std::string> run_seed(const options& o, std::uint64_t seed) {
  if (o.m == mode::semaphore) return run_semaphore(seed, o.ops, o.verbose);
  program p = generate(seed);
  if (o.verbose) std::fputs(describe(p).c_str(), stdout);
  settings s;
  s.m = o.m;
  s.verbose = o.verbose;
  // Real mode: ticks of 50 us keep a seed within a few milliseconds.
  if (o.m == mode::real)
    s.tick = std::chrono::microseconds(50);
  else
    s.tick = std::chrono::milliseconds(1);
  return run_program(p, s);
}

int run(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  options o = parse(argc, argv);
  program_name = argv[0];
  run_mode = o.m;
  run_ops = o.ops;
#ifdef GROVE_STRESS_ASAN
  __sanitizer_set_death_callback(on_sanitizer_death);
#endif
  long default_seeds = o.m == mode::virtual_time ? 1000 : o.m == mode::real ? 100 : 1;
  std::uint64_t first = o.seed ? *o.seed : o.start;
  long count = o.seed ? 1 : o.seeds.value_or(default_seeds);
  long limit = o.timeout_s > 0 ? o.timeout_s : o.m == mode::semaphore ? 60 + o.ops / 5000 : 30;
  std::jthread dog(watchdog, limit);
  const char* env = std::getenv("GROVE_STRESS_TRACE_SEEDS");
  bool trace_seeds = env != nullptr && std::strcmp(env, "1") == 0;
  long passed = 0;
  for (long k = 0; k < count; ++k) {
    auto seed = static_cast<long long>(first + static_cast<std::uint64_t>(k));
    if (trace_seeds) std::fprintf(stderr, "running seed %lld\n", seed);
    if (o.verbose) std::fprintf(stderr, "seed %lld\n", seed);
    seed_started_ms.store(steady_ms());
    last_seed_started.store(seed);
    std::optional<std::string> failure = run_seed(o, static_cast<std::uint64_t>(seed));
    last_seed_started.store(-1);
    if (failure) {
      report_failure(seed, *failure);
      std::printf("%ld passed, 1 failed\n", passed);
      return 1;
    }
    ++passed;
  }
  std::printf("%ld passed, 0 failed\n", passed);
  return 0;
}

}  // namespace
}  // namespace grove::stress

int main(int argc, char** argv) {
  return grove::stress::run(argc, argv);
}
