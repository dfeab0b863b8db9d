// grove::run: exit codes, error reports, and staged shutdown under real
// signals sent to real child processes (tests/helpers/run_signal_child.cpp).
//
// Synchronisation is by pipe only: a test reads the child's stdout until the
// line it needs ("ready", "cleanup started", "signal 2 stage 1"), then sends
// the next signal. Nothing sleeps. Each child runs in its own process group
// under a watchdog that SIGKILLs the group after 20 s and fails the test —
// a safety net against hangs, never a way to wait.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstring>
#include <fstream>
#include <grove/grove.hpp>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"

namespace {

using namespace grove::testing;

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

const std::string child_path = std::string(GROVE_TEST_HELPERS_DIR) + "/run_signal_child";

// ------------------------------------------------------------ child process

child_process start_child(std::vector<std::string> flags, child_options opt = {}) {
  flags.insert(flags.begin(), child_path);
  return child_process(std::move(flags), opt);
}

std::string signal_line(int signo, int stage) {
  return "signal " + std::to_string(signo) + " stage " + std::to_string(stage);
}

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

// ------------------------------------------------------------ no signal

TEST(run_signals, without_a_signal_run_returns_mains_exit_code) {
  auto c = start_child({"--body-ms", "0", "--exit", "7"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 7));
  EXPECT_TRUE(has(r, "ready"));
  EXPECT_TRUE(has(r, "body done"));
  EXPECT_TRUE(has(r, "cleaned up"));
  EXPECT_TRUE(has(r, "main done"));
  EXPECT_TRUE(has(r, "main raii"));
  EXPECT_EQ(r.err, "");
}

TEST(run_signals, a_void_main_exits_zero) {
  auto c = start_child({"--body-ms", "0", "--void"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 0));
  EXPECT_TRUE(has(r, "main done"));
}

// ------------------------------------------------------------ first signal

TEST(run_signals, sigint_runs_the_cleanup_then_dies_by_sigint) {
  auto c = start_child({});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, signal_line(SIGINT, 1)));
  EXPECT_TRUE(has(r, "cleaned up"));  // the shielded cleanup slept 200 ms and finished
  EXPECT_TRUE(has(r, "cleanup raii"));
  EXPECT_TRUE(has(r, "main raii"));   // main's frame was destroyed: RAII ran
  EXPECT_FALSE(has(r, "body done"));  // the body was cancelled
  EXPECT_FALSE(has(r, "main done"));  // main was cancelled after the cleanup
  EXPECT_EQ(r.err, "");
}

TEST(run_signals, sigterm_runs_the_cleanup_then_dies_by_sigterm) {
  auto c = start_child({});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGTERM));
  EXPECT_TRUE(has(r, signal_line(SIGTERM, 1)));
  EXPECT_TRUE(has(r, "cleaned up"));
  EXPECT_TRUE(has(r, "main raii"));
}

TEST(run_signals, a_signal_reaches_a_main_that_keeps_the_ready_queue_full) {
  auto c = start_child({"--busy"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, "cleaned up"));
}

// DESIGN §4: the loop polls the OS at least every 64 tasks however full the
// ready queue is, so a SIGINT sent in the middle of a storm of 10,000 ready
// tasks is read within one batch (counted in tasks run, not in time).
TEST(run_signals, a_signal_sent_during_a_storm_of_ready_tasks_is_read_within_a_batch) {
  auto c = start_child({"--storm", "10000"});
  ASSERT_TRUE(c.read_until_line("ready"));
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  auto at = r.out.find("signal 2 stage 1 after ");
  ASSERT_NE(at, std::string::npos) << r.out;
  long steps = std::stol(r.out.substr(at + 23));
  EXPECT_LE(steps, 64) << "tasks that ran after the kill before the loop read the signal";
}

