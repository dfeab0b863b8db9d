// Running the jobs: each one a grove::process in its own process group, at
// most --jobs at once (grove::run_tasks), its output captured or streamed,
// every job accounted for in the joblog and results as it ends.
#pragma once

#include "options.hpp"

namespace grove::cli {

// Runs everything `o` asks for under grove::run and gives the exit status
// (after an interrupt, grove::run re-raises the signal instead of returning).
int run_jobs(const options& o);

}  // namespace grove::cli
