// Helpers for the grove CLI tests: run the real `grove` binary with a marker
// in its environment (every job and grandchild inherits it, so leftovers are
// found), in a fresh temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "process/process_testing.hpp"

namespace grove::testing {

inline const std::string grove_tool = GROVE_TOOL;
inline const std::string job_script = std::string(GROVE_TEST_SOURCE_DIR) + "/cli/job.sh";

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// A joblog line's columns, and a joblog's rows of columns.
inline std::vector<std::string> tsv_columns(const std::string& line) {
  std::vector<std::string> cols;
  std::size_t at = 0;
  for (std::size_t tab; (tab = line.find('\t', at)) != std::string::npos; at = tab + 1)
    cols.push_back(line.substr(at, tab - at));
  cols.push_back(line.substr(at));
  return cols;
}

inline std::vector<std::vector<std::string>> tsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& line : lines_of(text)) rows.push_back(tsv_columns(line));
  return rows;
}

inline int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

// Reads the run's stdout until jobs "a" and "b" (job.sh, -j2) both said
// they started: both slots are busy. False at end of file.
inline bool both_started(child_process& c) {
  return c.read_until([](const std::string& out) {
    return child_process::has_line(out, "a started") && child_process::has_line(out, "b started");
  });
}

class cli_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "grove_cli_XXXXXX";
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
  }
  void TearDown() override {
    EXPECT_EQ(processes_with(mark_), std::vector<pid_t>{}) << "processes left behind";
    kill_all_with(mark_);
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // `grove args...`, marked, with `env` ("NAME=value") added, run from the
  // temporary directory.
  child_process start(std::vector<std::string> args, std::vector<std::string> env = {}) const {
    std::vector<std::string> argv{"/usr/bin/env", "-C", dir_, mark_};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(grove_tool);
    argv.insert(argv.end(), args.begin(), args.end());
    return child_process(std::move(argv));
  }
  child_result run(std::vector<std::string> args) const { return start(std::move(args)).wait(); }
  // `sh -c script`, marked, in the temporary directory.
  child_result run_shell(const std::string& script) const {
    return child_process({"/usr/bin/env", "-C", dir_, mark_, "/bin/sh", "-c", script}).wait();
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // The job script as a template: job.sh MODE {} LOG
  std::string job(const std::string& mode) const {
    return job_script + " " + mode + " {} " + path("signals.log");
  }

  std::string dir_;
  std::string mark_ = marker(::testing::UnitTest::GetInstance()->current_test_info()->name());
};

}  // namespace grove::testing
