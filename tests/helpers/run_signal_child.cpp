// A program built on grove::run, for tests/runner/test_run_signals.cpp to start,
// signal and watch. It prints "ready" (flushed) when main has started, then
// runs `finally(body, cleanup)`, the two tasks named "body" and "cleanup".
//
// Output, on stdout:
//   ready                     flushed: the test waits for it before signalling
//   signal <signo> stage <n>  written at once by run_options::on_signal
//   cleanup started           written at once when the cleanup begins
//   anything else             printf'd without flushing: it reaches the pipe
//                             only if grove flushes stdio before re-raising
//
// Flags:
//   --body-ms N      the body sleeps N ms, then prints "body done" (default 60000)
//   --busy           the body loops on checkpoint() forever (a ready-queue burst)
//   --storm N        the body runs N tasks that loop on checkpoint(); once they
//                    ran 4 N + 17 steps one sends SIGINT to the process, and the
//                    on_signal line adds "after <D> steps": the tasks that ran
//                    between the kill and the loop reading the signal
//   --cleanup-ms N   the cleanup sleeps N ms (default 200)
//   --stubborn       the cleanup's sleep cannot be cancelled, even when forced
//   --lines N        the cleanup prints N numbered lines (unflushed)
//   --exit N         main returns N (default 0)
//   --void           main is a task<void>
//   --throw MSG      the body throws std::runtime_error(MSG) after its sleep
//   --throw-group    the body throws an exception_group (with a nested group)
//   --grace-ms N     run_options::grace
//   --debounce-ms N  run_options::debounce
//   --raise-self SIG main raises SIG at once and returns (no finally)
//   --nested         main calls grove::run (an error)
//   --unsynced-cout  std::ios::sync_with_stdio(false): std::cout keeps its
//                    own buffer, which fflush(nullptr) does not reach
//   --no-report      run_options::report_forced = false
//   --trace FILE     run_options::debug.trace_file
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grove/grove.hpp>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

struct config {
  long body_ms = 60000;
  bool busy = false;
  long storm = 0;
  long cleanup_ms = 200;
  bool stubborn = false;
  int lines = 0;
  int exit_code = 0;
  bool void_main = false;
  const char* throw_msg = nullptr;
  bool throw_group = false;
  long grace_ms = -1;
  long debounce_ms = -1;
  int raise_self = 0;
  bool nested = false;
  bool unsynced_cout = false;
  bool no_report = false;
  const char* trace = nullptr;
} cfg;

grove::duration ms(long n) {
  return std::chrono::milliseconds(n);
}

// Unbuffered: reaches the pipe at once (for the test to synchronise on).
void say_now(const char* line) {
  std::string s = std::string(line) + "\n";
  [[maybe_unused]] auto r = ::write(STDOUT_FILENO, s.data(), s.size());
}

// Buffered: stdout is a pipe, so this stays in the stdio buffer until flushed.
void say(const char* line) {
  std::printf("%s\n", line);
}

struct raii_line {
  const char* text;
  explicit raii_line(const char* t) : text(t) {}
  raii_line(const raii_line&) = delete;
  raii_line& operator=(const raii_line&) = delete;
  ~raii_line() { say(text); }
};

// A sleep with no await_cancel: not even forced cancellation interrupts it
// (the task notices cancellation only at its next suspension point).
struct stubborn_sleep {
  grove::duration d;
  grove::detail::timer_node timer;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    auto* loop = grove::event_loop::current();
    timer.fire().target = h;
    loop->add_timer(timer, loop->now() + d);
  }
  void await_resume() const noexcept {}
};

long storm_steps = 0;
long steps_at_kill = -1;

grove::task<void> storm_task() {
  for (;;) {
    if (++storm_steps == 4 * cfg.storm + 17) {  // mid-batch
      steps_at_kill = storm_steps;
      ::kill(::getpid(), SIGINT);
    }
    co_await grove::checkpoint();
  }
}

grove::task<void> body() {
  if (cfg.busy) {
    for (;;) co_await grove::checkpoint();
  }
  if (cfg.storm > 0) {
    co_await grove::with_task_group([](grove::task_group& g) -> grove::task<void> {
      for (long i = 0; i < cfg.storm; ++i) g.spawn(storm_task);
      co_return;
    });
  }
  co_await grove::sleep(ms(cfg.body_ms));
  say("body done");
  if (cfg.throw_msg != nullptr) throw std::runtime_error(cfg.throw_msg);
  if (cfg.throw_group) {
    throw grove::exception_group({
        std::make_exception_ptr(std::runtime_error("first failure")),
        std::make_exception_ptr(std::logic_error("second failure")),
        std::make_exception_ptr(
            grove::exception_group({std::make_exception_ptr(std::out_of_range("nested failure"))})),
    });
  }
}

