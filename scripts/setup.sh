#!/usr/bin/env bash
# Installs (with apt) whatever grove's build, tests and benchmarks need and
# this Debian 12 machine lacks. Safe to run again: it installs nothing twice.
set -euo pipefail

packages=(
  cmake ninja-build pkg-config   # build; pkg-config for the install.consumer test
  clang-19 libclang-rt-19-dev    # primary compiler and its sanitizer runtimes
  clang-format-19
  g++-12                         # second compiler
  libgtest-dev libbenchmark-dev  # tests and micro-benchmarks
  libcli11-dev libfmt-dev nlohmann-json3-dev
  python3-trio python3-uvloop    # the benchmark anchors (bench/anchors)
  parallel                       # GNU parallel, a benchmark anchor
  libboost-dev                   # Boost.Asio, the W6 echo anchor (bench/w6; optional in CMake)
  librust-tokio-dev              # Tokio's crate sources, the W6 Tokio anchor (bench/w6/echo_tokio)
  chromium                       # headless, renders grove --timeline's page (tests/cli/test_cli_timeline.cpp)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: everything grove needs is installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=()
if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
