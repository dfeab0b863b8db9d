// The example programs run as real child processes, stopped with real
// signals. Each test reads the child's output up to the line it needs, then
// signals it; the assertions are on what the child printed and on its wait
// status.
//
// examples/run_tasks.cpp, the seed's harness in C++, is tested as a user runs
// it (example_run_tasks). Every shutdown scenario, which needs durations,
// failing cleanups and a debounce window the example does not offer, runs on
// tests/helpers/run_tasks_child.cpp (run_tasks_child): grove::run_tasks under
// grove::run, printing the example's lines.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace {

using namespace grove::testing;

const std::string example = std::string(GROVE_EXAMPLES_DIR) + "/run_tasks";
const std::string helper = std::string(GROVE_TEST_HELPERS_DIR) + "/run_tasks_child";

// The example, with only the arguments a user would give it.
child_process start_example(std::vector<std::string> args) {
  args.insert(args.begin(), example);
  return child_process(std::move(args));
}

// The helper, with the test knobs (see run_tasks_child.cpp).
child_process start(std::vector<std::string> args) {
  args.insert(args.begin(), helper);
  return child_process(std::move(args));
}

std::string task(int id, const std::string& what) {
  return "Task " + std::to_string(id) + what;
}

// Per job: how many times each event was printed.
struct events {
  std::map<int, int> started, finished, cleaning, cleaned, released;
  int peak_running = 0;  // from "started" to "Cleaned up.": the slot is held
};

events parse(const std::string& out) {
  static const std::regex line(
      R"(^Task (\d+)( started| finished|: cleaning up|: Cleaned up\.|: resources released)$)");
  events e;
  int running = 0;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (!std::regex_match(l, m, line)) continue;
    int id = std::stoi(m[1]);
    std::string what = m[2];
    if (what == " started") {
      ++e.started[id];
      e.peak_running = std::max(e.peak_running, ++running);
    } else if (what == " finished") {
      ++e.finished[id];
    } else if (what == ": cleaning up") {
      ++e.cleaning[id];
    } else if (what == ": Cleaned up.") {
      ++e.cleaned[id];
      --running;
    } else {
      ++e.released[id];
    }
  }
  return e;
}

std::string summary(int jobs, int completed, int failed, int cancelled, int not_started) {
  std::string s = std::to_string(jobs) + " jobs: " + std::to_string(completed) + " completed, " +
                  std::to_string(failed) + " failed, " + std::to_string(cancelled) +
                  " cancelled, " + std::to_string(not_started) + " not started";
  if (cancelled + not_started > 0) s += " (interrupted)";
  return s;
}

TEST(run_tasks_child, no_signal_all_complete_the_limit_holds_through_cleanup) {
  auto c = start({"8", "3", "--work-ms", "20", "--cleanup-ms", "20"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 0));
  events e = parse(r.out);
  for (int id = 0; id < 8; ++id) {
    EXPECT_EQ(e.started[id], 1) << id;
    EXPECT_EQ(e.finished[id], 1) << id;
    EXPECT_EQ(e.cleaned[id], 1) << id;
    EXPECT_EQ(e.released[id], 1) << id;
  }
  EXPECT_EQ(e.peak_running, 3);  // never more, and a slot is held until "Cleaned up."
  EXPECT_TRUE(has(r, summary(8, 8, 0, 0, 0)));
}

// Signal once the given jobs have started; every running job cleans up
// exactly once, no queued job starts, the report accounts for all.
void interrupt_after_start(int jobs, int limit, int running, int signo) {
  auto c = start(
      {std::to_string(jobs), std::to_string(limit), "--work-ms", "60000", "--cleanup-ms", "50"});
  ASSERT_TRUE(c.read_until_line(task(running - 1, " started")));
  c.signal(signo);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, signo));
  events e = parse(r.out);
  for (int id = 0; id < jobs; ++id) {
    bool ran = id < running;
    EXPECT_EQ(e.started[id], ran ? 1 : 0) << id;
    EXPECT_EQ(e.cleaned[id], ran ? 1 : 0) << id;
    EXPECT_EQ(e.released[id], ran ? 1 : 0) << id;
    EXPECT_EQ(e.finished[id], 0) << id;
  }
  EXPECT_TRUE(has(r, summary(jobs, 0, 0, running, jobs - running))) << r.out;
}

