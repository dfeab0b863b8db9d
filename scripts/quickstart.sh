#!/usr/bin/env bash
# Sets up, builds (clang-19, release) and runs the main example: 20 jobs,
# at most 4 at a time. Press Ctrl+C while it runs to see a clean shutdown.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target run_tasks
exec build/release/examples/run_tasks "${1:-20}" "${2:-4}"
