// Private to grove::io: OS errors become std::system_error naming the
// operation ("grove: read", "grove: connect to host:port").
#pragma once

#include <string>
#include <system_error>

namespace grove::detail {

[[noreturn]] inline void throw_os_error(int err, const std::string& op) {
  throw std::system_error(err, std::generic_category(), "grove: " + op);
}

}  // namespace grove::detail
