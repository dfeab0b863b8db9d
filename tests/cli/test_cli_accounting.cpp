// grove's accounting and interface: exit statuses, the joblog and results
// files, --resume after grove was SIGKILLed, --halt and --timeout, input
// sources, output grouping, and bad usage (exit 2, nothing started).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "cli/cli_testing.hpp"

namespace grove::testing {
namespace {

using cli_accounting = cli_test;

int exit_code(const child_result& r) {
  EXPECT_TRUE(WIFEXITED(r.status)) << r.out << r.err;
  return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
}

TEST_F(cli_accounting, exit_status_is_zero_or_the_number_of_failed_jobs) {
  EXPECT_EQ(exit_code(run({"-j2", "true", ":::", "a", "b"})), 0);
  EXPECT_EQ(exit_code(run({"-j2", "exit {}", ":::", "0", "3", "0", "1", "7"})), 3);
  std::vector<std::string> many{"-j2", "false", ":::"};
  for (int i = 0; i < 102; ++i) many.push_back(std::to_string(i));
  EXPECT_EQ(exit_code(run(many)), 101);
}

TEST_F(cli_accounting, the_joblog_has_gnu_parallels_columns_and_a_state_for_every_job) {
  child_result r = run({"-j2", "--joblog", path("log.tsv"), "--timeout", "300ms",
                        "case {} in ok) true;; bad) exit 4;; slow) exec sleep 1000;; esac",
                        ":::", "ok", "bad", "slow"});
  EXPECT_EQ(exit_code(r), 2);
  auto rows = tsv(slurp(path("log.tsv")));
  ASSERT_EQ(rows.size(), 4u) << slurp(path("log.tsv"));
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive",
                                      "Exitval", "Signal", "Command", "State"}));
  std::map<std::string, std::vector<std::string>> by_state;
  for (std::size_t i = 1; i < rows.size(); ++i) by_state[rows[i][9]] = rows[i];
  ASSERT_EQ(by_state.size(), 3u) << slurp(path("log.tsv"));
  EXPECT_EQ(by_state.at("ok").at(6), "0");
  EXPECT_EQ(by_state.at("failed").at(6), "4");
  EXPECT_EQ(by_state.at("timeout").at(7), std::to_string(SIGTERM));
  EXPECT_NE(by_state.at("timeout").at(8).find("sleep 1000"), std::string::npos);
  EXPECT_GE(std::stod(by_state.at("timeout").at(3)), 0.3);
  EXPECT_NE(r.err.find("3 jobs: 1 ok, 1 failed, 1 timed out, 0 cancelled, 0 skipped"),
            std::string::npos)
      << r.err;
}

TEST_F(cli_accounting, results_are_json_lines_with_each_jobs_output) {
  run({"--results", path("r.jsonl"), "-k", "printf '%s\\n' {}; echo err-{} >&2", ":::", "a b",
       "c"});
  auto lines = lines_of(slurp(path("r.jsonl")));
  ASSERT_EQ(lines.size(), 2u);
  std::map<int, nlohmann::json> by_seq;
  for (const auto& l : lines) {
    auto j = nlohmann::json::parse(l);
    by_seq[j["seq"].get<int>()] = j;
  }
  EXPECT_EQ(by_seq[1]["input"], "a b");
  EXPECT_EQ(by_seq[1]["stdout"], "a b\n");
  EXPECT_EQ(by_seq[1]["stderr"], "err-a b\n");
  EXPECT_EQ(by_seq[2]["state"], "ok");
  EXPECT_EQ(by_seq[2]["exit"], 0);
}

