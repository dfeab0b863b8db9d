// grove::io: descriptor registrations, readiness waits and streams
// (include/grove/io.hpp, docs/io.md).
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <grove/io.hpp>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "os_error.hpp"

namespace grove {
namespace detail {

// Edge-triggered, for reading and writing, added once: readiness is cached
// here between edges, so no wait ever re-arms the descriptor.
struct fd_state : fd_watch {
  event_loop* loop = nullptr;
  bool readable = false;
  bool writable = false;
  wait_list<io_waiter> readers;
  wait_list<io_waiter> writers;

  static void on_ready(fd_watch* w, std::uint32_t events) noexcept {
    auto* s = static_cast<fd_state*>(w);
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
      s->readable = true;
      wake_all(s->readers, io_waiter::state::woken);
    }
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
      s->writable = true;
      wake_all(s->writers, io_waiter::state::woken);
    }
  }

  // Before the descriptor is closed: every waiter resumes with EBADF.
  static void wake_closed(fd_state& s) noexcept {
    wake_all(s.readers, io_waiter::state::closed);
    wake_all(s.writers, io_waiter::state::closed);
  }

  static void wake_all(wait_list<io_waiter>& list, io_waiter::state how) noexcept {
    while (io_waiter* w = list.pop_front()) {
      w->state_ = how;
      list.wake(*w);
    }
  }
};

namespace {

// This thread's registrations, indexed by descriptor. A loop's entries go
// when the loop is destroyed, so an entry always names a live loop.
std::vector<fd_state*>& registrations() {
  thread_local std::vector<fd_state*> by_fd;
  return by_fd;
}

void forget_loop(event_loop* loop) noexcept {
  for (fd_state*& s : registrations()) {
    if (s != nullptr && s->loop == loop) {
      delete s;
      s = nullptr;
    }
  }
}

fd_state& registration(int fd) {
  if (fd < 0) throw_os_error(EBADF, "wait on fd -1");
  event_loop* loop = event_loop::current();
  auto& by_fd = registrations();
  auto i = static_cast<std::size_t>(fd);
  if (i >= by_fd.size()) by_fd.resize(i + 1, nullptr);
  if (fd_state* s = by_fd[i]) {
    if (s->loop != loop)
      throw std::logic_error("grove: descriptor " + std::to_string(fd) +
                             " is registered with another loop on this thread");
    return *s;
  }
  static std::once_flag hooked;  // before the first entry that names a loop
  std::call_once(hooked, [] { event_loop::set_destroy_hook(&forget_loop); });
  auto* s = new fd_state;
  s->fd = fd;
  s->events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  s->on_event = &fd_state::on_ready;
  s->loop = loop;
  try {
    loop->watch_fd(*s);
  } catch (...) {
    delete s;
    throw;
  }
  by_fd[i] = s;
  return *s;
}

// Before the descriptor is closed: its waiters resume with EBADF, and it
// leaves epoll while the number still names it.
void forget(int fd) noexcept {
  auto& by_fd = registrations();
  auto i = static_cast<std::size_t>(fd);
  if (fd < 0 || i >= by_fd.size() || by_fd[i] == nullptr) return;
  fd_state* s = std::exchange(by_fd[i], nullptr);
  fd_state::wake_closed(*s);
  s->loop->unwatch_fd(*s);
  delete s;
}

// Pipes have no MSG_NOSIGNAL: a write to a pipe whose reader is gone must
// fail with EPIPE, not kill the process. Ignored only if it had the default
// disposition; child processes get the default back (the process layer
// resets dispositions).
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old{};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      struct sigaction ign{};
      ign.sa_handler = SIG_IGN;
      ::sigemptyset(&ign.sa_mask);
      ::sigaction(SIGPIPE, &ign, nullptr);
    }
  });
}

}  // namespace

bool io_waiter::await_ready() {
  fds_ = &registration(fd_);
  bool& ready = write_ ? fds_->writable : fds_->readable;
  // After EAGAIN the cache is stale: the next edge is what we wait for (no
  // edge can slip in between: the loop does not poll within a task's step).
  // Otherwise it may be stale too (whoever read or wrote since did not say),
  // so it is used once: at most one spurious wake per edge.
  bool was_ready = std::exchange(ready, false);
  return was_ready && !after_eagain_;
}

void io_waiter::await_suspend(std::coroutine_handle<> h) noexcept {
  state_ = state::waiting;
  (write_ ? fds_->writers : fds_->readers).push_back(*this, h);
}