TEST(run_signals, every_buffered_line_reaches_the_pipe_before_the_re_raise) {
  auto c = start_child({"--lines", "3000"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  std::vector<std::string> numbered;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("line ", 0) == 0) numbered.push_back(l);
  ASSERT_EQ(numbered.size(), 3000u);
  for (int i = 0; i < 3000; ++i)
    ASSERT_EQ(numbered[static_cast<std::size_t>(i)], "line " + std::to_string(i));
  EXPECT_TRUE(has(r, "cleanup buffered"));
  EXPECT_TRUE(has(r, "cleaned up"));  // written with std::cout
  EXPECT_TRUE(has(r, "main raii"));   // written by a destructor after the loop stopped
}

TEST(run_signals, cpp_streams_with_their_own_buffer_are_flushed_too) {
  // With sync_with_stdio(false) std::cout buffers on its own: fflush(nullptr)
  // alone would lose "cleaned up".
  auto c = start_child({"--unsynced-cout"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, "cleaned up"));
}

TEST(run_signals, a_signal_pending_when_main_finishes_is_re_raised_after_flushing) {
  // main raises SIGTERM (blocked, so pending) and returns at once: the loop
  // stops before it polls. run must still die by SIGTERM, after flushing.
  auto c = start_child({"--raise-self", std::to_string(SIGTERM), "--exit", "3"});
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGTERM));
  EXPECT_TRUE(has(r, "raised"));
  EXPECT_TRUE(has(r, "main raii"));
}

TEST(run_signals, as_pid1_of_a_pid_namespace_it_exits_128_plus_signo) {
  // In a container the program is often PID 1, and the kernel drops a
  // default-action signal that init sends itself: the re-raise is a no-op
  // and run falls back to exit(128 + signo), the status runtimes expect.
  child_process c({std::string(GROVE_TEST_HELPERS_DIR) + "/run_as_pid1", child_path, "--raise-self",
                   std::to_string(SIGTERM)});
  auto r = c.wait();
  if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 77)
    GTEST_SKIP() << "cannot create a PID namespace here: " << r.err;
  EXPECT_TRUE(exited_with(r, 0));
  EXPECT_NE(r.err.find("pid1: exited " + std::to_string(128 + SIGTERM)), std::string::npos)
      << r.err;
  EXPECT_TRUE(has(r, "raised"));
  EXPECT_TRUE(has(r, "main raii"));
}

TEST(run_signals, an_ignored_sigint_stays_ignored) {
  // A background job of a non-interactive shell starts with SIGINT ignored;
  // run keeps it that way and still answers SIGTERM. Signals are delivered
  // lowest number first, so a SIGINT that got through would be counted first
  // and the child would die by SIGINT.
  auto c = start_child({}, {.ignore_sigint = true});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGTERM));
  EXPECT_FALSE(has(r, signal_line(SIGINT, 1)));
  EXPECT_TRUE(has(r, signal_line(SIGTERM, 1)));
  EXPECT_TRUE(has(r, "cleaned up"));
}

// ------------------------------------------------------------ second signal, grace

TEST(run_signals, a_second_signal_forces_a_long_cleanup_but_raii_still_runs) {
  auto c = start_child({"--cleanup-ms", "10000", "--debounce-ms", "0"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line("cleanup started"));  // in its 10 s shielded sleep
  auto forced_at = steady::now();
  c.signal(SIGINT);
  auto r = c.wait();
  double took = seconds_since(forced_at);
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, signal_line(SIGINT, 1)));
  EXPECT_TRUE(has(r, signal_line(SIGINT, 2)));
  EXPECT_FALSE(has(r, "cleaned up"));   // cut short
  EXPECT_TRUE(has(r, "cleanup raii"));  // but its frame was destroyed properly
  EXPECT_TRUE(has(r, "main raii"));
  EXPECT_LT(took, 5.0) << "forced shutdown was not prompt";
  // What the shutdown was waiting for, printed before it was cut short.
  EXPECT_NE(r.err.find("a second signal (SIGINT) came; forcing shutdown"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("cleanup \"cleanup\": cancelling, suspended"), std::string::npos) << r.err;
}