TEST(run_tasks_child, sigint_with_fewer_jobs_than_slots) {
  interrupt_after_start(2, 5, 2, SIGINT);
}
TEST(run_tasks_child, sigint_with_every_slot_filled) {
  interrupt_after_start(3, 3, 3, SIGINT);
}
TEST(run_tasks_child, sigint_with_jobs_queued_on_the_limit) {
  interrupt_after_start(10, 3, 3, SIGINT);
}
TEST(run_tasks_child, sigterm_kills_by_sigterm_after_cleanup) {
  interrupt_after_start(6, 2, 2, SIGTERM);
}

TEST(run_tasks_child, signal_before_any_job_starts) {
  auto c = start({"4", "2", "--hold-ms", "300", "--work-ms", "60000"});
  ASSERT_TRUE(c.read_until_line("Holding"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(parse(r.out).started.empty()) << r.out;
  EXPECT_TRUE(has(r, summary(4, 0, 0, 0, 4))) << r.out;
}

TEST(run_tasks_child, signal_during_cleanup_lets_it_finish) {
  auto c = start({"3", "1", "--work-ms", "0", "--cleanup-ms", "300"});
  ASSERT_TRUE(c.read_until_line(task(0, ": cleaning up")));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  events e = parse(r.out);
  EXPECT_EQ(e.cleaned[0], 1);       // the shielded cleanup completed
  EXPECT_EQ(e.started.size(), 1u);  // the queued jobs never started
  EXPECT_TRUE(has(r, summary(3, 1, 0, 0, 2))) << r.out;
}

TEST(run_tasks_child, second_signal_during_cleanup_forces_but_raii_still_runs) {
  auto c = start({"2", "2", "--work-ms", "60000", "--cleanup-ms", "60000", "--debounce-ms", "0"});
  ASSERT_TRUE(c.read_until_line(task(1, " started")));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line(task(1, ": cleaning up")));
  auto t0 = std::chrono::steady_clock::now();
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // not the 60 s cleanup
  events e = parse(r.out);
  for (int id = 0; id < 2; ++id) {
    EXPECT_EQ(e.cleaned[id], 0) << id;   // cut short...
    EXPECT_EQ(e.released[id], 1) << id;  // ...but destructors ran, once
  }
  EXPECT_TRUE(has(r, summary(2, 0, 0, 2, 0))) << r.out;
}

// The kernel keeps at most one pending SIGINT, so a test that wants three
// signals counted waits until each stage was announced (on stderr).
TEST(run_tasks_child, three_signals_graceful_forced_then_gone) {
  auto c = start({"4", "2", "--work-ms", "60000", "--cleanup-ms", "60000", "--debounce-ms", "0"});
  ASSERT_TRUE(c.read_until_line(task(1, " started")));
  auto t0 = std::chrono::steady_clock::now();
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_err_until_line("stopping: cleaning up; press Ctrl+C again to force"));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_err_until_line("forcing shutdown"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // well before the 10 s grace
  EXPECT_EQ(parse(r.out).cleaned.size(), 0u);             // the 60 s cleanups were cut short
}

TEST(run_tasks_child, a_duplicate_signal_inside_the_debounce_window_counts_once) {
  // A 2 s window: the second SIGINT, sent as soon as the first was handled,
  // is a duplicate, so the shutdown stays graceful and the cleanups complete.
  auto c = start({"4", "2", "--work-ms", "60000", "--cleanup-ms", "200", "--debounce-ms", "2000"});
  ASSERT_TRUE(c.read_until_line(task(1, " started")));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_err_until_line("stopping: cleaning up; press Ctrl+C again to force"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_EQ(r.err.find("forcing shutdown"), std::string::npos) << r.err;
  events e = parse(r.out);
  EXPECT_EQ(e.cleaned[0], 1);
  EXPECT_EQ(e.cleaned[1], 1);
  EXPECT_TRUE(has(r, summary(4, 0, 0, 2, 2))) << r.out;
}

TEST(run_tasks_child, every_line_arrives_through_a_pipe) {
  auto c = start({"300", "50", "--work-ms", "0", "--cleanup-ms", "0"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 0));
  events e = parse(r.out);
  EXPECT_EQ(e.cleaned.size(), 300u);
  EXPECT_TRUE(has(r, summary(300, 300, 0, 0, 0)));
}

TEST(run_tasks_child, every_line_arrives_through_a_pipe_after_a_signal) {
  auto c = start({"200", "100", "--work-ms", "60000", "--cleanup-ms", "0"});
  ASSERT_TRUE(c.read_until_line(task(99, " started")));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_EQ(parse(r.out).cleaned.size(), 100u);  // flushed before the re-raise
  EXPECT_TRUE(has(r, summary(200, 0, 0, 100, 100)));
}

TEST(run_tasks_child, a_job_that_throws_while_others_are_cancelled_keeps_its_error) {
  auto c = start({"4", "3", "--work-ms", "60000", "--cleanup-ms", "20", "--fail-cleanup", "1"});
  ASSERT_TRUE(c.read_until_line(task(2, " started")));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(has(r, summary(4, 0, 1, 2, 1))) << r.out;
  EXPECT_TRUE(has(r, "  job 1 failed: std::runtime_error: cleanup of task 1 failed")) << r.out;
}

TEST(example_run_tasks, empty_list) {
  auto c = start_example({"0", "3"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 0));
  EXPECT_TRUE(has(r, "0 jobs: 0 completed, 0 failed, 0 cancelled, 0 not started"));
}

TEST(example_run_tasks, zero_and_negative_limits_are_rejected_clearly) {
  for (const char* limit : {"0", "-2"}) {
    auto c = start_example({"3", limit});
    auto r = c.wait();
    EXPECT_TRUE(exited_with(r, 2)) << limit;
    EXPECT_NE(r.err.find("limit"), std::string::npos) << r.err;
    EXPECT_TRUE(parse(r.out).started.empty());
  }
}

// What the README and scripts/quickstart.sh promise for `run_tasks 20 4`:
// one Ctrl+C, and the running jobs print "Cleaned up.", queued jobs never
// start, a report accounts for every job, and the process dies by SIGINT.
// The example's jobs sleep 1 s, so the assertions hold whichever jobs had
// started (or even finished) when the signal arrived.
TEST(example_run_tasks, ctrl_c_as_the_readme_describes) {
  auto c = start_example({"20", "4"});
  ASSERT_TRUE(c.read_until_line(task(3, " started")));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  EXPECT_TRUE(child_process::has_line(r.err, "stopping: cleaning up; press Ctrl+C again to force"))
      << r.err;
  events e = parse(r.out);
  int started = 0;
  int finished = 0;
  for (int id = 0; id < 20; ++id) {
    EXPECT_LE(e.started[id], 1) << id;
    if (e.started[id] == 0) continue;
    ++started;
    finished += e.finished[id];
    EXPECT_EQ(e.cleaned[id], 1) << id;
    EXPECT_EQ(e.released[id], 1) << id;
  }
  EXPECT_GE(started, 4);
  EXPECT_LE(e.peak_running, 4);
  EXPECT_TRUE(has(r, summary(20, finished, 0, started - finished, 20 - started))) << r.out;
}

// The example's own flags: --fail makes jobs throw, --json prints the report
// as JSON, and a failed job makes the exit status 1.
TEST(example_run_tasks, fail_and_json) {
  auto c = start_example({"3", "3", "--fail", "1", "--json"});
  auto r = c.wait();
  ASSERT_TRUE(exited_with(r, 1));
  std::string json = r.out.substr(r.out.rfind("\n{") + 1);
  auto doc = nlohmann::json::parse(json);
  EXPECT_EQ(doc["counts"]["completed"], 2) << json;
  EXPECT_EQ(doc["counts"]["failed"], 1) << json;
  EXPECT_EQ(doc["jobs"][1]["state"], "failed") << json;
  EXPECT_EQ(doc["jobs"][1]["error"], "std::runtime_error: task 1 failed") << json;
  EXPECT_EQ(doc["interrupted"], false) << json;
}

TEST(run_tasks_child, all_jobs_failing_every_error_reported) {
  auto c = start({"3", "2", "--work-ms", "10", "--cleanup-ms", "0", "--fail", "0", "1", "2"});
  auto r = c.wait();
  EXPECT_TRUE(exited_with(r, 1));
  EXPECT_TRUE(has(r, summary(3, 0, 3, 0, 0)));
  for (int id = 0; id < 3; ++id)
    EXPECT_TRUE(has(r, "  job " + std::to_string(id) + " failed: std::runtime_error: task " +
                           std::to_string(id) + " failed"))
        << r.out;
}

TEST(example_quickstart, ctrl_c_cleans_up_running_jobs_and_reports_all_ten) {
  child_process c({std::string(GROVE_EXAMPLES_DIR) + "/quickstart"});
  ASSERT_TRUE(c.read_until_line("job 2 working"));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  for (int id = 0; id < 10; ++id)
    EXPECT_EQ(count(r, "job " + std::to_string(id) + " cleaned up"), id < 3 ? 1 : 0) << r.out;
  EXPECT_TRUE(has(r, "10 jobs: 0 completed, 0 failed, 3 cancelled, 7 not started (interrupted)"))
      << r.out;
}

TEST(example_temp_file_cleanup, ctrl_c_removes_every_file) {
  child_process c({std::string(GROVE_EXAMPLES_DIR) + "/temp_file_cleanup", "3"});
  std::vector<std::string> paths;
  static const std::regex created(R"(^job (\d): created (.+)$)");
  ASSERT_TRUE(c.read_until([&](const std::string& out) {
    std::istringstream in(out);
    int n = 0;
    for (std::string l; std::getline(in, l);) n += std::regex_match(l, created) ? 1 : 0;
    return n == 3;
  }));
  c.signal(SIGINT);
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  std::istringstream in(r.out);
  int removed = 0;
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, created)) {
      EXPECT_NE(::access(m[2].str().c_str(), F_OK), 0) << m[2] << " still exists";
      EXPECT_TRUE(has(r, "job " + m[1].str() + ": removed " + m[2].str()));
      ++removed;
    }
  }
  EXPECT_EQ(removed, 3);
}

