// Cancelling a process wait runs the terminate sequence: terminate_signal to
// the group, SIGKILL after kill_grace (at once when forced), the child reaped
// and its group emptied before the cancellation completes. Real children,
// real signals; leftovers are found by a marker in their environment.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <grove/cancel.hpp>
#include <grove/process.hpp>
#include <grove/task_group.hpp>
#include <grove/time.hpp>
#include <string>
#include <vector>

#include "process/process_testing.hpp"

namespace grove::testing {
namespace {

using namespace std::chrono_literals;

class terminate_test : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(processes_with(mark_), std::vector<pid_t>{}) << "processes left behind";
    kill_all_with(mark_);
    EXPECT_EQ(open_fds(), fds_);
  }

  // sh -c script, stdout piped, marked; the script prints "ready" when set.
  process_options sh(const std::string& script, duration grace) const {
    process_options o;
    o.argv = {"/bin/sh", "-c", script};
    o.stdout_ = stdio::pipe;
    o.env = env_with(mark_);
    o.kill_grace = grace;
    return o;
  }

  std::string mark_ = marker(::testing::UnitTest::GetInstance()->current_test_info()->name());
  int fds_ = open_fds();
};

// The cancellation is the deadline of move_on_after: the child would
// otherwise run for 1000 s.
TEST_F(terminate_test, a_child_that_obeys_sigterm_runs_its_handler_and_is_reaped) {
  auto o = run_real([this]() -> task<std::pair<bool, std::string>> {
    process p = process::spawn(
        sh("trap 'echo handler ran; exit 3' TERM; echo ready; sleep 1000 & wait", 30s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    auto waited = co_await move_on_after(20ms, p.wait());
    EXPECT_TRUE(p.status().has_value()) << "the cancellation completed before the reap";
    EXPECT_EQ(p.status().value_or(exit_status{}).code(), 3);
    co_return std::pair{waited.has_value(), co_await read_all(p.stdout_stream())};
  }());
  EXPECT_FALSE(o.value().first) << "a cancelled wait gives no status";
  EXPECT_EQ(o.value().second, "handler ran\n");
}

TEST_F(terminate_test, a_child_that_ignores_sigterm_is_killed_after_the_grace_not_before) {
  constexpr auto grace = 300ms;
  auto o = run_real([&]() -> task<duration> {
    process p = process::spawn(sh("trap '' TERM; echo ready; sleep 1000 & wait", grace));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    time_point start = now();
    co_await move_on_after(0ns, p.wait());  // a wait begun cancelled terminates too
    duration took = now() - start;
    EXPECT_EQ(p.status().value_or(exit_status{}).signal(), SIGKILL);
    co_return took;
  }());
  EXPECT_GE(o.value(), grace);
  EXPECT_LT(o.value(), 20s);
}

TEST_F(terminate_test, a_shells_background_grandchildren_do_not_survive) {
  auto o = run_real([this]() -> task<void> {
    // One grandchild ignores SIGTERM: the shell dies at once, and the group
    // is SIGKILLed when the shell is reaped, long before the grace ends.
    process p =
        process::spawn(sh("sleep 1000 & (trap '' TERM; sleep 1000) & echo ready; wait", 60s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    EXPECT_EQ(processes_with(mark_).size(), 3u);
    time_point start = now();
    co_await move_on_after(10ms, p.wait());
    EXPECT_LT(now() - start, 30s);
    EXPECT_EQ(p.status().value_or(exit_status{}).signal(), SIGTERM);
  }());
  EXPECT_TRUE(o.has_value());
}

TEST_F(terminate_test, a_process_never_waited_for_is_killed_and_reaped_when_destroyed) {
  pid_t pid = -1;
  {
    process p = process::spawn(sh("trap '' TERM; sleep 1000 & sleep 1000 & echo ready; wait", 60s));
    pid = p.pid();
    auto o =
        run_real([&]() -> task<std::string> { co_return co_await read_line(p.stdout_stream()); }());
    ASSERT_EQ(o.value(), "ready");
  }
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1) << "not reaped";
  EXPECT_EQ(errno, ECHILD);
}

TEST_F(terminate_test, terminate_signals_waits_and_gives_the_status) {
  auto o = run_real([this]() -> task<std::vector<std::string>> {
    process obeys = process::spawn(sh("echo ready; exec sleep 1000", 60s));
    EXPECT_EQ(co_await read_line(obeys.stdout_stream()), "ready");
    process ignores = process::spawn(sh("trap '' TERM; echo ready; sleep 1000 & wait", 60s));
    EXPECT_EQ(co_await read_line(ignores.stdout_stream()), "ready");
    std::vector<std::string> got;
    got.push_back((co_await obeys.terminate(60s)).describe());
    got.push_back((co_await ignores.terminate(50ms)).describe());
    got.push_back((co_await ignores.terminate(50ms)).describe());  // reaped: the same again
    co_return got;
  }());
  EXPECT_EQ(o.value(), (std::vector<std::string>{"killed by SIGTERM", "killed by SIGKILL",
                                                 "killed by SIGKILL"}));
}

// A job runner forwards the signal its user sent (grove's CLI does).
TEST_F(terminate_test, the_terminate_signal_can_be_changed_while_the_child_runs) {
  auto o = run_real([this]() -> task<int> {
    process p =
        process::spawn(sh("trap 'echo got INT; exit 5' INT; echo ready; sleep 1000 & wait", 60s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    p.set_terminate_signal(SIGINT);
    EXPECT_THROW(p.set_terminate_signal(0), std::invalid_argument);
    co_await move_on_after(0ns, p.wait());
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "got INT");
    co_return p.status().value_or(exit_status{}).code();
  }());
  EXPECT_EQ(o.value(), 5);
}

TEST_F(terminate_test, send_signal_reaches_the_whole_group) {
  auto o = run_real([this]() -> task<int> {
    process p = process::spawn(sh("sleep 1000 & echo ready; wait", 60s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    p.send_signal(SIGUSR1);
    exit_status st = co_await p.wait();
    co_return st.signal();
  }());
  EXPECT_EQ(o.value(), SIGUSR1);
  EXPECT_THROW(process::spawn(sh("true", 1s)).send_signal(12345), std::system_error);
}

// Forced shutdown (grove::run's second signal) cuts the grace short: the
// child that ignores SIGTERM is SIGKILLed at once, and still reaped before
// the loop returns.
TEST_F(terminate_test, a_forced_shutdown_kills_at_once) {
  process p =
      process::spawn(sh("trap '' TERM; echo ready; sleep 1000 & wait", std::chrono::hours(1)));
  time_point start = clock::now();
  auto o = run_real([&]() -> task<void> {
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    cancel_scope scope;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> { co_await scope.run(p.wait()); });
      co_await checkpoint();  // the wait starts and suspends on the pidfd
      scope.cancel();         // graceful: SIGTERM, ignored; the grace is an hour
      EXPECT_FALSE(p.status().has_value());
      event_loop::current()->force_cancel();
      co_await sleep(1h);
    });
  }());
  EXPECT_TRUE(o.cancelled());
  EXPECT_LT(clock::now() - start, 20s);
  ASSERT_TRUE(p.status().has_value()) << "not reaped before the loop returned";
  EXPECT_EQ(p.status()->signal(), SIGKILL);
}

// Stop-and-kill rounds: a shell forking as fast as it can while the group
// is killed leaves nothing behind.
TEST_F(terminate_test, a_group_that_keeps_forking_is_killed_to_the_last_process) {
  auto o = run_real([this]() -> task<void> {
    process p =
        process::spawn(sh("trap '' TERM; echo ready; i=0; while [ $i -lt 3000 ]; do sleep 1000 & "
                          "i=$((i+1)); done; wait",
                          0s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    co_await move_on_after(5ms, p.wait());
    EXPECT_EQ(p.status().value_or(exit_status{}).signal(), SIGKILL);
  }());
  EXPECT_TRUE(o.has_value());
}

// A supervisor waits while a controller terminates: both get the status.
TEST_F(terminate_test, several_tasks_may_wait_and_terminate_at_once) {
  auto o = run_real([this]() -> task<std::vector<std::string>> {
    process p = process::spawn(sh("echo ready; exec sleep 1000", 60s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    std::vector<std::string> got(3);
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> { got[0] = (co_await p.wait()).describe(); });
      g.spawn([&]() -> task<void> { got[1] = (co_await p.wait()).describe(); });
      co_await checkpoint();  // both waits are suspended
      got[2] = (co_await p.terminate(60s)).describe();
    });
    co_return got;
  }());
  EXPECT_EQ(o.value(), std::vector<std::string>(3, "killed by SIGTERM"));
}

// SIGCONT follows the signal: a stopped child (Ctrl+Z, or SIGTTIN from
// reading a terminal it does not own) acts on it at once instead of keeping
// it pending until SIGKILL.
TEST_F(terminate_test, a_stopped_child_is_terminated_gracefully) {
  auto o = run_real([this]() -> task<std::pair<std::string, duration>> {
    process p = process::spawn(sh("echo ready; exec sleep 1000", 60s));
    EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
    p.send_signal(SIGSTOP);
    time_point start = now();
    exit_status st = co_await p.terminate(30s);
    co_return std::pair{st.describe(), now() - start};
  }());
  EXPECT_EQ(o.value().first, "killed by SIGTERM");
  EXPECT_LT(o.value().second, 20s);
}

// The first sequence has an hour's grace, or none at all.
TEST_F(terminate_test, a_shorter_grace_brings_the_sigkill_forward) {
  auto o = run_real([this]() -> task<std::vector<std::string>> {
    std::vector<std::string> got;
    for (duration first : {duration(1h), duration::max()}) {
      process p = process::spawn(sh("trap '' TERM; echo ready; exec sleep 1000", 1h));
      EXPECT_EQ(co_await read_line(p.stdout_stream()), "ready");
      co_await with_task_group([&](task_group& g) -> task<void> {
        g.spawn([&]() -> task<void> { co_await p.terminate(first); });
        co_await checkpoint();  // SIGTERM sent, ignored
        got.push_back((co_await p.terminate(20ms)).describe());
      });
    }
    co_return got;
  }());
  EXPECT_EQ(o.value(), std::vector<std::string>(2, "killed by SIGKILL"));
}

TEST_F(terminate_test, a_grace_of_duration_max_or_close_to_it_does_not_overflow) {
  auto o = run_real([this]() -> task<std::vector<int>> {
    std::vector<int> got;
    for (duration grace : {duration::max(), duration::max() - 1ns}) {
      process p = process::spawn(sh("exec sleep 1000", grace));
      co_await move_on_after(0ns, p.wait());  // SIGTERM; sleep obeys it
      got.push_back(p.status().value_or(exit_status{}).signal());
    }
    co_return got;
  }());
  EXPECT_EQ(o.value(), (std::vector<int>{SIGTERM, SIGTERM}));
}

TEST_F(terminate_test, waiting_on_a_virtual_loop_is_refused) {
  process p = process::spawn(sh("exec sleep 1000", 1s));
  virtual_loop loop;
  auto o = loop.run(p.wait());
  ASSERT_TRUE(o.has_error());
  EXPECT_THROW(std::rethrow_exception(o.error()), std::logic_error);
}  // ~process kills and reaps the sleep

}  // namespace
}  // namespace grove::testing
