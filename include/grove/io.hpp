// grove::io: descriptors and byte streams whose every wait is cancellable,
// and whose cancellation never loses or duplicates a byte. docs/io.md
// explains the model and the partial-I/O contract.
#pragma once

#include <sys/types.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <grove/detail/wait_list.hpp>
#include <grove/event_loop.hpp>
#include <grove/task.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

namespace grove {

// Thrown by read_exact when the stream ends before the buffer is full.
class end_of_stream : public std::runtime_error {
 public:
  end_of_stream() : std::runtime_error("grove: the stream ended before the data did") {}
};

// Thrown by every operation on a stream that a cancelled write_all or
// read_exact left part-way: its position is unknown, so it is never used
// silently misaligned.
class broken_stream_error : public std::logic_error {
 public:
  broken_stream_error()
      : std::logic_error(
            "grove: the stream is broken: a cancelled write_all or read_exact moved part of "
            "its data") {}
};

// An owned descriptor: closed on destruction. Move-only. Closing through it
// (close(), reset(), the destructor) first wakes every task waiting on the
// descriptor with an error and removes it from the loop: no registration
// ever dangles. Close a descriptor you waited on through unique_fd only.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives up ownership without closing. The registration goes too (a task
  // that waits on the descriptor resumes with EBADF): whoever owns it now
  // may close it, and the number may be reused.
  int release() noexcept;
  // Closes the descriptor it owns (see above) and owns `fd` instead.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

namespace detail {

// A descriptor's registration with the loop: added to epoll once, edge-
// triggered, for reading and writing, when a task first waits on it; removed
// when it is closed through unique_fd. Knows whether the descriptor is
// readable or writable since the last edge.
struct fd_state;

class io_waiter : public waiter_node {
 public:
  // after_eagain: the caller's read or write just said EAGAIN, so the cached
  // readiness is stale: suspend until the next edge (streams do this).
  io_waiter(int fd, bool write, bool after_eagain = false) noexcept
      : fd_(fd), write_(write), after_eagain_(after_eagain) {}
  io_waiter(io_waiter&& o) noexcept
      : waiter_node(), fd_(o.fd_), write_(o.write_), after_eagain_(o.after_eagain_) {}
  io_waiter& operator=(io_waiter&&) = delete;
  ~io_waiter() { abandon(); }

  bool await_ready();
  void await_suspend(std::coroutine_handle<> h) noexcept;
  // Waiting, or woken but not yet resumed: unlinked at once (a wait holds
  // nothing). O(1).
  bool await_cancel(std::coroutine_handle<>) noexcept {
    abandon();
    return true;
  }
  // Throws std::system_error(EBADF) when the descriptor was closed meanwhile.
  void await_resume();
  void await_describe(std::string& out, int depth) const;

 private:
  friend struct fd_state;
  enum class state : unsigned char { idle, waiting, woken, closed };
  void abandon() noexcept;

  int fd_;
  bool write_;
  bool after_eagain_;
  state state_ = state::idle;
  fd_state* fds_ = nullptr;
};

}  // namespace detail

// `co_await wait_readable(fd)` suspends until the non-blocking descriptor
// `fd` becomes readable (or reaches end of file, or fails); call it after a
// read returned EAGAIN. The first wait registers `fd` with the loop (once;
// later waits cost no epoll_ctl); when the loop already saw the descriptor
// become readable since, it returns at once (at most one spurious wake per
// edge: the next read may still say EAGAIN). Cancellation: O(1), nothing
// consumed. Throws std::system_error(EBADF) when the descriptor is closed
// through unique_fd while the task waits.
[[nodiscard]] inline detail::io_waiter wait_readable(int fd) noexcept {
  return detail::io_waiter(fd, false);
}

// The same for writability (call it after a write returned EAGAIN).
[[nodiscard]] inline detail::io_waiter wait_writable(int fd) noexcept {
  return detail::io_waiter(fd, true);
}

// A connected byte stream: a pipe end, a TCP or a Unix socket. Move-only;
// owns its descriptor (non-blocking, close-on-exec).
//
// The partial-I/O contract (DESIGN §2): a cancelled read_some or write_some
// transferred nothing: cancellation only wins while the task waits, before
// any byte moved, and bytes that moved are always returned. A cancelled
// write_all or read_exact may have moved part of its data: the stream is then
// broken and every later call throws broken_stream_error; it is never silently
// misaligned. OS errors are std::system_error with the errno and the
// operation. Writing to a stream whose reader is gone throws EPIPE; SIGPIPE
// never kills the process (sockets use MSG_NOSIGNAL; for pipes grove ignores
// SIGPIPE, see docs/io.md).
class stream {
 public:
  stream() noexcept = default;
  explicit stream(unique_fd fd);  // makes it non-blocking
  stream(stream&&) noexcept = default;
  stream& operator=(stream&&) noexcept = default;

