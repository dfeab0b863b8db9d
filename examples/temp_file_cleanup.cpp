// A real resource cleaned up on Ctrl+C: each job creates a temporary file,
// writes to it while it works, and its cleanup (which runs even after
// Ctrl+C, and may itself await) flushes a last line and removes the file.
//
//   temp_file_cleanup 3        # prints each file's path; Ctrl+C removes them all
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grove/grove.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

void say(const std::string& line) {
  std::fputs((line + '\n').c_str(), stdout);
  std::fflush(stdout);
}

// Owns one temporary file; the destructor is the last line of defence
// (it runs even on a forced shutdown), the async cleanup the normal path.
class temp_file {
 public:
  temp_file() {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    tmpl += "/grove-example-XXXXXX";
    path_.assign(tmpl.begin(), tmpl.end());
    path_.push_back('\0');
    fd_ = ::mkstemp(path_.data());
    if (fd_ < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  }
  temp_file(temp_file&& o) noexcept : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)) {}
  temp_file& operator=(temp_file&&) = delete;
  ~temp_file() { remove(); }

  const char* path() const { return path_.data(); }
  void write(const std::string& s) const {
    if (::write(fd_, s.data(), s.size()) < 0) throw std::runtime_error("write failed");
  }
  void remove() noexcept {
    if (fd_ < 0) return;
    ::close(fd_);
    ::unlink(path_.data());
    fd_ = -1;
  }

 private:
  std::vector<char> path_;
  int fd_ = -1;
};

grove::task<void> use_file(temp_file& f, int id) {
  for (int i = 0;; ++i) {
    f.write("job " + std::to_string(id) + " tick " + std::to_string(i) + "\n");
    co_await grove::sleep(100ms);
  }
}

grove::task<void> close_file(temp_file& f, int id) {
  f.write("closing\n");
  co_await grove::sleep(50ms);  // e.g. an fsync or a goodbye to a server
  f.remove();
  say("job " + std::to_string(id) + ": removed " + f.path());
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 3;
  if (n <= 0) {
    std::fprintf(stderr, "usage: temp_file_cleanup [number-of-files >= 1]\n");
    return 2;
  }
  return grove::run([n]() -> grove::task<void> {
    co_await grove::with_task_group([n](grove::task_group& g) -> grove::task<void> {
      for (int id = 0; id < n; ++id) {
        // The file lives in the spawned callable, so it outlives the body.
        g.spawn(
            [id](temp_file& f) -> grove::task<void> {
              say("job " + std::to_string(id) + ": created " + f.path());
              co_await grove::finally(use_file(f, id), [&f, id] { return close_file(f, id); });
            },
            temp_file());
      }
      co_return;
    });
  });
}
