// A grove::run program whose tasks wait on children (tests/helpers/
// run_children.cpp), stopped by real signals: on SIGINT every child group is
// terminated gracefully, a second SIGINT kills them at once, and the program
// dies by the signal only once every child is reaped. Leftovers are found by
// a marker in the children's environment.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "process/process_testing.hpp"

namespace grove::testing {
namespace {

const std::string helper = std::string(GROVE_TEST_HELPERS_DIR) + "/run_children";

class under_run : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(processes_with(mark_), std::vector<pid_t>{}) << "processes left behind";
    kill_all_with(mark_);
  }
  // Every shell has forked its grandchildren, and every wait has begun.
  static void all_started(child_process& c, int shells) {
    ASSERT_TRUE(c.read_until([&](const std::string& out) {
      return child_process::count_lines(out, "started") == shells &&
             child_process::has_line(out, "ready");
    }));
  }
  std::string mark_ = marker(::testing::UnitTest::GetInstance()->current_test_info()->name());
};

TEST_F(under_run, ctrl_c_terminates_every_child_group_and_exits_by_the_signal) {
  std::string log = ::testing::TempDir() + "grove_under_run_" + std::to_string(::getpid());
  ::unlink(log.c_str());
  child_process c({helper, "--mark", mark_, "--children", "3", "--log", log});
  all_started(c, 3);
  EXPECT_EQ(processes_with(mark_).size(), 9u);  // 3 shells, 6 sleeps
  c.signal_group(SIGINT);                       // as a terminal does: the children get it too
  child_result r = c.wait();
  ASSERT_TRUE(WIFSIGNALED(r.status)) << r.out << r.err;
  EXPECT_EQ(WTERMSIG(r.status), SIGINT);
  EXPECT_TRUE(child_process::has_line(r.out, "signal 2 stage 1")) << r.out;
  std::ifstream f(log);
  std::string said((std::istreambuf_iterator<char>(f)), {});
  ::unlink(log.c_str());
  EXPECT_EQ(said, "terminated\nterminated\nterminated\n") << "each shell's SIGTERM handler ran";
}

TEST_F(under_run, a_signal_to_the_program_alone_reaches_its_children_through_the_sequence) {
  child_process c({helper, "--mark", mark_, "--children", "2"});
  all_started(c, 2);
  c.signal(SIGTERM);  // as kill(1) and Kubernetes do: the program's pid only
  child_result r = c.wait();
  ASSERT_TRUE(WIFSIGNALED(r.status)) << r.out << r.err;
  EXPECT_EQ(WTERMSIG(r.status), SIGTERM);
}

// Children that ignore SIGTERM, with an hour's kill_grace: the first Ctrl+C
// cannot stop them; the second forces the shutdown, and they are SIGKILLed
// and reaped before the program dies.
TEST_F(under_run, a_second_ctrl_c_kills_children_that_ignore_sigterm) {
  child_process c({helper, "--mark", mark_, "--children", "2", "--ignore-term", "--kill-grace-ms",
                   "3600000", "--grace-ms", "3600000", "--debounce-ms", "0"});
  all_started(c, 2);
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line("signal 2 stage 1"));
  EXPECT_EQ(processes_with(mark_).size(), 6u) << "the graceful stage must not kill them";
  c.signal(SIGINT);
  child_result r = c.wait();
  EXPECT_FALSE(r.watchdog_fired);
  ASSERT_TRUE(WIFSIGNALED(r.status)) << r.out << r.err;
  EXPECT_EQ(WTERMSIG(r.status), SIGINT);
  EXPECT_TRUE(child_process::has_line(r.out, "signal 2 stage 2")) << r.out;
}

}  // namespace
}  // namespace grove::testing