TEST(run_signals, the_grace_period_running_out_forces_the_shutdown) {
  auto c = start_child({"--cleanup-ms", "10000", "--grace-ms", "300"});
  ASSERT_TRUE(c.read_until_line("ready"));
  auto sent_at = steady::now();
  c.signal(SIGTERM);
  auto r = c.wait();
  double took = seconds_since(sent_at);
  EXPECT_TRUE(killed_by(r, SIGTERM));
  EXPECT_TRUE(has(r, signal_line(SIGTERM, 1)));
  EXPECT_TRUE(has(r, signal_line(0, 2)));  // the hook's "grace ran out" call
  EXPECT_FALSE(has(r, "cleaned up"));
  EXPECT_TRUE(has(r, "cleanup raii"));
  EXPECT_TRUE(has(r, "main raii"));
  EXPECT_GE(took, 0.3);
  EXPECT_LT(took, 5.0);
  // The tasks still cleaning up when the grace ran out, and on what.
  for (const char* part :
       {"the grace period ran out; forcing shutdown", "finally (running cleanup, shielded)",
        "cleanup \"cleanup\": cancelling, suspended for 0.", "sleep until"})
    EXPECT_NE(r.err.find(part), std::string::npos) << "missing '" << part << "' in:\n" << r.err;
}

// ------------------------------------------------------------ seeing inside

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(run_signals, sigusr1_prints_the_task_tree_and_the_program_goes_on) {
  auto c = start_child({"--cleanup-ms", "1"});
  ASSERT_TRUE(c.read_until_line("ready"));
  auto dumps = [](std::size_t n) {
    return [n](const std::string& err) { return count_of(err, "sleep until") >= n; };
  };
  c.signal(SIGUSR1);
  ASSERT_TRUE(c.read_err_until(dumps(1)));
  c.signal(SIGUSR1);  // again: a dump changes nothing
  ASSERT_TRUE(c.read_err_until(dumps(2)));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, signal_line(SIGINT, 1)));  // SIGUSR1 started no stage
  EXPECT_FALSE(has(r, signal_line(SIGUSR1, 1)));
  EXPECT_TRUE(has(r, "cleaned up"));  // the shutdown went on as usual
  EXPECT_EQ(count_of(r.err, "grove: task tree at"), 2u) << r.err;
  for (const char* part :
       {"main: suspended", "finally (body)", "body \"body\": suspended for ", "sleep until"})
    EXPECT_NE(r.err.find(part), std::string::npos) << "missing '" << part << "' in:\n" << r.err;
}

TEST(run_signals, report_forced_false_prints_no_tree) {
  auto c = start_child({"--cleanup-ms", "10000", "--grace-ms", "100", "--no-report"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGTERM));
  EXPECT_EQ(r.err.find("forcing shutdown"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("task tree"), std::string::npos) << r.err;
}

TEST(run_signals, a_dump_signal_pending_as_main_ends_is_no_shutdown) {
  // main raises SIGUSR1 (blocked by run: it stays pending) and returns 3:
  // run drains it after the loop, and must not die by it.
  auto c = start_child({"--raise-self", std::to_string(SIGUSR1), "--exit", "3"});
  auto r = c.wait();
  ASSERT_TRUE(WIFEXITED(r.status)) << "status " << r.status << "\n" << r.err;
  EXPECT_EQ(WEXITSTATUS(r.status), 3);
}

TEST(run_signals, the_trace_is_written_even_when_a_third_signal_ends_the_process) {
  std::string path =
      ::testing::TempDir() + "/run_signals_trace_" + std::to_string(::getpid()) + ".json";
  std::remove(path.c_str());
  auto c =
      start_child({"--cleanup-ms", "10000", "--stubborn", "--debounce-ms", "0", "--trace", path});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGTERM);
  ASSERT_TRUE(c.read_until_line("cleanup started"));
  c.signal(SIGTERM);
  ASSERT_TRUE(c.read_until_line(signal_line(SIGTERM, 2)));
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGTERM));
  std::ifstream in(path);
  ASSERT_TRUE(in) << "no trace at " << path;
  std::stringstream text;
  text << in.rdbuf();
  std::string t = text.str();
  EXPECT_EQ(count_of(t, "\"ph\":\"b\""), count_of(t, "\"ph\":\"e\"")) << t;
  EXPECT_NE(t.find("\"name\":\"cleanup cleanup\""), std::string::npos) << t;
  EXPECT_NE(t.find("SIGTERM: shutdown stage 3"), std::string::npos) << t;
  std::remove(path.c_str());
}

