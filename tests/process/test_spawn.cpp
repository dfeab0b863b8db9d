// process::spawn: what the child starts with (signal mask and dispositions,
// descriptors, process group, cwd, environment), its pipes, its exit status,
// and the errors spawn itself throws. Real children, real pipes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <grove/cancel.hpp>
#include <grove/process.hpp>
#include <grove/task_group.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "process/process_testing.hpp"

namespace grove::testing {
namespace {

using namespace std::chrono_literals;

// Runs argv with stdout piped; gives its output and status.
struct ran {
  std::string out;
  exit_status status;
};
ran run_sh(const std::string& script, process_options o = {}) {
  o.argv = {"/bin/sh", "-c", script};
  o.stdout_ = stdio::pipe;
  auto r = run_real([](process_options opt) -> task<ran> {
    process p = process::spawn(std::move(opt));
    std::string out = co_await read_all(p.stdout_stream());
    exit_status st = co_await p.wait();
    co_return ran{out, st};
  }(std::move(o)));
  return std::move(r).value();
}

TEST(spawn, exit_codes_and_signals_are_reported_with_their_shell_code) {
  int fds = open_fds();
  ran ok = run_sh("exit 0");
  EXPECT_TRUE(ok.status.exited());
  EXPECT_TRUE(ok.status.ok());
  ran three = run_sh("exit 3");
  EXPECT_EQ(three.status.code(), 3);
  EXPECT_EQ(three.status.shell_code(), 3);
  EXPECT_FALSE(three.status.signaled());
  EXPECT_EQ(three.status.describe(), "exited with code 3");
  ran killed = run_sh("kill -TERM $$");
  EXPECT_TRUE(killed.status.signaled());
  EXPECT_EQ(killed.status.signal(), SIGTERM);
  EXPECT_EQ(killed.status.code(), 0);
  EXPECT_EQ(killed.status.shell_code(), 128 + SIGTERM);
  EXPECT_EQ(killed.status.describe(), "killed by SIGTERM");
  EXPECT_EQ(open_fds(), fds);
}

TEST(spawn, argv0_is_searched_in_path_and_the_arguments_arrive_unchanged) {
  process_options o;
  o.argv = {"printf", "%s|", "a b", "", "$HOME", "*"};
  o.stdout_ = stdio::pipe;
  auto r = run_real([](process_options opt) -> task<std::string> {
    process p = process::spawn(std::move(opt));
    std::string out = co_await read_all(p.stdout_stream());
    co_await p.wait();
    co_return out;
  }(std::move(o)));
  EXPECT_EQ(r.value(), "a b||$HOME|*|");
}

TEST(spawn, a_missing_program_throws_enoent_from_spawn_and_leaves_nothing) {
  int fds = open_fds();
  process_options o;
  o.argv = {"grove-no-such-program-here"};
  o.stdout_ = stdio::pipe;
  try {
    process::spawn(o);
    FAIL() << "spawn did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("grove-no-such-program-here"), std::string::npos)
        << e.what();
  }
  o.argv = {"/nonexistent/dir/prog"};
  EXPECT_THROW(process::spawn(o), std::system_error);
  EXPECT_EQ(open_fds(), fds);
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // no child, not even a zombie
  EXPECT_EQ(errno, ECHILD);
}

TEST(spawn, a_file_without_execute_permission_throws_eacces) {
  char path[] = "/tmp/grove-noexec-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "#!/bin/sh\n", 10), 10);
  ::close(fd);
  ::chmod(path, 0644);
  int fds = open_fds();
  process_options o;
  o.argv = {path};
  try {
    process::spawn(o);
    ADD_FAILURE() << "spawn did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EACCES) << e.what();
  }
  EXPECT_EQ(open_fds(), fds);
  ::unlink(path);
}

TEST(spawn, bad_options_are_refused_before_anything_starts) {
  EXPECT_THROW(process::spawn({}), std::invalid_argument);
  process_options o;
  o.argv = {"true"};
  o.terminate_signal = 0;
  EXPECT_THROW(process::spawn(o), std::invalid_argument);
}

// What grove::run does to the loop thread: shutdown signals blocked, and
// SIGPIPE ignored by grove::io; plus a signal the program itself ignores.
TEST(spawn, the_child_starts_with_an_empty_mask_and_default_dispositions) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  struct sigaction ign{}, old_hup{}, old_pipe{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGHUP, &ign, &old_hup);
  ::sigaction(SIGPIPE, &ign, &old_pipe);

  ran r = run_sh("grep -E '^Sig(Blk|Ign):' /proc/self/status");

