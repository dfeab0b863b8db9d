#include "descendants.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <grove/cancel.hpp>
#include <grove/time.hpp>
#include <string>

namespace grove::cli {

bool become_subreaper() noexcept {
  return ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

std::vector<pid_t> adopted_children(const std::unordered_set<pid_t>& jobs) {
  std::vector<pid_t> found;
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return found;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
    for (pid_t pid; in >> pid;)
      if (!jobs.contains(pid)) found.push_back(pid);
  }
  ::closedir(d);
  return found;
}

namespace {

// Reaps `p` if it has exited; true when it is gone (reaped, or not ours).
bool reaped(pid_t p) noexcept {
  int rc;
  do rc = ::waitpid(p, nullptr, WNOHANG);
  while (rc < 0 && errno == EINTR);
  return rc != 0;
}

}  // namespace

void reap_exited(const std::vector<pid_t>& pids) noexcept {
  for (pid_t p : pids) reaped(p);
}

namespace {

// Until each one is reaped; false when `grace` ran out first.
task<bool> reap_within(std::vector<pid_t> pids, duration grace) {
  time_point until = add_saturating(now(), grace);
  for (;;) {
    std::erase_if(pids, reaped);
    if (pids.empty()) co_return true;
    if (now() >= until) co_return false;
    co_await sleep(std::chrono::milliseconds(5));  // adopted ones have no pidfd of ours
  }
}

void kill_group_of(pid_t p, int signo) noexcept {
  ::kill(p, signo);
  if (::getpgid(p) == p) ::kill(-p, signo);
}

// The last resort, when the sweep is cut short: SIGKILL, then a blocking reap,
// round after round, since a killed escapee's own children are adopted next.
void kill_and_reap_all() noexcept {
  for (int round = 0; round < 8; ++round) {
    std::vector<pid_t> left = adopted_children({});
    if (left.empty()) return;
    for (pid_t p : left) kill_group_of(p, SIGKILL);
    for (pid_t p : left)
      while (::waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
      }
  }
}

struct last_resort {
  ~last_resort() { kill_and_reap_all(); }
};

}  // namespace

namespace {

task<void> sweep_rounds(int signo, duration grace) {
  for (int round = 0; round < 8; ++round) {
    std::vector<pid_t> left = adopted_children({});
    if (left.empty()) co_return;
    for (pid_t p : left) kill_group_of(p, signo);
    if (co_await reap_within(left, grace)) continue;
    for (pid_t p : adopted_children({})) kill_group_of(p, SIGKILL);
    co_await reap_within(adopted_children({}), std::chrono::seconds(5));
  }
}

}  // namespace

// Shielded: it runs its course during a graceful shutdown; a forced one cuts
// it short, and the guard kills what is left.
task<void> sweep_adopted(int signo, duration grace) {
  last_resort guard;
  co_await shield(sweep_rounds(signo, grace));
}

}  // namespace grove::cli