// grove killed by SIGKILL cannot clean up, but every job that finished is in
// the joblog already, and --resume runs only the rest.
TEST_F(cli_accounting, a_sigkilled_grove_loses_no_finished_job_and_resume_runs_the_rest) {
  std::string cmd =
      "if [ {} -le 3 ] || [ -n \"$FAST\" ]; then echo done {}; else echo started {}; exec sleep "
      "1000; fi";
  std::vector<std::string> args{
      "-j1", "--line-buffer", "--joblog", path("log.tsv"), cmd, ":::", "1", "2", "3", "4", "5",
      "6"};
  {
    child_process c = start(args);
    // -j1: job 4 starts only after job 3 ended and was logged.
    ASSERT_TRUE(c.read_until_line("started 4"));
    c.signal(SIGKILL);
    c.wait();
  }
  kill_all_with(mark_);  // job 4, orphaned by the SIGKILL: nothing could stop it
  auto rows = tsv(slurp(path("log.tsv")));
  ASSERT_EQ(rows.size(), 4u) << slurp(path("log.tsv"));
  for (std::size_t i = 1; i < 4; ++i) EXPECT_EQ(rows[i][9], "ok");

  std::vector<std::string> again{"--resume", path("log.tsv")};
  again.insert(again.end(), args.begin(), args.end());
  child_result r = start(again, {"FAST=1"}).wait();
  EXPECT_EQ(exit_code(r), 0);
  EXPECT_EQ(lines_of(r.out), (std::vector<std::string>{"done 4", "done 5", "done 6"}));
  EXPECT_NE(r.err.find("3 already ok (--resume)"), std::string::npos) << r.err;
  auto after = tsv(slurp(path("log.tsv")));
  ASSERT_EQ(after.size(), 7u);
  for (std::size_t i = 4; i < 7; ++i) EXPECT_EQ(after[i][0], std::to_string(i));
}

TEST_F(cli_accounting, halt_now_cancels_the_running_and_skips_the_queued) {
  child_result r =
      run({"-j2", "--joblog", path("log.tsv"), "--halt", "now,fail=1",
           "if [ {} = 1 ]; then exit 1; else exec sleep 1000; fi", ":::", "1", "2", "3"});
  EXPECT_EQ(exit_code(r), 1);
  auto rows = tsv(slurp(path("log.tsv")));
  std::map<std::string, std::string> state;
  for (std::size_t i = 1; i < rows.size(); ++i) state[rows[i][0]] = rows[i][9];
  EXPECT_EQ(state, (std::map<std::string, std::string>{
                       {"1", "failed"}, {"2", "cancelled"}, {"3", "skipped"}}));
}

// Job 2 is still running when job 1 fails (it waits for job 1's marker
// file, written just before job 1 exits): it finishes ok; 3 and 4 never start.
TEST_F(cli_accounting, halt_soon_lets_the_running_finish) {
  child_result r =
      run({"-j2", "--joblog", path("log.tsv"), "--halt", "soon,fail=1",
           "case {} in 1) touch one; exit 1;; 2) while [ ! -e one ]; do sleep 0.01; done; "
           "sleep 0.2;; esac",
           ":::", "1", "2", "3", "4"});
  auto rows = tsv(slurp(path("log.tsv")));
  std::map<std::string, std::string> state;
  for (std::size_t i = 1; i < rows.size(); ++i) state[rows[i].at(0)] = rows[i].at(9);
  EXPECT_EQ(state, (std::map<std::string, std::string>{
                       {"1", "failed"}, {"2", "ok"}, {"3", "skipped"}, {"4", "skipped"}}));
  EXPECT_EQ(exit_code(r), 1);
}

// The timeout's SIGTERM reaches jobs whose handler finishes the work and
// exits 0: they are ok, not timed out. (Each waits on a sleep it starts, so
// the timeout always comes first.)
TEST_F(cli_accounting, a_job_that_exits_0_as_its_timeout_fires_is_ok) {
  std::vector<std::string> args{
      "-j4",      "--timeout",     "50ms",
      "--joblog", path("log.tsv"), "trap 'exit 0' TERM; echo {}; sleep 1000 & wait",
      ":::"};
  for (int i = 0; i < 8; ++i) args.push_back(std::to_string(i));
  child_result r = run(args);
  EXPECT_EQ(exit_code(r), 0) << r.err;
  EXPECT_NE(r.err.find("8 ok, 0 failed, 0 timed out"), std::string::npos) << r.err;
  for (const auto& row : tsv(slurp(path("log.tsv")))) {
    if (row.at(0) != "Seq") {
      EXPECT_GE(std::stod(row.at(3)), 0.05) << "stopped by the timeout";
    }
  }
}

// The jobs write their lines with pauses between, all at once: streamed
// (--line-buffer) they would interleave; grouped, each job's block is whole.
TEST_F(cli_accounting, grouped_output_never_interleaves) {
  std::vector<std::string> args{"-j4", "for i in 1 2 3 4 5 6 7 8; do echo {}-$i; sleep 0.01; done",
                                ":::"};
  for (int i = 0; i < 8; ++i) args.push_back("job" + std::to_string(i));
  child_result r = run(args);
  auto lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 64u);
  for (std::size_t i = 0; i < lines.size(); i += 8)
    for (std::size_t k = 0; k < 8; ++k)
      EXPECT_EQ(lines[i + k], lines[i].substr(0, lines[i].find('-')) + "-" + std::to_string(k + 1));
}

