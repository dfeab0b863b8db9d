// grove's shutdown, with real signals to the real binary and real jobs
// (tests/cli/job.sh): the signal reaches every running job's group once, a
// slow cleanup finishes within --grace, a job that ignores it is SIGKILLed
// after --grace, a second signal kills at once, queued jobs never start, and
// grove dies by the signal only when nothing it started is left.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "cli/cli_testing.hpp"

namespace grove::testing {
namespace {

using namespace std::chrono_literals;

// Two of four jobs run; once both have started, `signo` goes to grove.
struct interrupted {
  child_result result;
  std::string log;                           // what the jobs logged
  std::string joblog;                        // grove's joblog
  std::chrono::steady_clock::duration took;  // from the signal to grove's end
};

class cli_shutdown : public cli_test {
 protected:
  interrupted interrupt(const std::string& mode, int signo, bool to_group,
                        std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"-j2", "--line-buffer", "--joblog", path("joblog.tsv")};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {job(mode), ":::", "a", "b", "c", "d"});
    child_process c = start(args);
    EXPECT_TRUE(both_started(c));
    auto sent = std::chrono::steady_clock::now();
    to_group ? c.signal_group(signo) : c.signal(signo);
    interrupted r{c.wait(), "", "", {}};
    r.took = std::chrono::steady_clock::now() - sent;
    r.log = slurp(path("signals.log"));
    r.joblog = slurp(path("joblog.tsv"));
    return r;
  }

  static void expect_died_by(const child_result& r, int signo) {
    EXPECT_FALSE(r.watchdog_fired);
    ASSERT_TRUE(WIFSIGNALED(r.status)) << "status " << r.status << "\n" << r.out << r.err;
    EXPECT_EQ(WTERMSIG(r.status), signo);
  }
};

std::vector<std::string> states(const std::string& joblog) {
  std::vector<std::string> s;
  for (const auto& line : lines_of(joblog)) s.push_back(line.substr(line.rfind('\t') + 1));
  return s;
}

TEST_F(cli_shutdown, sigint_to_grove_alone_reaches_each_running_job_once) {
  interrupted r = interrupt("obey", SIGINT, false);
  expect_died_by(r.result, SIGINT);
  EXPECT_EQ(count_of(r.log, "a got INT"), 1) << r.log;
  EXPECT_EQ(count_of(r.log, "b got INT"), 1) << r.log;
  EXPECT_EQ(count_of(r.log, " got "), 2) << "queued jobs must never start: " << r.log;
  EXPECT_EQ(states(r.joblog),
            (std::vector<std::string>{"State", "cancelled", "cancelled", "skipped", "skipped"}))
      << r.joblog;
  EXPECT_NE(r.result.err.find("interrupted by SIGINT"), std::string::npos) << r.result.err;
}

// A terminal's Ctrl+C goes to grove's whole process group; the jobs lead
// groups of their own, so they hear it from grove, once.
TEST_F(cli_shutdown, ctrl_c_to_the_process_group_reaches_each_job_once) {
  interrupted r = interrupt("obey", SIGINT, true);
  expect_died_by(r.result, SIGINT);
  EXPECT_EQ(count_of(r.log, "a got INT"), 1) << r.log;
  EXPECT_EQ(count_of(r.log, "b got INT"), 1) << r.log;
}

TEST_F(cli_shutdown, sigterm_is_forwarded_as_sigterm_and_sighup_as_sighup) {
  interrupted term = interrupt("obey", SIGTERM, false);
  expect_died_by(term.result, SIGTERM);
  EXPECT_EQ(count_of(term.log, "got TERM"), 2) << term.log;
  std::remove(path("signals.log").c_str());
  std::remove(path("joblog.tsv").c_str());
  interrupted hup = interrupt("obey", SIGHUP, false);
  expect_died_by(hup.result, SIGHUP);
  EXPECT_EQ(count_of(hup.log, "got HUP"), 2) << hup.log;
}

TEST_F(cli_shutdown, a_slow_cleanup_finishes_within_the_grace_period) {
  interrupted r = interrupt("slow", SIGTERM, false, {"--grace", "20s"});
  expect_died_by(r.result, SIGTERM);
  EXPECT_EQ(count_of(r.log, "cleaned up"), 2) << r.log;
}

