// run_as_pid1 PROGRAM [ARGS...]: runs PROGRAM as PID 1 of a new PID
// namespace, as a container runtime does, and reports how it ended on
// stderr: "pid1: exited N" or "pid1: killed by N". The kernel drops a
// default-action signal sent to a namespace's init from inside it, so
// grove::run's re-raise is a no-op there and its exit(128 + signo) fallback
// is what the container runtime sees.
//
// Exits 77 when the namespace cannot be created (no CAP_SYS_ADMIN): the
// test skips. Used by tests/runner/test_run_signals.cpp.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: run_as_pid1 PROGRAM [ARGS...]\n");
    return 2;
  }
  if (::unshare(CLONE_NEWPID) != 0) {
    std::fprintf(stderr, "run_as_pid1: unshare(CLONE_NEWPID): errno %d\n", errno);
    return 77;
  }
  pid_t pid = ::fork();  // the first child in the new namespace is its PID 1
  if (pid < 0) ::_exit(2);
  if (pid == 0) {
    ::execv(argv[1], argv + 1);
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    std::fprintf(stderr, "pid1: exited %d\n", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    std::fprintf(stderr, "pid1: killed by %d\n", WTERMSIG(status));
  std::fflush(nullptr);
  // _exit: after unshare(CLONE_NEWPID) this process cannot create threads,
  // and LeakSanitizer's exit-time check (in sanitizer builds) needs one.
  ::_exit(0);
}