TEST(run_signals, a_duplicate_within_the_debounce_window_counts_once) {
  // The window is wide (5 s) so that the test cannot race it; the duplicate
  // is sent while the shielded cleanup is running, and is a different
  // signal: any shutdown signal in the window is a duplicate.
  auto c = start_child({"--cleanup-ms", "300", "--debounce-ms", "5000"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line("cleanup started"));
  c.signal(SIGINT);
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));  // the first signal is the one re-raised
  EXPECT_TRUE(has(r, signal_line(SIGINT, 1)));
  EXPECT_FALSE(has(r, signal_line(SIGINT, 2)));
  EXPECT_FALSE(has(r, signal_line(SIGTERM, 2)));
  EXPECT_TRUE(has(r, "cleaned up"));  // still graceful
}

TEST(run_signals, the_same_duplicate_outside_the_window_forces) {
  // The control for the test above: identical, but every signal counts.
  auto c = start_child({"--cleanup-ms", "10000", "--debounce-ms", "0"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line("cleanup started"));
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, signal_line(SIGTERM, 2)));
  EXPECT_FALSE(has(r, "cleaned up"));
}

// ------------------------------------------------------------ third signal

TEST(run_signals, a_third_signal_exits_at_once_without_running_destructors) {
  // The cleanup's sleep ignores even forced cancellation, so only the third
  // signal can end the process. Debounce is off so that each signal, sent
  // as soon as the previous one was acknowledged, counts.
  auto c = start_child({"--cleanup-ms", "10000", "--stubborn", "--debounce-ms", "0"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line("cleanup started"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line(signal_line(SIGINT, 2)));
  auto third_at = steady::now();
  c.signal(SIGINT);
  auto r = c.wait();
  double took = seconds_since(third_at);
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, signal_line(SIGINT, 3)));
  EXPECT_TRUE(has(r, "cleanup buffered"));  // stdio was flushed
  EXPECT_FALSE(has(r, "cleaned up"));
  EXPECT_FALSE(has(r, "cleanup raii"));  // immediate: no destructor ran
  EXPECT_FALSE(has(r, "main raii"));
  EXPECT_LT(took, 5.0);
}

TEST(run_signals, after_the_grace_period_forced_the_next_signal_exits_at_once) {
  auto c =
      start_child({"--cleanup-ms", "10000", "--stubborn", "--grace-ms", "0", "--debounce-ms", "0"});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line(signal_line(0, 2)));  // grace 0: forced at once
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, signal_line(SIGINT, 3)));
  EXPECT_FALSE(has(r, "main raii"));
}

// ------------------------------------------------------------ errors

TEST(run_signals, an_exception_escaping_main_is_printed_and_exits_1) {
  auto c = start_child({"--body-ms", "0", "--throw", "the disk is full"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 1));
  EXPECT_TRUE(has(r, "cleaned up"));  // the cleanup ran before the error left main
  EXPECT_EQ(r.err, "grove: main failed: std::runtime_error: the disk is full\n");
}

TEST(run_signals, every_member_of_an_exception_group_is_printed) {
  auto c = start_child({"--body-ms", "0", "--throw-group"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 1));
  EXPECT_EQ(r.err,
            "grove: main failed: grove::exception_group (3 errors):\n"
            "  std::runtime_error: first failure\n"
            "  std::logic_error: second failure\n"
            "  grove::exception_group (1 error):\n"
            "    std::out_of_range: nested failure\n");
}

TEST(run_signals, an_error_during_a_signal_shutdown_is_printed_and_the_signal_still_wins) {
  // body-ms 0 and a long cleanup: the body has thrown, the cleanup is
  // running when SIGTERM arrives; the error is reported, the process dies
  // by the signal.
  auto c = start_child({"--body-ms", "0", "--throw", "late", "--cleanup-ms", "300"});
  ASSERT_TRUE(c.read_until_line("cleanup started"));
  c.signal(SIGTERM);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGTERM));
  EXPECT_TRUE(has(r, "cleaned up"));
  EXPECT_EQ(r.err, "grove: main failed: std::runtime_error: late\n");
}

