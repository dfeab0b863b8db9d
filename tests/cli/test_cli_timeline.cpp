// grove --timeline: the HTML page of a real run has one bar per job, of its
// joblog state's class, in the slot it ran in; grove's signals and --halt are
// marked; it is written after a shutdown signal too; command lines are
// escaped and nothing is fetched; a file that cannot be written is an error,
// at the start (exit 2) or at the end (exit 255). And Chromium, when it is
// installed, renders it without a console message and counts the bars.
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "cli/cli_testing.hpp"

namespace grove::testing {
namespace {

using namespace std::chrono_literals;

class cli_timeline : public cli_test {
 protected:
  // One job of each state but cancelled, one at a time: ok, failed (exit
  // 3), timeout, and the last skipped by the --halt that the timeout
  // triggers (the second failure).
  child_result run_mixed() const {
    return run({"-j1", "--timeout", "300ms", "--halt", "soon,fail=2", "--timeline", path("t.html"),
                "case {} in ok) true;; bad) exit 3;; slow) exec sleep 1000;; esac", ":::", "ok",
                "bad", "slow", "ok"});
  }

  std::string page() const { return slurp(path("t.html")); }

  static int bars(const std::string& html, const std::string& state) {
    return count_of(html, "class=\"bar " + state + "\"");
  }

  static void expect_died_by(const child_result& r, int signo) {
    EXPECT_FALSE(r.watchdog_fired);
    ASSERT_TRUE(WIFSIGNALED(r.status)) << "status " << r.status << "\n" << r.out << r.err;
    EXPECT_EQ(WTERMSIG(r.status), signo);
  }
};

int exit_code(const child_result& r) {
  EXPECT_TRUE(WIFEXITED(r.status)) << r.out << r.err;
  return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
}

TEST_F(cli_timeline, has_a_bar_per_job_of_its_states_class_and_the_halt_marked) {
  child_result r = run_mixed();
  EXPECT_EQ(exit_code(r), 2) << r.err;
  std::string html = page();
  ASSERT_TRUE(html.starts_with("<!DOCTYPE html>")) << html;
  EXPECT_TRUE(html.ends_with("</html>\n"));
  EXPECT_EQ(count_of(html, "class=\"bar "), 4) << html;
  EXPECT_EQ(bars(html, "ok"), 1);
  EXPECT_EQ(bars(html, "failed"), 1);
  EXPECT_EQ(bars(html, "timeout"), 1);
  EXPECT_EQ(bars(html, "cancelled"), 0);
  EXPECT_EQ(bars(html, "skipped"), 1);
  // The hover text says what the joblog says; -j1: one slot.
  EXPECT_NE(html.find("#2 failed in slot 1: exit 3\n"), std::string::npos) << html;
  EXPECT_NE(html.find("#3 timeout in slot 1: killed by SIGTERM\n"), std::string::npos) << html;
  EXPECT_NE(html.find("#4 skipped: never started\n"), std::string::npos) << html;
  EXPECT_EQ(count_of(html, " in slot 2:"), 0);
  EXPECT_EQ(count_of(html, "<g class=\"mark\">"), 1);
  EXPECT_NE(html.find("2 failed: waiting for the running jobs, starting no more (--halt)"),
            std::string::npos);
  EXPECT_NE(html.find("4 jobs: 1 ok, 1 failed, 1 timed out, 0 cancelled, 1 skipped"),
            std::string::npos);
}

// The file says the run is unfinished while it runs; after SIGTERM grove
// writes the page before it dies by the signal, the signal marked.
TEST_F(cli_timeline, a_shutdown_signal_is_marked_and_the_page_still_written) {
  child_process c = start({"-j2", "--line-buffer", "--timeline", path("t.html"), job("obey"),
                           ":::", "a", "b", "c", "d"});
  ASSERT_TRUE(both_started(c));
  EXPECT_NE(page().find("writes its timeline here when the run ends"), std::string::npos);
  EXPECT_EQ(count_of(page(), "class=\"bar "), 0);
  c.signal(SIGTERM);
  child_result r = c.wait();
  expect_died_by(r, SIGTERM);
  std::string html = page();
  EXPECT_EQ(count_of(html, "class=\"bar "), 4) << html;
  EXPECT_EQ(bars(html, "cancelled"), 2);
  EXPECT_EQ(bars(html, "skipped"), 2);
  EXPECT_EQ(count_of(html, " in slot 1:"), 1) << "a and b ran at once, in two slots";
  EXPECT_EQ(count_of(html, " in slot 2:"), 1);
  EXPECT_EQ(count_of(html, "<g class=\"mark\">"), 1);
  EXPECT_NE(html.find("SIGTERM: no new job starts; 2 running get SIGTERM"), std::string::npos);
  EXPECT_NE(html.find("interrupted by SIGTERM"), std::string::npos);
}

// A forced stop (a second signal) goes through the same end.
TEST_F(cli_timeline, a_second_signal_is_marked_too) {
  child_process c = start({"-j2", "--line-buffer", "--grace", "1h", "--timeline", path("t.html"),
                           job("ignore"), ":::", "a", "b"});
  ASSERT_TRUE(both_started(c));
  c.signal(SIGINT);
  ASSERT_TRUE(c.read_err_until_line(
      "grove: SIGINT: no new job starts; 2 running get SIGINT, SIGKILL after the grace period; "
      "signal again to kill them now"));
  std::this_thread::sleep_for(60ms);  // out of the debounce window (test_cli_shutdown.cpp)
  c.signal(SIGINT);
  child_result r = c.wait();
  expect_died_by(r, SIGINT);
  std::string html = page();
  EXPECT_EQ(bars(html, "cancelled"), 2) << html;
  EXPECT_EQ(count_of(html, ": killed by SIGKILL\n"), 2);
  EXPECT_EQ(count_of(html, "<g class=\"mark\">"), 2);
  EXPECT_NE(html.find("SIGINT: kill now at "), std::string::npos);
}

TEST_F(cli_timeline, commands_are_escaped_and_nothing_is_fetched) {
  run({"-j1", "--timeline", path("t.html"), "echo", ":::", "</script><script>alert(1)</script>",
       "a&b \"c\" 'd'", std::string("bell\x01")});
  std::string html = page();
  EXPECT_EQ(count_of(html, "class=\"bar ok\""), 3) << html;
  EXPECT_EQ(count_of(html, "<script"), 1) << "only the page's own";
  EXPECT_NE(html.find("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a&amp;b &quot;c&quot; &#39;"), std::string::npos);
  EXPECT_NE(html.find("bell\xEF\xBF\xBD"), std::string::npos) << "a control character";
  for (const char* fetch : {"http:", "https:", "src=", "href=", "url(", "@import", "<link"}) {
    EXPECT_EQ(html.find(fetch), std::string::npos) << fetch;
  }
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none';"),
            std::string::npos);
}

TEST_F(cli_timeline, a_file_that_cannot_be_created_is_bad_usage_and_nothing_runs) {
  child_result r = run({"--timeline", path("no/such/dir/t.html"), "touch", ":::", path("ran")});
  EXPECT_EQ(exit_code(r), 2);
  EXPECT_NE(r.err.find("grove: --timeline: open " + path("no/such/dir/t.html") +
                       ": No such file or directory"),
            std::string::npos)
      << r.err;
  EXPECT_NE(::access(path("ran").c_str(), F_OK), 0) << "a job ran";
}

// The unfinished page fits under the file size limit, the final one (a
// bar per job) does not: write(2) fails with EFBIG (SIGXFSZ ignored).
TEST_F(cli_timeline, a_failed_final_write_is_reported_and_the_status_is_255) {
  std::ostringstream script;
  script << "trap '' XFSZ; ulimit -f 8; exec " << grove_tool << " -j4 --timeline t.html true :::";
  for (int i = 0; i < 60; ++i) script << " " << i;
  child_result r = run_shell(script.str());
  EXPECT_EQ(exit_code(r), 255) << r.err;
  EXPECT_NE(r.err.find("grove: --timeline: write t.html: File too large"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("grove: 60 jobs: 60 ok"), std::string::npos) << r.err;
}

// --- in a browser -------------------------------------------------------------

std::string find_chromium() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((dir + "/chromium").c_str(), X_OK) == 0) return dir + "/chromium";
  return ::access("/usr/bin/chromium", X_OK) == 0 ? "/usr/bin/chromium" : "";
}

