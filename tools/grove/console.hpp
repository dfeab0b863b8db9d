// grove's own output: job output on stdout/stderr (each block in whole
// writes), and the status line on stderr when it is a terminal, cleared
// before anything else is written and when grove ends.
#pragma once

#include <string>
#include <string_view>

namespace grove::cli {

class console {
 public:
  console(bool status_line, bool color) noexcept : status_line_(status_line), color_(color) {}
  bool color() const noexcept { return color_; }
  bool status_enabled() const noexcept { return status_line_; }

  void out(std::string_view s) noexcept;
  void err(std::string_view s) noexcept;
  // Replaces the status line (nothing when it is off).
  void status(const std::string& line) noexcept;
  void clear_status() noexcept;
  // "\x1b[31m" + s + "\x1b[0m" when colour is on and sgr is not empty.
  std::string paint(std::string_view s, const char* sgr) const;

 private:
  bool status_line_;
  bool color_;
  bool drawn_ = false;
  bool stdout_broken_ = false;  // its reader is gone (grove ... | head): output is dropped
};

// Writes all of s to fd, retrying short writes and EINTR; false on an error.
bool write_fully(int fd, std::string_view s) noexcept;

}  // namespace grove::cli
