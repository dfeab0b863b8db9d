// grove: run shell jobs concurrently, and stop them correctly. docs/cli.md
// is the manual; this file ties the pieces together:
//   options.*      the command line          command.*   templates -> argv
//   joblog.*       joblog, results, resume   console.*   output, status line
//   descendants.*  subreaper / PID 1 sweep   jobs.*      running the jobs
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <grove/run.hpp>
#include <iostream>

#include "jobs.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
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
