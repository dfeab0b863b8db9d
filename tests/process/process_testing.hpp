// Helpers shared by the process tests: a real loop to run on, and a census
// of the processes a test started, found by a marker in their environment
// (a grandchild that escaped its parent is still found).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <grove/event_loop.hpp>
#include <grove/process.hpp>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "io/io_testing.hpp"

namespace grove::testing {

// The rest of a stream, to its end.
inline task<std::string> read_all(stream& s) {
  std::string out;
  std::array<std::byte, 4096> buf;
  while (std::size_t n = co_await s.read_some(buf))
    out.append(reinterpret_cast<char*>(buf.data()), n);
  co_return out;
}

// One line, without its newline (what there is, at the end of the stream).
inline task<std::string> read_line(stream& s) {
  std::string line;
  std::byte c;
  while (co_await s.read_some(std::span(&c, 1)) == 1) {
    if (c == std::byte{'\n'}) break;
    line += static_cast<char>(c);
  }
  co_return line;
}

template <class T>
outcome<T> run_real(task<T> t) {
  event_loop loop;
  return loop.run(std::move(t));
}

// The environment of this process plus NAME=value.
inline std::vector<std::string> env_with(const std::string& entry) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  env.push_back(entry);
  return env;
}

// A marker unique to this test process and `tag`.
inline std::string marker(const std::string& tag) {
  return "GROVE_TEST_MARKER=" + tag + "-" + std::to_string(::getpid());
}

// A /proc file's contents; empty or short when the process vanishes while
// it is read (an ifstream throws from underflow when read() fails with ESRCH).
inline std::string read_proc(const std::string& path) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

// SIGKILL is pending: the process is on its way out (exiting takes the
// kernel a moment, and a killed grandchild is reaped by its new parent, not
// by the test). It cannot run another instruction of its own.
inline bool dying(const std::string& proc_dir) {
  std::istringstream status(read_proc(proc_dir + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigPnd:", 0) != 0 && line.rfind("ShdPnd:", 0) != 0) continue;
    unsigned long long mask = std::strtoull(line.c_str() + 7, nullptr, 16);
    if (mask & (1ULL << (SIGKILL - 1))) return true;
  }
  return false;
}

// Live processes (zombies and processes with SIGKILL pending excluded) whose
// environment holds `entry`.
inline std::vector<pid_t> processes_with(const std::string& entry) {
  std::vector<pid_t> found;
  DIR* d = ::opendir("/proc");
  if (!d) return found;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string base = std::string("/proc/") + e->d_name;
    std::string stat_line = read_proc(base + "/stat");
    auto close_paren = stat_line.rfind(')');
    if (close_paren == std::string::npos || close_paren + 2 >= stat_line.size() ||
        stat_line[close_paren + 2] == 'Z')
      continue;
    if (dying(base)) continue;
    std::string all = read_proc(base + "/environ");
    std::size_t at = 0;
    while (at < all.size()) {
      std::size_t nul = all.find('\0', at);
      if (nul == std::string::npos) nul = all.size();
      if (all.compare(at, nul - at, entry) == 0) {
        found.push_back(static_cast<pid_t>(pid));
        break;
      }
      at = nul + 1;
    }
  }
  ::closedir(d);
  return found;
}

// Kills whatever a failed test left behind, so one failure does not leak
// processes into the next test.
inline void kill_all_with(const std::string& entry) {
  for (pid_t p : processes_with(entry)) ::kill(p, SIGKILL);
}

}  // namespace grove::testing
