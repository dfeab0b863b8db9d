// Processes grove adopted: as a subreaper (PR_SET_CHILD_SUBREAPER) or as
// PID 1, a job's descendant that escaped its process group (setsid) becomes
// grove's child when its parent dies. They are signalled and reaped before
// grove exits, and as PID 1 their zombies are reaped as they appear.
#pragma once

#include <sys/types.h>

#include <grove/event_loop.hpp>
#include <grove/task.hpp>
#include <unordered_set>
#include <vector>

namespace grove::cli {

// Makes this process a subreaper for its descendants. False if refused.
bool become_subreaper() noexcept;

// This process's children (from /proc/self/task/*/children), minus `jobs`.
std::vector<pid_t> adopted_children(const std::unordered_set<pid_t>& jobs);

// Reaps those of `pids` that have exited (never blocks).
void reap_exited(const std::vector<pid_t>& pids) noexcept;

// Until no adopted child is left: `signo` to each one and its group, up to
// `grace` for them to exit, then SIGKILL, and reap; bounded by rounds of
// `grace`. Cancelled (a forced stop), it SIGKILLs and reaps what is left
// before its frame is gone, blocking for as long as the kernel needs.
task<void> sweep_adopted(int signo, duration grace);

}  // namespace grove::cli