void io_waiter::await_resume() {
  bool closed = state_ == state::closed;
  state_ = state::idle;
  if (closed)
    throw std::system_error(EBADF, std::generic_category(),
                            write_ ? "grove: wait_writable: the descriptor was closed"
                                   : "grove: wait_readable: the descriptor was closed");
}

void io_waiter::abandon() noexcept {
  if (state_ == state::waiting)
    (write_ ? fds_->writers : fds_->readers).remove(*this);
  else
    unlink();  // from the ready queue once woken (a no-op when idle)
  state_ = state::idle;
}

void io_waiter::await_describe(std::string& out, int depth) const {
  indent(out, depth);
  out += write_ ? "wait_writable(fd " : "wait_readable(fd ";
  out += std::to_string(fd_) + (state_ == state::waiting ? ")\n" : ", about to resume)\n");
}

}  // namespace detail

int unique_fd::release() noexcept {
  detail::forget(fd_);
  return std::exchange(fd_, -1);
}

void unique_fd::reset(int fd) noexcept {
  if (fd_ >= 0) {
    detail::forget(fd_);
    ::close(fd_);
  }
  fd_ = fd;
}

stream::stream(unique_fd fd) : fd_(std::move(fd)) {
  int flags = ::fcntl(fd_.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK) < 0)
    detail::throw_os_error(errno, "stream: fcntl(O_NONBLOCK)");
  ::fcntl(fd_.get(), F_SETFD, FD_CLOEXEC);
  struct stat st{};
  socket_ = ::fstat(fd_.get(), &st) == 0 && S_ISSOCK(st.st_mode);
  if (!socket_) detail::ignore_sigpipe_once();
}

void stream::check() const {
  if (broken_) throw broken_stream_error();
  if (!fd_) detail::throw_os_error(EBADF, "stream is closed");
}

ssize_t stream::write_once(std::span<const std::byte> buf) {
  if (socket_) return ::send(fd_.get(), buf.data(), buf.size(), MSG_NOSIGNAL);
  return ::write(fd_.get(), buf.data(), buf.size());
}

task<std::size_t> stream::read_some(std::span<std::byte> buf) {
  check();
  if (buf.empty()) co_return 0;
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_os_error(errno, "read");
    co_await detail::io_waiter(fd_.get(), false, true);  // cancelled here: nothing was read
  }
}

task<std::size_t> stream::write_some(std::span<const std::byte> buf) {
  check();
  if (buf.empty()) co_return 0;
  for (;;) {
    ssize_t n = write_once(buf);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_os_error(errno, "write");
    co_await detail::io_waiter(fd_.get(), true, true);  // cancelled here: nothing was written
  }
}

namespace {
// Marks the stream broken if the frame goes (cancelled, or an error) after
// part of the data moved.
struct part_way {
  bool* broken;
  bool moved = false;
  bool done = false;
  explicit part_way(bool* b) noexcept : broken(b) {}
  part_way(const part_way&) = delete;
  part_way& operator=(const part_way&) = delete;
  ~part_way() {
    if (moved && !done) *broken = true;
  }
};
}  // namespace

task<void> stream::write_all(std::span<const std::byte> buf) {
  check();
  part_way guard{&broken_};
  while (!buf.empty()) {
    std::size_t n = co_await write_some(buf);
    guard.moved = true;
    buf = buf.subspan(n);
  }
  guard.done = true;
}

task<void> stream::read_exact(std::span<std::byte> buf) {
  check();
  part_way guard{&broken_};
  while (!buf.empty()) {
    std::size_t n = co_await read_some(buf);
    if (n == 0) throw end_of_stream();
    guard.moved = true;
    buf = buf.subspan(n);
  }
  guard.done = true;
}

void stream::shutdown_write() {
  check();
  if (!socket_) {
    int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0 && (flags & O_ACCMODE) == O_RDONLY)
      throw std::logic_error("grove: shutdown_write on a stream that only reads");
    close();  // a pipe's write end: closing it is the end of stream
    return;
  }
  if (::shutdown(fd_.get(), SHUT_WR) < 0) detail::throw_os_error(errno, "shutdown(SHUT_WR)");
}

std::pair<stream, stream> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) detail::throw_os_error(errno, "pipe2");
  unique_fd r(fds[0]);
  unique_fd w(fds[1]);
  return {stream(std::move(r)), stream(std::move(w))};
}

}  // namespace grove