TEST_F(cli_shutdown, a_job_that_ignores_the_signal_is_killed_after_the_grace_not_before) {
  interrupted r = interrupt("ignore", SIGINT, false, {"--grace", "400ms"});
  expect_died_by(r.result, SIGINT);
  EXPECT_EQ(count_of(r.log, "got INT"), 2) << r.log;
  EXPECT_GE(r.took, 400ms);
  int killed = 0;
  for (const auto& line : lines_of(r.joblog)) {
    auto cols = tsv_columns(line);
    if (cols.at(9) == "cancelled") killed += cols.at(7) == std::to_string(SIGKILL);
  }
  EXPECT_EQ(killed, 2) << r.joblog;
}

// A job stopped during the shutdown is in the joblog as soon as it is
// reaped, not when the last job is: a supervisor's SIGKILL at its deadline
// must not lose it.
TEST_F(cli_shutdown, a_stopped_job_is_logged_as_it_ends_not_when_the_run_ends) {
  child_process c =
      start({"-j2", "--line-buffer", "--grace", "1h", "--joblog", path("log.tsv"),
             "case {} in fast) trap 'echo fast done; exit 3' TERM;; *) trap '' TERM;; "
             "esac; echo {} started; sleep 1000 & wait",
             ":::", "fast", "stubborn"});
  ASSERT_TRUE(c.read_until([](const std::string& out) {
    return child_process::has_line(out, "fast started") &&
           child_process::has_line(out, "stubborn started");
  }));
  c.signal(SIGTERM);
  ASSERT_TRUE(c.read_until_line("fast done"));
  // The line follows the reap and a drain of its pipes: poll the file (the
  // stubborn job holds grove for an hour, so nothing else ends meanwhile).
  std::string log;
  for (int i = 0; i < 2000 && log.find("\tcancelled") == std::string::npos; ++i) {
    std::this_thread::sleep_for(5ms);
    log = slurp(path("log.tsv"));
  }
  auto rows = lines_of(log);
  ASSERT_EQ(rows.size(), 2u) << log;  // the header and the fast job: the stubborn one runs
  EXPECT_EQ(tsv_columns(rows[1]).at(0), "1");
  EXPECT_EQ(tsv_columns(rows[1]).at(9), "cancelled");
  c.signal(SIGKILL);  // as a supervisor does at its deadline
  c.wait();
  kill_all_with(mark_);  // the stubborn job: nothing could stop it
  EXPECT_EQ(lines_of(slurp(path("log.tsv"))).size(), 2u);
}

// --line-buffer: a forced stop still prints the unfinished last line.
TEST_F(cli_shutdown, a_forced_stop_prints_an_unfinished_line) {
  std::string fifo = path("ready");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  child_process c =
      start({"--line-buffer", "--grace", "1h",
             "trap '' INT; printf no-newline-{}; echo > " + fifo + "; sleep 1000", ":::", "a"});
  int fd = ::open(fifo.c_str(), O_RDONLY);  // blocks until the job opens it
  ASSERT_GE(fd, 0);
  char buf[8];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
  ::close(fd);
  c.signal(SIGINT);
  ASSERT_TRUE(
      c.read_err_until_line("grove: SIGINT: no new job starts; 1 running get SIGINT, SIGKILL after "
                            "the grace period; signal "
                            "again to kill them now"));
  std::this_thread::sleep_for(60ms);  // out of the debounce window
  c.signal(SIGINT);
  child_result r = c.wait();
  expect_died_by(r, SIGINT);
  EXPECT_EQ(r.out, "no-newline-a");
}