// Headless, with a profile of its own in the test's directory. The child's
// watchdog bounds it (20 s; a render takes about one).
child_result chromium(const std::string& exe, const std::string& dir,
                      std::vector<std::string> args) {
  std::vector<std::string> argv{exe,
                                "--headless",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--no-first-run",
                                "--user-data-dir=" + dir + "/chromium"};
  argv.insert(argv.end(), args.begin(), args.end());
  return child_process(std::move(argv)).wait();
}

// The page's console messages, from Chromium's log (the rest is noise about
// D-Bus and GPUs).
std::string console_lines(const std::string& log) {
  std::string out;
  for (const auto& line : lines_of(log))
    if (line.find(":CONSOLE") != std::string::npos) out += line + "\n";
  return out;
}

TEST_F(cli_timeline, chromium_renders_it_without_a_console_message_and_counts_the_bars) {
  std::string exe = find_chromium();
  if (exe.empty()) {
    GTEST_SKIP() << "chromium is not installed (Debian: apt-get install chromium; "
                    "scripts/setup.sh installs it): the page is not checked in a browser";
  }
  run_mixed();
  std::string url = "file://" + path("t.html");
  // Any console line is a failure: a script error, or a fetch the page's
  // Content-Security-Policy refused. The script marks <body> at its end.
  child_result dom = chromium(exe, dir_, {"--enable-logging=stderr", "--v=0", "--dump-dom", url});
  EXPECT_FALSE(dom.watchdog_fired);
  EXPECT_EQ(console_lines(dom.err), "");
  EXPECT_NE(dom.out.find("<body data-bars=\"4\" data-ready=\"yes\">"), std::string::npos)
      << dom.out;
  child_result shot =
      chromium(exe, dir_, {"--screenshot=" + path("t.png"), "--window-size=1200,800", url});
  EXPECT_FALSE(shot.watchdog_fired);
  std::string png = slurp(path("t.png"));
  ASSERT_GE(png.size(), 24u) << shot.err;
  EXPECT_TRUE(png.starts_with("\x89PNG\r\n\x1a\n"));
  auto be32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = at; i < at + 4; ++i) v = v << 8 | static_cast<unsigned char>(png[i]);
    return v;
  };
  EXPECT_EQ(be32(16), 1200u) << "IHDR width";
  EXPECT_EQ(be32(20), 800u) << "IHDR height";
  // A blank 1200x800 page compresses to about 4 KB; this one has bars and text.
  EXPECT_GT(png.size(), 15000u);
}

}  // namespace
}  // namespace grove::testing