TEST(run_signals, run_inside_run_is_an_error_that_says_so) {
  auto c = start_child({"--nested"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 1));
  EXPECT_FALSE(has(r, "nested run returned"));
  EXPECT_NE(
      r.err.find("std::logic_error: grove::run: called while a grove loop is already running"),
      std::string::npos)
      << r.err;
}

// ------------------------------------------------------------ shells

TEST(run_signals, a_shell_loop_around_the_program_stops_at_the_first_ctrl_c) {
  // As a terminal does, SIGINT goes to the whole foreground process group:
  // bash and the program. bash (waiting, "wait and cooperative exit") keeps
  // looping if its child *exited*, even with status 130, and stops only if
  // the child was killed by SIGINT — which is what the re-raise gives.
  std::string script = "for i in 1 2; do \"$0\"; done; echo loop finished";
  child_process c({"/bin/bash", "-c", script, child_path});
  ASSERT_TRUE(c.read_until_line("ready"));
  c.signal_group(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));  // bash re-killed itself too
  EXPECT_EQ(count(r, "ready"), 1) << "the loop started a second iteration";
  EXPECT_EQ(count(r, "cleaned up"), 1);
  EXPECT_FALSE(has(r, "loop finished"));
}

// ------------------------------------------------------------ in process

bool blocked_now(int signo) {
  sigset_t cur;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, signo) == 1;
}

// Sets a signal's disposition for one test (a test binary started as a
// background job of a script inherits SIGINT ignored, which run respects).
class disposition_guard {
 public:
  disposition_guard(int signo, void (*handler)(int)) : signo_(signo) {
    struct sigaction sa{};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(signo, &sa, &old_);
  }
  disposition_guard(const disposition_guard&) = delete;
  disposition_guard& operator=(const disposition_guard&) = delete;
  ~disposition_guard() { ::sigaction(signo_, &old_, nullptr); }

 private:
  int signo_;
  struct sigaction old_{};
};

TEST(run, returns_the_value_of_main_and_restores_the_signal_mask) {
  disposition_guard dfl(SIGINT, SIG_DFL);
  ASSERT_FALSE(blocked_now(SIGINT));
  bool blocked_inside = false;
  int code = grove::run([&]() -> grove::task<int> {
    blocked_inside = blocked_now(SIGINT) && blocked_now(SIGTERM);
    co_await grove::sleep(1ms);
    co_return 42;
  });
  EXPECT_EQ(code, 42);
  EXPECT_TRUE(blocked_inside);
  EXPECT_FALSE(blocked_now(SIGINT));
  EXPECT_FALSE(blocked_now(SIGTERM));
}

TEST(run, an_ignored_signal_is_left_alone) {
  disposition_guard ign(SIGINT, SIG_IGN);
  bool int_blocked = true;
  bool term_blocked = false;
  grove::run([&]() -> grove::task<void> {
    int_blocked = blocked_now(SIGINT);
    term_blocked = blocked_now(SIGTERM);
    co_return;
  });
  EXPECT_FALSE(int_blocked);
  EXPECT_TRUE(term_blocked);
  struct sigaction now_sa{};
  ::sigaction(SIGINT, nullptr, &now_sa);
  EXPECT_EQ(now_sa.sa_handler, SIG_IGN);
}

TEST(run, leaves_signals_blocked_before_it_blocked) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &term, nullptr);
  int code = grove::run([]() -> grove::task<void> { co_return; });
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(blocked_now(SIGTERM));
  EXPECT_FALSE(blocked_now(SIGINT));
  ::pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
}

TEST(run, does_not_change_signal_dispositions) {
  struct sigaction before{};
  ::sigaction(SIGINT, nullptr, &before);
  grove::run([]() -> grove::task<void> { co_return; });
  struct sigaction after{};
  ::sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(before.sa_handler, after.sa_handler);
}

