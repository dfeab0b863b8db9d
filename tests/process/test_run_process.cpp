// run_process: output captured, input fed, check, cancellation that
// terminates the child, and a drain bounded against grandchildren that keep
// the pipes open. Real children.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <grove/cancel.hpp>
#include <grove/process.hpp>
#include <grove/time.hpp>
#include <iterator>
#include <string>
#include <vector>

#include "process/process_testing.hpp"

namespace grove::testing {
namespace {

using namespace std::chrono_literals;

class run_process_test : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(processes_with(mark_), std::vector<pid_t>{}) << "processes left behind";
    kill_all_with(mark_);
    EXPECT_EQ(open_fds(), fds_);
  }
  run_process_options marked() const {
    run_process_options o;
    o.env = env_with(mark_);
    return o;
  }
  std::string mark_ = marker(::testing::UnitTest::GetInstance()->current_test_info()->name());
  int fds_ = open_fds();
};

TEST_F(run_process_test, stdout_stderr_and_the_status_are_captured) {
  auto o = run_real(run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 0"}, marked()));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value().out, "out\n");
  EXPECT_EQ(o.value().err, "err\n");
  EXPECT_TRUE(o.value().status.ok());
}

TEST_F(run_process_test, a_failing_child_throws_process_error_carrying_its_output) {
  auto o = run_real(run_process({"/bin/sh", "-c", "echo partial; echo why >&2; exit 4"}, marked()));
  ASSERT_TRUE(o.has_error());
  try {
    std::rethrow_exception(o.error());
  } catch (const process_error& e) {
    EXPECT_EQ(e.result().status.code(), 4);
    EXPECT_EQ(e.result().out, "partial\n");
    EXPECT_EQ(e.result().err, "why\n");
    EXPECT_EQ(e.argv().at(0), "/bin/sh");
    EXPECT_STREQ(e.what(), "grove: /bin/sh exited with code 4");
  }
  auto opts = marked();
  opts.check = false;
  auto unchecked = run_real(run_process({"/bin/sh", "-c", "exit 4"}, opts));
  EXPECT_EQ(unchecked.value().status.shell_code(), 4);
}

TEST_F(run_process_test, input_round_trips_even_when_larger_than_a_pipe) {
  auto opts = marked();
  opts.input.reserve(1 << 20);
  for (int i = 0; opts.input.size() < (1u << 20); ++i) opts.input += std::to_string(i) + "\n";
  auto o = run_real(run_process({"cat"}, opts));
  EXPECT_EQ(o.value().out, opts.input);
  auto small = marked();
  small.input = "hello";
  EXPECT_EQ(run_real(run_process({"cat"}, small)).value().out, "hello");
}

TEST_F(run_process_test, input_the_child_does_not_read_is_dropped_without_error) {
  auto opts = marked();
  opts.input = std::string(1 << 20, 'x');
  auto o = run_real(run_process({"true"}, opts));
  EXPECT_TRUE(o.value().status.ok());
}

TEST_F(run_process_test, without_input_stdin_is_empty) {
  auto o = run_real(run_process({"/bin/sh", "-c", "cat; echo end"}, marked()));
  EXPECT_EQ(o.value().out, "end\n");
}

TEST_F(run_process_test, output_not_captured_is_inherited) {
  auto opts = marked();
  opts.capture_stdout = false;
  opts.capture_stderr = false;
  auto o = run_real(run_process({"/bin/sh", "-c", "exit 0"}, opts));
  EXPECT_EQ(o.value().out, "");
  EXPECT_EQ(o.value().err, "");
}

TEST_F(run_process_test, a_missing_program_throws_from_run_process) {
  auto o = run_real(run_process({"grove-no-such-program-here"}, marked()));
  ASSERT_TRUE(o.has_error());
  EXPECT_THROW(std::rethrow_exception(o.error()), std::system_error);
}

// Go's WaitDelay problem: the shell exits, its background child keeps the
// stdout pipe, and the pipe never ends while it lives.
TEST_F(run_process_test, a_grandchild_holding_the_pipe_does_not_hang_it) {
  auto opts = marked();
  opts.drain_timeout = 50ms;
  auto o = run_real(run_process({"/bin/sh", "-c", "echo before; sleep 1000 & exit 0"}, opts));
  EXPECT_EQ(o.value().out, "before\n");
  EXPECT_EQ(processes_with(mark_).size(), 1u)
      << "the grandchild runs on: run_process kills nothing after a normal exit";
  kill_all_with(mark_);
}

// The child's SIGTERM handler runs (a graceful stop, not a SIGKILL), and
// the cancellation completes only after the reap: its grandchild is gone too.
TEST_F(run_process_test, cancellation_terminates_the_child_and_completes_after_the_reap) {
  std::string said = ::testing::TempDir() + "grove_term_" + std::to_string(::getpid());
  auto o = run_real([&]() -> task<bool> {
    auto opts = marked();
    opts.kill_grace = 30s;
    std::vector<std::string> argv{
        "/bin/sh", "-c", "trap 'echo handler ran > " + said + "; exit 1' TERM; sleep 1000 & wait"};
    auto r = co_await move_on_after(20ms, run_process(std::move(argv), opts));
    EXPECT_EQ(processes_with(mark_), std::vector<pid_t>{})
        << "alive after the cancellation completed";
    co_return r.has_value();
  }());
  EXPECT_FALSE(o.value());
  std::ifstream f(said);
  std::string content((std::istreambuf_iterator<char>(f)), {});
  ::unlink(said.c_str());
  EXPECT_EQ(content, "handler ran\n");
}

TEST_F(run_process_test, an_unbounded_drain_timeout_is_accepted) {
  auto opts = marked();
  opts.drain_timeout = duration::max();
  std::vector<std::string> argv{"/bin/sh", "-c", "echo hi"};
  auto r = run_real(run_process(std::move(argv), opts));
  EXPECT_EQ(r.value().out, "hi\n");
}

}  // namespace
}  // namespace grove::testing
