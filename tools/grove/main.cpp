// grove: run shell jobs concurrently, and stop them correctly. docs/cli.md
// is the manual; this file ties the pieces together:
//   options.*      the command line          command.*   templates -> argv
//   joblog.*       joblog, results, resume   console.*   output, status line
//   descendants.*  subreaper / PID 1 sweep   jobs.*      running the jobs
//   timeline.*     --timeline's HTML page
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <grove/run.hpp>
#include <iostream>

#include "jobs.hpp"
#include "options.hpp"

// Started with 0, 1 or 2 closed, the next open() would take its number, and
// job output or the joblog would land in the wrong file: hold them open.
void hold_stdio_open() {
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0 && ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
      std::exit(2);
}

int main(int argc, char** argv) {
  hold_stdio_open();
  std::optional<grove::cli::options> opts;
  try {
    opts = grove::cli::parse(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const grove::cli::usage_error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grove: %s\n", e.what());
    return 2;
  }
  if (!opts) return 0;  // --help, --version
  return grove::cli::run_jobs(*opts);
}
