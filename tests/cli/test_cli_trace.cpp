// grove --trace FILE: a Chrome trace-event file of grove's own tasks, each
// job a slice named after it, and the SIGUSR1 task-tree dump of a run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_testing.hpp"

namespace grove::testing {
namespace {

class cli_trace : public cli_test {};

int exit_code(const child_result& r) {
  return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
}

TEST_F(cli_trace, every_job_is_a_named_slice_and_the_file_is_valid_json) {
  child_result r = run({"--trace", path("t.json"), "-j2", "exit {}", ":::", "0", "3", "0"});
  EXPECT_EQ(exit_code(r), 1) << r.err;
  nlohmann::json doc = nlohmann::json::parse(slurp(path("t.json")));
  std::map<std::string, int> begun, ended;
  for (const auto& ev : doc.at("traceEvents")) {
    if (ev.at("ph") == "b") ++begun[ev.at("name")];
    if (ev.at("ph") == "e") ++ended[ev.at("name")];
  }
  for (const char* job : {"#1 exit 0", "#2 exit 3", "#3 exit 0"}) {
    EXPECT_EQ(begun[job], 1) << job << "\n" << doc.dump(1);
    EXPECT_EQ(ended[job], 1) << job;
  }
  EXPECT_EQ(begun, ended);  // balanced
}

TEST_F(cli_trace, sigusr1_shows_the_running_jobs_and_the_run_goes_on) {
  child_process c = start({"-j2", "--line-buffer", job("obey"), ":::", "a", "b", "c"});
  ASSERT_TRUE(both_started(c));
  c.signal(SIGUSR1);
  ASSERT_TRUE(c.read_err_until(
      [](const std::string& err) { return err.find("grove: task tree at") != std::string::npos; }));
  c.signal(SIGTERM);
  child_result r = c.wait();
  EXPECT_NE(r.err.find("\"#1 "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"#2 "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" (running)"), std::string::npos) << r.err;  // a process wait
}

}  // namespace
}  // namespace grove::testing
