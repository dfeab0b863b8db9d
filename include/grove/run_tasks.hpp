// run_tasks: the seed's concurrent job runner, with a report for every job.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <grove/event_loop.hpp>
#include <grove/gather.hpp>
#include <grove/task.hpp>
#include <grove/task_group.hpp>
#include <optional>
#include <string>
#include <vector>

namespace grove {

enum class job_state {
  not_started,  // queued, and never started (cancelled first)
  completed,    // returned normally
  failed,       // threw; see job_result::error
  cancelled,    // was running when cancelled; its cleanup has run
};

const char* to_string(job_state s) noexcept;

struct job_result {
  job_state state = job_state::not_started;
  std::exception_ptr error;  // set when failed
  // On the loop clock, read once per loop iteration (a job that starts or
  // ends in an iteration gets the time that iteration began).
  std::optional<time_point> started;
  std::optional<time_point> ended;
};

// What happened to every job of one run_tasks call, in input order.
class run_report {
 public:
  const std::vector<job_result>& jobs() const noexcept { return jobs_; }
  std::size_t size() const noexcept { return jobs_.size(); }
  std::size_t count(job_state s) const noexcept;
  // True when some job was cancelled or never started.
  bool interrupted() const noexcept;
  time_point started_at() const noexcept { return started_at_; }
  time_point ended_at() const noexcept { return ended_at_; }

  // "10 jobs: 7 completed, 1 failed, 1 cancelled, 1 not started (interrupted)"
  // followed by one line per failed job with its error.
  std::string summary() const;
  // {"jobs":[{"index":0,"state":"completed","start_ms":0.0,"end_ms":1000.0}, …],
  //  "counts":{…},"interrupted":false,"elapsed_ms":…}; times are relative to
  //  the start of the run.
  std::string to_json() const;

 private:
  friend struct detail_run_tasks_access;
  std::vector<job_result> jobs_;
  time_point started_at_{};
  time_point ended_at_{};
};

struct run_tasks_options {
  // Cancel every running job and start no more on the first failure.
  bool fail_fast = false;
  // Called on the loop thread for every job that started: as it ends when it
  // completed or failed; for a job that was cancelled, when the run ends
  // (after every cleanup), in input order.
  std::function<void(std::size_t index, const job_result&)> on_job_done;
};

using job = std::function<task<void>()>;

// Runs `jobs` with at most `max_concurrent` running at once, in input order.
//
// - A slot is held from a job's start through its end, cleanup included (a
//   job's grove::finally cleanup finishes before the next job takes the slot).
// - A job's failure is recorded and does not stop the others (unless
//   fail_fast).
// - When the awaiting task is cancelled (Ctrl+C through grove::run, a
//   deadline, a group): every running job is cancelled exactly once and its
//   cleanup completes; queued jobs never start. run_tasks still returns the
//   report, accounting for every job; the caller's scope stays cancelled, so
//   the caller may print the report and then unwinds at its next suspension.
//   Cost: O(max_concurrent) for the running jobs; queued jobs cost nothing.
//   Even a caller that is already cancelled when it reaches
//   `co_await run_tasks(...)` gets the report (every job not started): that
//   co_await is the one suspension point that does not cancel at once.
//
// Throws std::invalid_argument at the call when max_concurrent <= 0. An
// empty list gives an empty report without suspending.
task<run_report> run_tasks(std::vector<job> jobs, int max_concurrent,
                           run_tasks_options options = {});

}  // namespace grove