// The first input ends last: -k prints in input order all the same.
TEST_F(cli_accounting, keep_order_and_tag) {
  child_result r = run({"-j3", "-k", "--tag", "sleep 0.{}; echo {}", ":::", "3", "1", "2"});
  EXPECT_EQ(r.out, "3\t3\n1\t1\n2\t2\n");
  child_result unordered = run({"-j3", "sleep 0.{}; echo {}", ":::", "3", "1", "2"});
  EXPECT_EQ(unordered.out, "1\n2\n3\n");
}

TEST_F(cli_accounting, inputs_come_from_stdin_lines_and_from_files) {
  {
    std::ofstream f(path("in.txt"));
    f << "x y\nz\n";
  }
  EXPECT_EQ(run({"-k", "echo", "::::", path("in.txt")}).out, "x y\nz\n");
  child_result r = run_shell("printf 'p\\nq\\n' | " + grove_tool + " -k echo got");
  EXPECT_EQ(r.out, "got p\ngot q\n");
}

TEST_F(cli_accounting, a_double_dash_ends_the_options) {
  EXPECT_EQ(run({"-k", "--", "echo", "-n", "x", ":::", "a"}).out, "x a");
}

TEST_F(cli_accounting, resume_without_a_log_yet_runs_everything) {
  child_result r = run(
      {"--resume", path("log.tsv"), "--joblog", path("log.tsv"), "-k", "echo", ":::", "a", "b"});
  EXPECT_EQ(r.out, "a\nb\n");
  EXPECT_EQ(tsv(slurp(path("log.tsv"))).size(), 3u);
  EXPECT_EQ(
      run({"--resume", path("log.tsv"), "--joblog", path("log.tsv"), "-k", "echo", ":::", "a", "b"})
          .out,
      "");
}

TEST_F(cli_accounting, dry_run_prints_the_commands_and_runs_nothing) {
  child_result r = run({"--dry-run", "touch {}", ":::", "f1", "it's"});
  EXPECT_EQ(exit_code(r), 0);
  EXPECT_EQ(r.out, "touch f1\ntouch 'it'\\''s'\n");
  EXPECT_NE(::access(path("f1").c_str(), F_OK), 0);
}

TEST_F(cli_accounting, bad_usage_exits_2_with_a_message_and_starts_nothing) {
  struct bad {
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<bad> cases{
      {{"--no-such-flag", "touch", "started", ":::", "a"}, "unknown option --no-such-flag"},
      {{"-j", "0", "touch", "started", ":::", "a"}, "-j/--jobs must be at least 1"},
      {{":::", "a"}, "no command given"},
      {{"touch", "started", "::::", "/nonexistent/inputs"}, "cannot read /nonexistent/inputs"},
      {{"--timeout", "soon", "touch", "started", ":::", "a"}, "is not a duration"},
      {{"--halt", "sometimes", "touch", "started", ":::", "a"}, "--halt"},
      {{"--resume", "/", "touch", "started", ":::", "a"}, "--resume"},
  };
  for (const auto& c : cases) {
    child_result r = run(c.args);
    EXPECT_EQ(exit_code(r), 2) << c.says;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_NE(::access(path("started").c_str(), F_OK), 0) << "a job ran for: " << c.says;
  }
}

TEST_F(cli_accounting, a_program_that_cannot_start_is_a_failed_job_with_its_reason) {
  child_result r = run({"--joblog", path("log.tsv"), "grove-no-such-program", ":::", "a"});
  EXPECT_EQ(exit_code(r), 1);
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
  EXPECT_EQ(tsv(slurp(path("log.tsv"))).at(1).at(9), "failed");
}

// PID 1 of a new PID namespace: every orphan is grove's to reap, and signals
// without a handler are not delivered to it by the kernel.
TEST_F(cli_accounting, grove_works_as_pid_1) {
  if (std::system("unshare --pid --fork --mount-proc true >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "unshare --pid --fork --mount-proc is not allowed here";
  child_result r = run_shell("unshare --pid --fork --mount-proc " + grove_tool + " -j2 --joblog " +
                             path("log.tsv") + " \"sh -c 'sleep 0.1 & echo {}'\" ::: a b");
  EXPECT_EQ(exit_code(r), 0) << r.err;
  EXPECT_EQ(tsv(slurp(path("log.tsv"))).size(), 3u);
}

}  // namespace
}  // namespace grove::testing