TEST(run, calling_run_inside_run_throws_a_clear_logic_error) {
  std::string message;
  int code = grove::run([&]() -> grove::task<int> {
    try {
      grove::run([]() -> grove::task<int> { co_return 0; });
    } catch (const std::logic_error& e) {
      message = e.what();
    }
    co_return 5;
  });
  EXPECT_EQ(code, 5);
  EXPECT_NE(message.find("grove::run: called while a grove loop is already running on this thread"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("co_await"), std::string::npos) << message;
  EXPECT_FALSE(blocked_now(SIGINT));  // the outer run restored the mask
}

TEST(run, an_exception_escaping_main_returns_1_and_is_printed) {
  ::testing::internal::CaptureStderr();
  int code = grove::run([]() -> grove::task<int> {
    co_await grove::sleep(1ms);
    throw std::invalid_argument("bad input");
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err, "grove: main failed: std::invalid_argument: bad input\n");
}

TEST(run, a_main_that_throws_before_returning_a_task_returns_1) {
  ::testing::internal::CaptureStderr();
  int code = grove::run([]() -> grove::task<int> { throw std::runtime_error("no task"); });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err, "grove: main failed: std::runtime_error: no task\n");
}

grove::task<int> throws_synchronously() {
  throw std::runtime_error("before the task");
}

TEST(run, a_plain_function_returning_a_task_works) {
  ::testing::internal::CaptureStderr();
  int code = grove::run(throws_synchronously);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("before the task"), std::string::npos);
}

TEST(run, a_main_cancelled_without_a_signal_returns_1) {
  ::testing::internal::CaptureStderr();
  int code = grove::run([]() -> grove::task<int> {
    grove::event_loop::current()->cancel_root();
    co_await grove::sleep(1h);
    co_return 0;
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("cancelled without a shutdown signal"), std::string::npos) << err;
}

TEST(run, the_dump_signal_cannot_also_be_a_shutdown_signal) {
  grove::run_options o;
  o.signals = {SIGINT, SIGUSR1};
  EXPECT_THROW(grove::run([]() -> grove::task<int> { co_return 0; }, o), std::invalid_argument);
  o.signals = {SIGINT};
  o.dump_signal = 999;
  try {
    grove::run([]() -> grove::task<int> { co_return 0; }, o);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("dump_signal"), std::string::npos) << e.what();
  }
}

std::atomic<int> usr1_handled{0};

TEST(run, a_handler_the_program_installed_keeps_the_dump_signal) {
  struct sigaction mine{}, old{};
  mine.sa_handler = [](int) { usr1_handled.fetch_add(1); };
  sigemptyset(&mine.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR1, &mine, &old), 0);
  int code = grove::run([]() -> grove::task<int> {
    ::raise(SIGUSR1);  // not blocked by run: the handler runs at once
    co_return usr1_handled.load() == 1 ? 0 : 1;
  });
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(usr1_handled.load(), 1);
}

TEST(run, uncatchable_or_invalid_signals_are_rejected) {
  auto main = []() -> grove::task<int> { co_return 0; };
  grove::run_options kill_opt;
  kill_opt.signals = {SIGINT, SIGKILL};
  EXPECT_THROW(grove::run(main, kill_opt), std::invalid_argument);
  grove::run_options bogus;
  bogus.signals = {1000};
  EXPECT_THROW(grove::run(main, bogus), std::invalid_argument);
  EXPECT_FALSE(blocked_now(SIGINT));
  EXPECT_EQ(grove::run(main), 0);  // nothing was left claimed
}

TEST(run, with_no_signals_a_blocked_main_is_reported_as_a_deadlock) {
  // No bridge, so nothing external can wake main: the loop says so instead
  // of hanging, and run reports it as main's error.
  ::testing::internal::CaptureStderr();
  grove::run_options none;
  none.signals = {};
  int code = grove::run(
      []() -> grove::task<int> {
        co_await std::suspend_always{};  // nothing will ever resume it
        co_return 0;
      },
      none);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_NE(err.find("deadlock"), std::string::npos) << err;
}

TEST(run, run_once_per_thread_at_a_time) {
  // A second concurrent run (another thread) would race for the signals.
  std::string message;
  int code = grove::run([&]() -> grove::task<int> {
    std::thread t([&] {
      try {
        grove::run([]() -> grove::task<int> { co_return 0; });
      } catch (const std::logic_error& e) {
        message = e.what();
      }
    });
    t.join();
    co_return 0;
  });
  EXPECT_EQ(code, 0);
  EXPECT_NE(message.find("another grove::run is active"), std::string::npos) << message;
}

}  // namespace
