// --timeline: a run drawn for people, in one self-contained HTML file (inline
// SVG, CSS and a small script; nothing is fetched, and the page's own
// Content-Security-Policy forbids it). One bar per job, in the slot it ran
// in (so the rows show how many ran at once), coloured by its joblog state;
// never-started jobs in a row of their own; grove's own moments (a shutdown
// signal, --halt) as vertical lines; details on hover.
#pragma once

#include <string>
#include <vector>

#include "joblog.hpp"

namespace grove::cli {

// A moment of the run that is grove's, not one job's.
struct timeline_mark {
  double at = 0;      // seconds from the run's start
  std::string label;  // drawn over the line: "SIGINT", "--halt"
  std::string what;   // on hover: what grove printed then
};

// What the page shows. The jobs are the joblog's records, in Seq order.
struct timeline_run {
  std::string command;     // the template
  double start_epoch = 0;  // when the run started, seconds since the epoch
  double seconds = 0;      // how long it took
  int jobs_at_once = 1;    // --jobs
  std::string summary;     // grove's summary line, without "grove: "
  std::vector<const job_record*> jobs;
  std::vector<timeline_mark> marks;
};

// The page. Every job is one element of class "bar STATE" with data-seq;
// its <title> (the hover text) has the times, the exit code or signal and
// the command. The page's script, run to its end, sets data-bars (how many
// bars it found) and data-ready="yes" on <body>.
std::string timeline_html(const timeline_run& run);

// The page written when the run starts, replaced at its end: if grove never
// gets there (SIGKILL, a third signal), it says so.
std::string timeline_unfinished_html(const std::string& command, double start_epoch);

// Creates or replaces the file at `path` with `html` (mode 0644). Throws
// std::system_error naming the path.
void write_timeline(const std::string& path, const std::string& html);

}  // namespace grove::cli
