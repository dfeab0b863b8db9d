#!/usr/bin/env bash
# Sets up, builds (clang-19, release) and runs the main job: the grove
# command line on 24 demonstration jobs, 4 at a time, with a status line.
# Press Ctrl+C while it runs: no new job starts, the running ones get SIGINT
# and clean up, every job is in the joblog, and grove exits by SIGINT.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target grove_tool
log="${TMPDIR:-/tmp}/grove-quickstart.tsv"
rm -f "$log"
echo "joblog: $log"
exec build/release/tools/grove/grove -j4 --joblog "$log" examples/cli/job.sh ::: $(seq -f 'job-%02g' 1 24)