TEST_F(cli_shutdown, a_second_signal_kills_at_once) {
  child_process c =
      start({"-j2", "--line-buffer", "--grace", "1h", job("ignore"), ":::", "a", "b"});
  ASSERT_TRUE(both_started(c));
  c.signal(SIGINT);
  ASSERT_TRUE(
      c.read_err_until_line("grove: SIGINT: no new job starts; 2 running get SIGINT, SIGKILL after "
                            "the grace period; signal "
                            "again to kill them now"));
  // Signals closer than run_options::debounce (50 ms) count as one Ctrl+C
  // delivered twice; waiting that window out is the behaviour under test.
  std::this_thread::sleep_for(60ms);
  auto second = std::chrono::steady_clock::now();
  c.signal(SIGINT);
  child_result r = c.wait();
  expect_died_by(r, SIGINT);
  EXPECT_LT(std::chrono::steady_clock::now() - second, 15s) << "the grace is an hour";
  EXPECT_NE(r.err.find("killing the running jobs"), std::string::npos) << r.err;
}

TEST_F(cli_shutdown, a_setsid_escapee_is_signalled_and_reaped_before_grove_exits) {
  interrupted r = interrupt("escape", SIGTERM, false);
  expect_died_by(r.result, SIGTERM);
  // TearDown: nothing with the marker is left, the escaped sleeps included.
}

// The escapee ignores the signal, and the grace is an hour: the sweep waits
// for it until a second signal, which SIGKILLs it; the summary still comes.
TEST_F(cli_shutdown, a_second_signal_during_the_sweep_kills_the_escapees_and_the_summary_comes) {
  child_process c =
      start({"-j1", "--line-buffer", "--grace", "1h", job("escape-stubborn"), ":::", "a"});
  ASSERT_TRUE(c.read_until_line("a started"));
  c.signal(SIGINT);
  ASSERT_TRUE(
      c.read_err_until_line("grove: SIGINT: no new job starts; 1 running get SIGINT, SIGKILL after "
                            "the grace period; signal "
                            "again to kill them now"));
  std::this_thread::sleep_for(
      60ms);  // out of the debounce window: see a_second_signal_kills_at_once
  c.signal(SIGINT);
  child_result r = c.wait();
  expect_died_by(r, SIGINT);
  EXPECT_NE(r.err.find("grove: 1 job: 0 ok, 0 failed, 0 timed out, 1 cancelled, 0 skipped"),
            std::string::npos)
      << r.err;
}

// A job that ignores the signal and still finishes its work is ok: --resume
// must not run it again. One that fails meanwhile was stopped by grove.
TEST_F(cli_shutdown, a_job_that_finishes_its_work_during_the_shutdown_is_ok) {
  child_process c = start({"-j2", "--line-buffer", "--joblog", path("log.tsv"),
                           "trap '' INT; echo started {}; sleep 0.5; exit {}", ":::", "0", "1"});
  ASSERT_TRUE(c.read_until([](const std::string& out) {
    return child_process::has_line(out, "started 0") && child_process::has_line(out, "started 1");
  }));
  c.signal(SIGINT);
  expect_died_by(c.wait(), SIGINT);
  std::map<std::string, std::string> state;
  for (const auto& line : lines_of(slurp(path("log.tsv"))))
    state[line.substr(0, line.find('\t'))] = line.substr(line.rfind('\t') + 1);
  EXPECT_EQ(state, (std::map<std::string, std::string>{
                       {"Seq", "State"}, {"1", "ok"}, {"2", "cancelled"}}));
}

// Grouped output: a job's output is printed when it ends, and an
// interrupted job's is printed too, not discarded. The jobs say they run
// through a FIFO (grove prints nothing of theirs before they end).
TEST_F(cli_shutdown, output_already_captured_from_interrupted_jobs_is_printed) {
  std::string fifo = path("ready");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  child_process c =
      start({"-j2", "echo partial {}; echo {} > " + fifo + "; exec sleep 1000", ":::", "a", "b"});
  std::string seen;
  while (seen.find("a\n") == std::string::npos || seen.find("b\n") == std::string::npos) {
    int fd = ::open(fifo.c_str(), O_RDONLY);  // blocks until a job opens it
    ASSERT_GE(fd, 0);
    char buf[64];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
      seen.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
  }
  c.signal(SIGINT);
  child_result r = c.wait();
  expect_died_by(r, SIGINT);
  EXPECT_TRUE(child_process::has_line(r.out, "partial a")) << r.out;
  EXPECT_TRUE(child_process::has_line(r.out, "partial b")) << r.out;
}

}  // namespace
}  // namespace grove::testing
