#!/usr/bin/env bash
# Test install.consumer: installs a finished grove build into a fresh prefix,
# then builds and runs tests/install/consumer/ against it twice, as a user
# would: with CMake (find_package(grove) + grove::grove) and with pkg-config.
#
#   run_consumer.sh CMAKE BUILD_DIR SOURCE_DIR WORK_DIR CXX BUILD_TYPE VERSION LIBDIR
#
# CMAKE: the cmake that configured BUILD_DIR; SOURCE_DIR: grove's source tree;
# WORK_DIR: scratch (emptied first; prefix/, cmake-build/, pkg-config/);
# CXX: the compiler BUILD_DIR uses; BUILD_TYPE: its CMAKE_BUILD_TYPE (may be
# empty); VERSION: the project version; LIBDIR: CMAKE_INSTALL_LIBDIR.
# BUILD_DIR must be built already (ctest runs after the build).
# A sanitizer build's flags reach both consumers through the package: the
# CMake targets carry them as usage requirements, and grove.pc lists them.
set -euo pipefail

if (($# != 8)); then
  echo "usage: $0 CMAKE BUILD_DIR SOURCE_DIR WORK_DIR CXX BUILD_TYPE VERSION LIBDIR" >&2
  exit 2
fi
cmake=$1 build_dir=$2 source_dir=$3 work=$4 cxx=$5 build_type=$6 version=$7 libdir=$8
consumer=$source_dir/tests/install/consumer
prefix=$work/prefix

step() { printf '\n== install.consumer: %s\n' "$*"; }
fail() {
  printf 'install.consumer: FAILED: %s\n' "$*" >&2
  exit 1
}

rm -rf -- "${work:?}"
mkdir -p -- "$work"

step "install $build_dir into $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix"
# Every header of the source tree, detail/ included, and the package files.
headers() { (cd "$1" && find grove -name '*.hpp' | LC_ALL=C sort); }
diff <(headers "$source_dir/include") <(headers "$prefix/include") ||
  fail "the installed headers (>) differ from include/grove (<)"
for f in "$libdir/cmake/grove/grove-config.cmake" "$libdir/cmake/grove/grove-config-version.cmake" \
  "$libdir/cmake/grove/grove-targets.cmake" "$libdir/pkgconfig/grove.pc"; do
  [[ -f $prefix/$f ]] || fail "$prefix/$f was not installed"
done
# The package must not point back into the source or build tree.
if grep -rlF -e "$source_dir/" -e "$build_dir/" "$prefix/$libdir/cmake" "$prefix/$libdir/pkgconfig"; then
  fail "the installed package refers to the source or build tree (files above)"
fi

step "CMake consumer: configure, build, run"
cmake_build=$work/cmake-build
"$cmake" -S "$consumer" -B "$cmake_build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF |
  tee "$work/cmake-configure.log"
grep -qF "found grove $version in $prefix/$libdir/cmake/grove" "$work/cmake-configure.log" ||
  fail "find_package(grove) did not find version $version in $prefix"
"$cmake" --build "$cmake_build"
"$cmake_build/grove_consumer" | tee "$work/cmake-run.log"
grep -qF "task group: 3 of 3 children done" "$work/cmake-run.log" || fail "unexpected output"

step "pkg-config consumer: compile with \$(pkg-config --cflags --libs grove), run"
command -v pkg-config >/dev/null || fail "pkg-config is not installed (scripts/setup.sh installs it)"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
[[ $(pkg-config --modversion grove) == "$version" ]] || fail "grove.pc: version is not $version"
[[ $(realpath -- "$(pkg-config --variable=includedir grove)") == "$(realpath -- "$prefix/include")" ]] ||
  fail "grove.pc: includedir does not lie in $prefix"
cflags=$(pkg-config --cflags grove)
libs=$(pkg-config --libs grove)
echo "cflags: $cflags"
echo "libs:   $libs"
mkdir -p -- "$work/pkg-config"
# shellcheck disable=SC2086  # the flags are meant to be split
"$cxx" $cflags "$consumer/main.cpp" -o "$work/pkg-config/grove_consumer" $libs
"$work/pkg-config/grove_consumer" | tee "$work/pkg-config-run.log"
grep -qF "task group: 3 of 3 children done" "$work/pkg-config-run.log" || fail "unexpected output"

step "passed"
