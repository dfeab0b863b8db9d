// grove::io: descriptor registrations, readiness waits and streams
// (include/grove/io.hpp, docs/io.md).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
  // The drained hint (stream::read_some on TCP): a read came back short and
  // no read edge has been seen since, so the socket holds nothing to read
  // and the next read would say EAGAIN. Set by the stream, cleared by every
  // read edge.
  bool drained = false;
  // Off for good once an edge reported the end of the stream, an error or
  // urgent data: a short read then no longer proves that nothing is left
  // (the FIN, the error or the data past the urgent mark is still to be
  // read, and its edge was already seen).
  bool no_drained_hint = false;
  wait_list<io_waiter> readers;
  wait_list<io_waiter> writers;

  static void on_ready(fd_watch* w, std::uint32_t events) noexcept {
    auto* s = static_cast<fd_state*>(w);
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0) s->no_drained_hint = true;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
      s->readable = true;
      s->drained = false;
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
  // EPOLLPRI: urgent data turns the drained hint off (fd_state).
  s->events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
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

// The registration of `fd` on the running loop, if it has one (never
// creates one, never throws).
fd_state* find_registration(int fd) noexcept {
  auto& by_fd = registrations();
  auto i = static_cast<std::size_t>(fd);
  if (fd < 0 || i >= by_fd.size()) return nullptr;
  fd_state* s = by_fd[i];
  return s != nullptr && s->loop == event_loop::current() ? s : nullptr;
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
  int type = 0;
  socklen_t len = sizeof type;
  socket_ = ::getsockopt(fd_.get(), SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  if (socket_ && type == SOCK_STREAM) {
    int protocol = 0;
    len = sizeof protocol;
    tcp_ = ::getsockopt(fd_.get(), SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
           protocol == IPPROTO_TCP;
  }
  if (!socket_) detail::ignore_sigpipe_once();
}

void stream::check() const {
  if (broken_) throw broken_stream_error();
  if (!fd_) detail::throw_os_error(EBADF, "stream is closed");
}

// The drained hint (docs/io.md, "A short TCP read counts as EAGAIN"). On a
// TCP socket, a read that fills less than its buffer has emptied the receive
// queue: the next read would say EAGAIN, so read_some waits for the next edge
// first instead. Sound with edge-triggered epoll: whatever arrives after the
// short read raises a new edge (which clears the hint). What a TCP read can
// stop short at while more is queued (the end of the stream, an error, an
// urgent mark) and that came before the loop's last look was reported by that
// look, which turned the hint off for the descriptor (fd_state). Only TCP: a
// Unix socket stops a read at a message that carried descriptors, and a
// packet-mode pipe at each packet, so a short read there proves nothing.
bool stream::drained() const noexcept {
  if (!tcp_) return false;
  detail::fd_state* s = detail::find_registration(fd_.get());
  return s != nullptr && s->drained;
}

[[gnu::always_inline]] inline ssize_t stream::read_once(std::span<std::byte> buf) {
  for (;;) {
    ssize_t n = socket_ ? ::recv(fd_.get(), buf.data(), buf.size(), 0)
                        : ::read(fd_.get(), buf.data(), buf.size());
    if (n >= 0) {
      if (tcp_ && n > 0 && static_cast<std::size_t>(n) < buf.size()) {
        detail::fd_state* s = detail::find_registration(fd_.get());
        if (s != nullptr && !s->no_drained_hint) s->drained = true;
      }
      return n;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_os_error(errno, "read");
    return -1;
  }
}

[[gnu::always_inline]] inline ssize_t stream::write_once(std::span<const std::byte> buf) {
  for (;;) {
    ssize_t n = socket_ ? ::send(fd_.get(), buf.data(), buf.size(), MSG_NOSIGNAL)
                        : ::write(fd_.get(), buf.data(), buf.size());
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_os_error(errno, "write");
    return -1;
  }
}

// Each waits only after the syscall said EAGAIN (or, reading TCP, when the
// drained hint says it would): a cancellation wins only there, before any
// byte of this call moved.
task<std::size_t> stream::read_some(std::span<std::byte> buf) {
  check();
  if (buf.empty()) co_return 0;
  for (;;) {
    if (!drained()) {
      ssize_t n = read_once(buf);
      if (n >= 0) co_return static_cast<std::size_t>(n);
    }
    co_await detail::io_waiter(fd_.get(), false, true);  // cancelled here: nothing was read
  }
}

task<std::size_t> stream::write_some(std::span<const std::byte> buf) {
  check();
  if (buf.empty()) co_return 0;
  for (;;) {
    ssize_t n = write_once(buf);
    if (n >= 0) co_return static_cast<std::size_t>(n);
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

// write_all and read_exact do write_some's and read_some's work in their own
// frame (one frame per call, not one more per chunk); like them, they check
// the stream again after each wait.
task<void> stream::write_all(std::span<const std::byte> buf) {
  check();
  part_way guard{&broken_};
  while (!buf.empty()) {
    ssize_t n = write_once(buf);
    if (n < 0) {
      co_await detail::io_waiter(fd_.get(), true, true);  // cancelled here: broken if part moved
      check();
      continue;
    }
    guard.moved = true;
    buf = buf.subspan(static_cast<std::size_t>(n));
  }
  guard.done = true;
}

task<void> stream::read_exact(std::span<std::byte> buf) {
  check();
  part_way guard{&broken_};
  while (!buf.empty()) {
    ssize_t n = drained() ? -1 : read_once(buf);
    if (n < 0) {
      co_await detail::io_waiter(fd_.get(), false, true);  // cancelled here: broken if part moved
      check();
      continue;
    }
    if (n == 0) throw end_of_stream();
    guard.moved = true;
    buf = buf.subspan(static_cast<std::size_t>(n));
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