grove::task<void> cleanup() {
  raii_line guard{"cleanup raii"};
  say_now("cleanup started");
  say("cleanup buffered");
  if (cfg.stubborn)
    co_await stubborn_sleep{ms(cfg.cleanup_ms), {}};
  else
    co_await grove::sleep(ms(cfg.cleanup_ms));
  for (int i = 0; i < cfg.lines; ++i) std::printf("line %d\n", i);
  std::cout << "cleaned up\n";  // C++ stream: also flushed before re-raise
}

grove::task<int> main_int() {
  raii_line guard{"main raii"};
  std::printf("ready\n");
  std::fflush(stdout);
  if (cfg.raise_self != 0) {
    ::raise(cfg.raise_self);  // blocked by run: stays pending
    say("raised");
    co_return cfg.exit_code;
  }
  if (cfg.nested) {
    grove::run([]() -> grove::task<int> { co_return 0; });
    say("nested run returned");
  }
  co_await grove::finally(grove::named("body", body()), grove::named("cleanup", cleanup));
  say("main done");
  co_return cfg.exit_code;
}

grove::task<void> main_void() {
  raii_line guard{"main raii"};
  std::printf("ready\n");
  std::fflush(stdout);
  co_await grove::finally(grove::named("body", body()), grove::named("cleanup", cleanup));
  say("main done");
}

long number(const char* s) {
  return std::strtol(s, nullptr, 10);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--body-ms" && has_value)
      cfg.body_ms = number(argv[++i]);
    else if (a == "--busy")
      cfg.busy = true;
    else if (a == "--storm" && has_value)
      cfg.storm = number(argv[++i]);
    else if (a == "--cleanup-ms" && has_value)
      cfg.cleanup_ms = number(argv[++i]);
    else if (a == "--stubborn")
      cfg.stubborn = true;
    else if (a == "--lines" && has_value)
      cfg.lines = static_cast<int>(number(argv[++i]));
    else if (a == "--exit" && has_value)
      cfg.exit_code = static_cast<int>(number(argv[++i]));
    else if (a == "--void")
      cfg.void_main = true;
    else if (a == "--throw" && has_value)
      cfg.throw_msg = argv[++i];
    else if (a == "--throw-group")
      cfg.throw_group = true;
    else if (a == "--grace-ms" && has_value)
      cfg.grace_ms = number(argv[++i]);
    else if (a == "--debounce-ms" && has_value)
      cfg.debounce_ms = number(argv[++i]);
    else if (a == "--raise-self" && has_value)
      cfg.raise_self = static_cast<int>(number(argv[++i]));
    else if (a == "--nested")
      cfg.nested = true;
    else if (a == "--unsynced-cout")
      cfg.unsynced_cout = true;
    else if (a == "--no-report")
      cfg.no_report = true;
    else if (a == "--trace" && has_value)
      cfg.trace = argv[++i];
    else {
      std::fprintf(stderr, "run_signal_child: unknown argument %s\n", argv[i]);
      return 2;
    }
  }

  if (cfg.unsynced_cout) std::ios_base::sync_with_stdio(false);

  grove::run_options options;
  if (cfg.grace_ms >= 0) options.grace = ms(cfg.grace_ms);
  if (cfg.debounce_ms >= 0) options.debounce = ms(cfg.debounce_ms);
  if (cfg.no_report) options.report_forced = false;
  if (cfg.trace != nullptr) options.debug.trace_file = cfg.trace;
  options.on_signal = [](int signo, int stage) {
    char line[96];
    if (steps_at_kill >= 0)
      std::snprintf(line, sizeof line, "signal %d stage %d after %ld steps", signo, stage,
                    storm_steps - steps_at_kill);
    else
      std::snprintf(line, sizeof line, "signal %d stage %d", signo, stage);
    say_now(line);
  };
  if (cfg.void_main) return grove::run(main_void, std::move(options));
  return grove::run(main_int, std::move(options));
}
