// Accounting: the joblog (TSV, GNU parallel's columns plus a state), the
// results file (JSON lines) and --resume. Each line is written with one
// write(2) as its job ends, so a grove killed by SIGKILL loses no finished job.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>

namespace grove::cli {

enum class job_state { ok, failed, timeout, cancelled, skipped };
const char* to_string(job_state s) noexcept;

// One job, as it is accounted for.
struct job_record {
  std::size_t seq = 0;
  std::string input;
  std::string command;  // as a user would type it
  job_state state = job_state::skipped;
  double start_epoch = 0;  // seconds since the epoch; 0: never started
  double runtime = 0;      // seconds
  // Where it ran, for --timeline: seconds from the run's start to its own
  // (the loop's clock, like runtime), and which of the --jobs slots it held
  // (from 1, the lowest free one). 0: never started.
  double start_offset = 0;
  std::size_t slot = 0;
  std::uint64_t received = 0;  // bytes of output
  int exit_value = -1;         // -1: no exit code (never started, or killed)
  int signal = 0;
  std::string out, err;
  std::string error;  // why it could not start
};

class line_file {
 public:
  line_file() = default;
  // Opens for appending (created 0644). Throws std::system_error naming path.
  explicit line_file(const std::string& path);
  line_file(line_file&& o) noexcept;
  line_file& operator=(line_file&& o) noexcept;
  ~line_file();
  explicit operator bool() const noexcept { return fd_ >= 0; }
  bool empty_at_open() const noexcept { return empty_; }
  // One write(2): the line reaches the kernel whole before this returns.
  void write_line(const std::string& line);

 private:
  int fd_ = -1;
  bool empty_ = true;
};

// Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, Signal, Command, State.
std::string joblog_header();
std::string joblog_line(const job_record& r);
// {"seq":1,"input":"a","command":"echo a","state":"ok","exit":0,"signal":0,
//  "start":1732700000.123,"runtime":0.004,"stdout":"a\n","stderr":"","error":""}
std::string results_line(const job_record& r);

// The (seq, command) pairs that a joblog records as ok; none when the file
// does not exist. Throws std::runtime_error when it cannot be read or is not
// a grove joblog.
std::set<std::pair<std::size_t, std::string>> read_ok_jobs(const std::string& path);

}  // namespace grove::cli
