#include "joblog.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace grove::cli {

const char* to_string(job_state s) noexcept {
  switch (s) {
    case job_state::ok:
      return "ok";
    case job_state::failed:
      return "failed";
    case job_state::timeout:
      return "timeout";
    case job_state::cancelled:
      return "cancelled";
    case job_state::skipped:
      return "skipped";
  }
  return "?";
}

line_file::line_file(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "grove: open " + path);
  empty_ = ::lseek(fd_, 0, SEEK_END) == 0;
}

line_file::line_file(line_file&& o) noexcept : fd_(std::exchange(o.fd_, -1)), empty_(o.empty_) {}

line_file& line_file::operator=(line_file&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    empty_ = o.empty_;
  }
  return *this;
}

line_file::~line_file() {
  if (fd_ >= 0) ::close(fd_);
}

void line_file::write_line(const std::string& line) {
  std::string whole = line + "\n";
  const char* p = whole.data();
  std::size_t left = whole.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "grove: write to a log");
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

namespace {

// A command may hold tabs and newlines: escaped, so one job is one line.
std::string escape_tsv(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\t')
      out += "\\t";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\\')
      out += "\\\\";
    else
      out += c;
  }
  return out;
}

std::string unescape_tsv(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    out += c == 't' ? '\t' : c == 'n' ? '\n' : c;
  }
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> cols;
  std::size_t at = 0;
  for (;;) {
    std::size_t tab = line.find('\t', at);
    cols.push_back(line.substr(at, tab - at));
    if (tab == std::string::npos) return cols;
    at = tab + 1;
  }
}

}  // namespace

std::string joblog_header() {
  return "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tState";
}

std::string joblog_line(const job_record& r) {
  return std::to_string(r.seq) + "\t:\t" + fixed(r.start_epoch, 3) + "\t" + fixed(r.runtime, 3) +
         "\t0\t" + std::to_string(r.received) + "\t" + std::to_string(r.exit_value) + "\t" +
         std::to_string(r.signal) + "\t" + escape_tsv(r.command) + "\t" + to_string(r.state);
}

std::string results_line(const job_record& r) {
  nlohmann::json j{{"seq", r.seq},           {"input", r.input},
                   {"command", r.command},   {"state", to_string(r.state)},
                   {"exit", r.exit_value},   {"signal", r.signal},
                   {"start", r.start_epoch}, {"runtime", r.runtime},
                   {"stdout", r.out},        {"stderr", r.err},
                   {"error", r.error}};
  // Output need not be UTF-8: invalid bytes are replaced, never a throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::set<std::pair<std::size_t, std::string>> read_ok_jobs(const std::string& path) {
  std::set<std::pair<std::size_t, std::string>> ok;
  if (::access(path.c_str(), F_OK) != 0) return ok;  // no log yet: nothing done
  std::ifstream in(path);
  if (!in) throw std::runtime_error("grove: --resume: cannot read " + path);
  std::string line;
  if (!std::getline(in, line) || line != joblog_header())
    throw std::runtime_error("grove: --resume: " + path +
                             " is not a grove joblog (its header differs)");
  while (std::getline(in, line)) {
    auto cols = split_tabs(line);
    if (cols.size() != 10) continue;  // a line cut short by a crash: not ok
    if (cols[9] != "ok") continue;
    try {
      ok.emplace(std::stoull(cols[0]), unescape_tsv(cols[8]));
    } catch (const std::exception&) {
    }
  }
  return ok;
}

}  // namespace grove::cli
