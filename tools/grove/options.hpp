// The grove command line: what the user asked for, parsed and checked before
// anything starts. docs/cli.md is the manual.
#pragma once

#include <grove/event_loop.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace grove::cli {

// Bad usage: the message is printed, grove exits 2, nothing has started.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --halt: when to stop after failures (GNU parallel's never / soon / now).
struct halt_policy {
  enum class when { never, soon, now };
  when mode = when::never;
  int failures = 1;  // how many failed jobs trigger it
};

enum class color_mode { automatic, always, never };

struct options {
  std::string command;              // the template's words, joined with spaces
  std::vector<std::string> inputs;  // one job per entry, in order
  int jobs = 1;
  std::optional<duration> timeout;  // per job
  duration grace = std::chrono::seconds(10);
  halt_policy halt;
  bool dry_run = false;
  bool keep_order = false;
  bool line_buffer = false;
  bool tag = false;
  std::string joblog;
  std::string results;
  std::string resume;
  std::string timeline;  // an HTML picture of the run, written at its end
  std::string trace;     // a Chrome trace-event file of grove's tasks (GROVE_TRACE)
  color_mode color = color_mode::automatic;
};

// "500ms", "3s", "2m", "1h", or a plain (possibly fractional) number of
// seconds. usage_error otherwise, naming `what`.
duration parse_duration(const std::string& text, const std::string& what);

// "never", "now", "soon", "now,fail=N", "soon,fail=N", "fail=N" (soon).
halt_policy parse_halt(const std::string& text);

// The whole command line (argv[0] excluded). Reads `:::: FILE`s and, when no
// input source is given, stdin (one argument per line). Throws usage_error;
// prints --help / --version itself and returns nullopt (exit 0 then).
std::optional<options> parse(std::vector<std::string> args);

}  // namespace grove::cli