  ::sigaction(SIGHUP, &old_hup, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(r.out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST(spawn, the_child_sees_only_descriptors_0_to_2) {
  int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC, on purpose
  ASSERT_GE(leaked, 3);
  auto [r, w] = make_pipe();  // grove's own, close-on-exec
  ran out = run_sh("ls /proc/$$/fd");
  ::close(leaked);
  EXPECT_EQ(out.out, "0\n1\n2\n");
}

TEST(spawn, the_child_leads_its_own_process_group_unless_told_otherwise) {
  auto groups = run_real([]() -> task<std::pair<pid_t, pid_t>> {
    process_options o;
    o.argv = {"sleep", "1000"};
    process own = process::spawn(o);
    o.new_process_group = false;
    process shared = process::spawn(o);
    std::pair<pid_t, pid_t> g{::getpgid(own.pid()) - own.pid(), ::getpgid(shared.pid())};
    co_await own.terminate(0s);
    co_await shared.terminate(0s);
    co_return g;
  }());
  EXPECT_EQ(groups.value().first, 0);
  EXPECT_EQ(groups.value().second, ::getpgrp());
}

TEST(spawn, cwd_and_env_are_the_childs) {
  process_options o;
  o.cwd = "/tmp";
  o.env = std::vector<std::string>{"GROVE_ONLY=1"};
  ran r = run_sh("pwd; env | grep -v '^PWD=' | sort", o);
  EXPECT_EQ(r.out, "/tmp\nGROVE_ONLY=1\n");
  o.cwd = "/grove/no/such/dir";
  EXPECT_THROW(run_sh("true", o), std::system_error);
}

TEST(spawn, stdio_null_reads_nothing_and_swallows_output) {
  process_options o;
  o.stdin_ = stdio::null;
  o.stderr_ = stdio::null;
  ran r = run_sh("cat; echo to-stderr >&2; echo done", o);
  EXPECT_EQ(r.out, "done\n");
  EXPECT_TRUE(r.status.ok());
}

TEST(spawn, asking_for_a_stream_that_is_not_a_pipe_is_a_logic_error) {
  auto o = run_real([]() -> task<void> {
    process_options opt;
    opt.argv = {"true"};
    process p = process::spawn(opt);
    EXPECT_THROW(p.stdin_stream(), std::logic_error);
    EXPECT_THROW(p.stdout_stream(), std::logic_error);
    EXPECT_THROW(p.stderr_stream(), std::logic_error);
    co_await p.wait();
  }());
  EXPECT_TRUE(o.has_value());
}

// A line is read as soon as it is written, while the child still runs: it
// waits on its stdin for the reply.
TEST(spawn, output_is_read_as_it_arrives_before_the_child_exits) {
  int fds = open_fds();
  auto o = run_real([]() -> task<std::vector<std::string>> {
    process_options opt;
    opt.argv = {"/bin/sh", "-c", "echo first; read reply; echo got $reply; exit 7"};
    opt.stdin_ = stdio::pipe;
    opt.stdout_ = stdio::pipe;
    process p = process::spawn(opt);
    std::vector<std::string> seen;
    seen.push_back(co_await read_line(p.stdout_stream()));
    seen.push_back(p.status() ? "exited" : "running");
    co_await p.stdin_stream().write_all(bytes("pong\n"));
    seen.push_back(co_await read_line(p.stdout_stream()));
    exit_status st = co_await p.wait();
    seen.push_back(st.describe());
    co_return seen;
  }());
  EXPECT_EQ(o.value(),
            (std::vector<std::string>{"first", "running", "got pong", "exited with code 7"}));
  EXPECT_EQ(open_fds(), fds);
}

// With SIGCHLD ignored the kernel would reap children itself; an inherited
// SIG_IGN is put back to SIG_DFL, a program's own SA_NOCLDWAIT is refused.
TEST(spawn, an_ignored_sigchld_is_reset_and_sa_nocldwait_is_refused) {
  struct sigaction ign{}, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &ign, &old);
  ran r = run_sh("exit 3");
  struct sigaction now{};
  ::sigaction(SIGCHLD, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
  EXPECT_EQ(r.status.code(), 3);
  struct sigaction nowait{};
  nowait.sa_handler = SIG_DFL;
  nowait.sa_flags = SA_NOCLDWAIT;
  ::sigaction(SIGCHLD, &nowait, nullptr);
  process_options o;
  o.argv = {"true"};
  EXPECT_THROW(process::spawn(o), std::logic_error);
  ::sigaction(SIGCHLD, &old, nullptr);
}

TEST(spawn, a_waited_process_reports_its_status_again_without_waiting) {
  auto o = run_real([]() -> task<int> {
    process_options opt;
    opt.argv = {"/bin/sh", "-c", "exit 5"};
    process p = process::spawn(opt);
    exit_status a = co_await p.wait();
    exit_status b = co_await p.wait();
    p.send_signal(SIGKILL);  // reaped: nothing is signalled
    co_return a.code() * 10 + b.code();
  }());
  EXPECT_EQ(o.value(), 55);
}

}  // namespace
}  // namespace grove::testing
