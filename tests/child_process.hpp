// A child process for real-signal tests: fork/exec in its own process
// group, stdout/stderr on pipes, reading until a given line (the only
// synchronisation: nothing sleeps), and a 20 s watchdog that SIGKILLs the
// group and fails the test — a safety net against hangs, never a way to wait.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace grove::testing {

using namespace std::chrono_literals;

struct child_options {
  bool ignore_sigint = false;  // start the child with SIGINT set to SIG_IGN
};

struct child_result {
  int status = 0;
  std::string out;
  std::string err;
  bool watchdog_fired = false;
};

class child_process {
 public:
  explicit child_process(std::vector<std::string> args, child_options opt = {}) {
    if (::access(args.at(0).c_str(), X_OK) != 0)
      throw std::runtime_error(args[0] +
                               " is not built: build the test helpers too "
                               "(ninja run_signal_child run_as_pid1, or plain ninja)");
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
      throw std::runtime_error("pipe2 failed");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls until exec.
      ::setpgid(0, 0);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGINT, opt.ignore_sigint ? SIG_IGN : SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::dup2(err_pipe[1], STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);  // also here, so kill(-pid) works before the child runs
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
    watchdog_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, 20s, [this] { return finished_; })) {
        fired_ = true;
        ::kill(-pid_, SIGKILL);
      }
    });
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  ~child_process() {
    if (!reaped_) {
      ::kill(-pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    stop_watchdog();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  pid_t pid() const { return pid_; }
  void signal(int signo) const { ::kill(pid_, signo); }
  void signal_group(int signo) const { ::kill(-pid_, signo); }

  // Reads stdout until a complete line equal to `line` has arrived.
  // False at end of file (the child died or closed stdout first).
  bool read_until_line(const std::string& line) {
    return read_until([&](const std::string& out) { return has_line(out, line); });
  }

  // Reads stdout until `done(everything read so far)` holds; false at EOF.
  template <class Pred>
  bool read_until(Pred done) {
    return read_stream_until(out_fd_, out_, done);
  }

  // The same on stderr.
  template <class Pred>
  bool read_err_until(Pred done) {
    return read_stream_until(err_fd_, err_, done);
  }
  bool read_err_until_line(const std::string& line) {
    return read_stream_until(err_fd_, err_,
                             [&](const std::string& err) { return has_line(err, line); });
  }

  // Reads stdout and stderr to the end, then reaps the child.
  child_result wait() {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    std::string* bufs[2] = {&out_, &err_};
    int open = 2;
    while (open > 0) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        char buf[4096];
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          bufs[i]->append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          fds[i].fd = -1;
          --open;
        }
      }
    }
    // Wait without reaping, so the watchdog can never signal a recycled pid.
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR) {
    }
    stop_watchdog();
    child_result r;
    ::waitpid(pid_, &r.status, 0);
    reaped_ = true;
    r.out = out_;
    r.err = err_;
    r.watchdog_fired = fired_;
    return r;
  }

  static bool has_line(const std::string& text, const std::string& line) {
    return count_lines(text, line) > 0;
  }
  static int count_lines(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    int n = 0;
    for (std::string l; std::getline(in, l);)
      if (l == line) ++n;
    return n;
  }

 private:
  template <class Pred>
  static bool read_stream_until(int fd, std::string& text, Pred done) {
    for (;;) {
      if (done(text)) return true;
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      text.append(buf, static_cast<std::size_t>(n));
    }
  }

  void stop_watchdog() {
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  bool reaped_ = false;
  std::thread watchdog_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::atomic<bool> fired_{false};
};

inline std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + ::strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// gtest-friendly status checks that show the whole story on failure.
inline ::testing::AssertionResult killed_by(const child_result& r, int signo) {
  if (r.watchdog_fired)
    return ::testing::AssertionFailure() << "watchdog fired (hang)\nstdout:\n"
                                         << r.out << "stderr:\n"
                                         << r.err;
  if (WIFSIGNALED(r.status) && WTERMSIG(r.status) == signo) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe_status(r.status) << ", expected killed by "
                                       << ::strsignal(signo) << "\nstdout:\n"
                                       << r.out << "stderr:\n"
                                       << r.err;
}

inline ::testing::AssertionResult exited_with(const child_result& r, int code) {
  if (r.watchdog_fired)
    return ::testing::AssertionFailure() << "watchdog fired (hang)\nstdout:\n"
                                         << r.out << "stderr:\n"
                                         << r.err;
  if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << describe_status(r.status) << ", expected exit " << code << "\nstdout:\n"
         << r.out << "stderr:\n"
         << r.err;
}

inline bool has(const child_result& r, const std::string& line) {
  return child_process::has_line(r.out, line);
}
inline int count(const child_result& r, const std::string& line) {
  return child_process::count_lines(r.out, line);
}

}  // namespace grove::testing
