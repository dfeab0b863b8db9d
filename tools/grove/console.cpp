#include "console.hpp"

#include <unistd.h>

#include <cerrno>

namespace grove::cli {

bool write_fully(int fd, std::string_view s) noexcept {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void console::out(std::string_view s) noexcept {
  if (s.empty() || stdout_broken_) return;
  clear_status();
  if (!write_fully(STDOUT_FILENO, s)) stdout_broken_ = true;
}

void console::err(std::string_view s) noexcept {
  if (s.empty()) return;
  clear_status();
  write_fully(STDERR_FILENO, s);
}

void console::status(const std::string& line) noexcept {
  if (!status_line_) return;
  write_fully(STDERR_FILENO, "\r\x1b[K" + line);
  drawn_ = true;
}

void console::clear_status() noexcept {
  if (!drawn_) return;
  write_fully(STDERR_FILENO, "\r\x1b[K");
  drawn_ = false;
}

std::string console::paint(std::string_view s, const char* sgr) const {
  if (!color_ || !*sgr) return std::string(s);
  return std::string(sgr) + std::string(s) + "\x1b[0m";
}

}  // namespace grove::cli