// examples/echo_server: Ctrl+C with clients connected. One client is idle,
// one is in the middle of a message: the idle one is closed at once, the
// other gets its whole message echoed, then everything closes and the server
// dies by SIGINT. Plain blocking sockets here (with a receive timeout as a
// watchdog only), on loopback.
namespace echo {

const std::string server = std::string(GROVE_EXAMPLES_DIR) + "/echo_server";

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval watchdog{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &watchdog, sizeof watchdog);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

void send_text(int fd, const std::string& s) {
  EXPECT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

// Up to and including '\n'; what came before end of stream otherwise.
std::string read_line(int fd) {
  std::string line;
  char c = 0;
  while (::recv(fd, &c, 1, 0) == 1) {
    line += c;
    if (c == '\n') break;
  }
  return line;
}

int occurrences(const std::string& text, const std::string& line) {
  int n = 0;
  for (auto at = text.find(line + "\n"); at != std::string::npos;
       at = text.find(line + "\n", at + 1))
    ++n;
  return n;
}

TEST(echo_server, ctrl_c_finishes_the_open_message_closes_the_rest_and_dies_by_sigint) {
  child_process c({server});
  std::smatch m;
  static const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+)\n)");
  std::string out;
  ASSERT_TRUE(c.read_until([&](const std::string& o) {
    out = o;
    return std::regex_search(out, m, listening);
  }));
  int port = std::stoi(m[1]);
  int idle = connect_to(port);
  ASSERT_TRUE(c.read_until_line("conn 1: open"));
  int busy = connect_to(port);
  ASSERT_TRUE(c.read_until_line("conn 2: open"));
  send_text(busy, "first\n");
  EXPECT_EQ(read_line(busy), "first\n");
  send_text(busy, "half a ");
  ASSERT_TRUE(c.read_until(
      [](const std::string& o) { return occurrences(o, "conn 2: message started") == 2; }));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_until_line("stopping: no new connections; open messages finish"));
  EXPECT_EQ(read_line(idle), "");  // closed at once
  send_text(busy, "message\n");
  EXPECT_EQ(read_line(busy), "half a message\n");  // finished after Ctrl+C
  EXPECT_EQ(read_line(busy), "");                  // then closed
  auto r = c.wait();
  EXPECT_TRUE(killed_by(r, SIGINT));
  ::close(idle);
  ::close(busy);
}

}  // namespace echo

}  // namespace
