// Helpers shared by the I/O tests.
#pragma once

#include <dirent.h>

#include <cstddef>
#include <span>
#include <string>

namespace grove::testing {

inline std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Descriptors open in this process (tests compare before and after).
inline int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

}  // namespace grove::testing
