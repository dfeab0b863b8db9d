// grove's status line and colour: drawn on stderr only when it is a terminal
// (here a pseudo-terminal from script(1)), erased before the summary; red
// for failures unless NO_COLOR or --color never; --color always forces it.
#include <string>

#include "cli/cli_testing.hpp"

namespace grove::testing {
namespace {

const std::string erase = "\r\x1b[K";
const std::string red_failure = "\x1b[31m1 failed\x1b[0m";

class cli_status : public cli_test {
 protected:
  // grove under a pseudo-terminal: its stdout and stderr reach script's output.
  child_result on_a_terminal(const std::string& env, const std::string& args) const {
    std::string cmd = "env " + mark_ + " " + env + " " + grove_tool + " " + args;
    return child_process({"/usr/bin/env", "-C", dir_, "/usr/bin/script", "-qec", cmd, "/dev/null"})
        .wait();
  }
};

TEST_F(cli_status, a_terminal_gets_a_status_line_that_is_erased_before_the_summary) {
  child_result r = on_a_terminal("", "-j1 'sleep 0.3; exit {}' ::: 0 1");
  EXPECT_NE(r.out.find(erase + "grove: 0/2 done, 1 running, 1 queued, "), std::string::npos)
      << r.out;
  std::size_t summary = r.out.find("grove: 2 jobs:");
  ASSERT_NE(summary, std::string::npos) << r.out;
  EXPECT_EQ(r.out.rfind(erase, summary), summary - erase.size())
      << "erased just before the summary";
  EXPECT_NE(r.out.find(red_failure), std::string::npos) << "failures are red on a terminal";
}

TEST_F(cli_status, no_color_and_color_never_turn_colour_off) {
  child_result no_color = on_a_terminal("NO_COLOR=1", "'exit {}' ::: 1");
  EXPECT_EQ(no_color.out.find("\x1b[31m"), std::string::npos) << no_color.out;
  child_result never = on_a_terminal("", "--color never 'exit {}' ::: 1");
  EXPECT_EQ(never.out.find("\x1b[31m"), std::string::npos) << never.out;
}

TEST_F(cli_status, without_a_terminal_there_is_no_status_line_unless_colour_is_forced) {
  child_result plain = run({"exit {}", ":::", "1"});
  EXPECT_EQ(plain.err.find("\x1b["), std::string::npos) << plain.err;
  child_result forced = run({"--color", "always", "exit {}", ":::", "1"});
  EXPECT_NE(forced.err.find(red_failure), std::string::npos) << forced.err;
  EXPECT_EQ(forced.err.find(erase), std::string::npos) << "colour, but no status line";
}

}  // namespace
}  // namespace grove::testing