  // Reads what is there, up to buf.size() bytes (at least one, unless buf is
  // empty); 0 at end of stream. Suspends only when nothing is there: the
  // read said EAGAIN, or (TCP) the last read came back short and the loop
  // has seen no readiness edge since, which proves the socket empty without
  // a syscall (docs/io.md).
  task<std::size_t> read_some(std::span<std::byte> buf);
  // Writes what fits, at least one byte (unless buf is empty).
  task<std::size_t> write_some(std::span<const std::byte> buf);
  // Writes all of buf. Cancelled part-way: the stream is broken.
  task<void> write_all(std::span<const std::byte> buf);
  // Fills buf; end_of_stream if the stream ends first. Cancelled part-way:
  // the stream is broken.
  task<void> read_exact(std::span<std::byte> buf);

  // No more writes: a socket sends its end of stream (the peer reads 0); a
  // pipe's write end is closed.
  void shutdown_write();
  // Closes the descriptor (waking any task that waits on it, with EBADF).
  void close() noexcept { fd_.reset(); }

  int fd() const noexcept { return fd_.get(); }
  bool broken() const noexcept { return broken_; }

 private:
  void check() const;
  // One syscall (retried on EINTR): the bytes moved (0: end of stream), or
  // -1 for EAGAIN. Other errors throw.
  ssize_t read_once(std::span<std::byte> buf);
  ssize_t write_once(std::span<const std::byte> buf);
  // A TCP read came back short and no edge came since: reading would say
  // EAGAIN (the drained hint, see io.cpp).
  bool drained() const noexcept;

  unique_fd fd_;
  bool socket_ = false;
  bool tcp_ = false;
  bool broken_ = false;
};

// A pipe: {read end, write end}, both non-blocking and close-on-exec.
// Throws std::system_error (EMFILE, ...).
std::pair<stream, stream> make_pipe();

// Connects to host:port over TCP and gives the connected stream
// (TCP_NODELAY on). A numeric host ("127.0.0.1", "::1") needs no resolver;
// a name is resolved on the thread pool, off the loop thread. Each resolved
// address is tried in turn; the last error is thrown as std::system_error
// (ECONNREFUSED, ...) naming the host and port. Cancellation, at any step:
// the task unwinds at once, a pending resolution's result is dropped when
// it comes, and a socket being connected is closed.
task<stream> tcp_connect(std::string host, std::uint16_t port);

// A listening TCP socket (SO_REUSEADDR, non-blocking, close-on-exec).
class tcp_listener {
 public:
  // Binds host:port (port 0: the kernel picks one; see port()) and listens.
  // The host is resolved synchronously: give a numeric address (or
  // "localhost"). Throws std::system_error (EADDRINUSE, ...).
  static tcp_listener bind(std::string host, std::uint16_t port, int backlog = 4096);

  std::uint16_t port() const noexcept { return port_; }
  int fd() const noexcept { return fd_.get(); }
  // The next connection (TCP_NODELAY on). Suspends until one arrives;
  // cancellable in O(1), and a cancelled accept took no connection.
  task<stream> accept();

 private:
  tcp_listener(unique_fd fd, std::uint16_t port) noexcept : fd_(std::move(fd)), port_(port) {}
  unique_fd fd_;
  std::uint16_t port_ = 0;
};

// Connects to the Unix-domain stream socket at `path`.
task<stream> unix_connect(std::string path);

// A listening Unix-domain stream socket. bind() removes nothing: a stale
// socket file at `path` makes it throw EADDRINUSE.
class unix_listener {
 public:
  static unix_listener bind(std::string path, int backlog = 4096);
  const std::string& path() const noexcept { return path_; }
  int fd() const noexcept { return fd_.get(); }
  task<stream> accept();

 private:
  unix_listener(unique_fd fd, std::string path) noexcept
      : fd_(std::move(fd)), path_(std::move(path)) {}
  unique_fd fd_;
  std::string path_;
};

}  // namespace grove
