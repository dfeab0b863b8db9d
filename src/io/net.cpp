// grove::io sockets: TCP and Unix-domain connect and listen, and name
// resolution on the thread pool that a cancelled caller does not wait for.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <grove/detail/thread_pool.hpp>
#include <grove/io.hpp>
#include <grove/time.hpp>
#include <system_error>
#include <vector>

#include "os_error.hpp"

namespace grove {
namespace {

struct address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

// A numeric host needs no resolver.
bool parse_numeric(const std::string& host, std::uint16_t port, address& out) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.length = sizeof(sockaddr_in);
    out.family = AF_INET;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.length = sizeof(sockaddr_in6);
    out.family = AF_INET6;
    return true;
  }
  return false;
}

// Blocking: on a worker thread (tcp_connect), or for bind's setup call.
std::vector<address> resolve_blocking(const std::string& host, std::uint16_t port, int flags,
                                      int& gai_error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  std::string service = std::to_string(port);
  gai_error = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  std::vector<address> out;
  for (addrinfo* a = list; gai_error == 0 && a != nullptr; a = a->ai_next) {
    address addr;
    std::memcpy(&addr.storage, a->ai_addr, a->ai_addrlen);
    addr.length = a->ai_addrlen;
    addr.family = a->ai_family;
    out.push_back(addr);
  }
  if (list != nullptr) ::freeaddrinfo(list);
  return out;
}

[[noreturn]] void throw_gai(int gai_error, const std::string& host) {
  detail::throw_os_error(EHOSTUNREACH, "resolve " + host + ": " + ::gai_strerror(gai_error));
}

// One resolution on the pool. It lives on the heap, so that a cancelled
// caller unwinds at once: the job then frees itself when getaddrinfo returns.
class resolve_job final : public detail::thread_job {
 public:
  resolve_job(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port) {
    invoke_ = &run;
    free_ = [](thread_job& j) noexcept { delete static_cast<resolve_job*>(&j); };
  }
  bool start_on(std::coroutine_handle<> h) noexcept { return start(h, false); }
  bool abandon_now() noexcept { return abandon(); }
  std::vector<address> take() {
    if (error_) std::rethrow_exception(error_);
    if (gai_error_ != 0) throw_gai(gai_error_, host_);
    return std::move(result_);
  }

 private:
  static void run(thread_job& j) noexcept {
    auto& self = static_cast<resolve_job&>(j);
    try {
      self.result_ = resolve_blocking(self.host_, self.port_, AI_ADDRCONFIG, self.gai_error_);
    } catch (...) {
      self.error_ = std::current_exception();
    }
  }

  std::string host_;
  std::uint16_t port_;
  std::vector<address> result_;
  int gai_error_ = 0;
};

class resolve_awaiter {
 public:
  resolve_awaiter(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port) {}
  resolve_awaiter(const resolve_awaiter&) = delete;
  resolve_awaiter& operator=(const resolve_awaiter&) = delete;
  ~resolve_awaiter() { delete job_; }  // after it completed, or never started

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    job_ = new resolve_job(host_, port_);
    return job_->start_on(h);
  }
  // The caller unwinds at once; the job frees itself when the worker is done.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (!job_->abandon_now()) job_ = nullptr;
    return true;
  }
  std::vector<address> await_resume() { return job_->take(); }
  void await_describe(std::string& out, int depth) const {
    detail::indent(out, depth);
    out += "resolving " + host_ + " on a worker thread\n";
  }

 private:
  std::string host_;
  std::uint16_t port_;
  resolve_job* job_ = nullptr;
};

// Non-blocking and close-on-exec; -1 and errno when the kernel refuses.
int open_socket(int family) noexcept {
  return ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

unique_fd new_socket(int family) {
  int fd = open_socket(family);
  if (fd < 0) detail::throw_os_error(errno, "socket");
  return unique_fd(fd);
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Connects `fd` (non-blocking) to `a`; 0 or the errno.
task<int> connect_one(const unique_fd& fd, const address& a) {
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a.storage), a.length) == 0)
      co_return 0;
    // A Unix socket whose listener's backlog is full says EAGAIN and makes
    // no progress on its own: try again shortly (cancellable).
    if (errno != EAGAIN || a.family != AF_UNIX) break;
    co_await sleep(std::chrono::milliseconds(1));
  }
  if (errno != EINPROGRESS && errno != EINTR) co_return errno;
  co_await wait_writable(fd.get());  // cancelled: the caller's unique_fd closes it
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) co_return errno;
  co_return err;
}

// Accepts one connection: try first, wait when none is pending.
task<stream> accept_on(int listen_fd, bool tcp) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (tcp) set_nodelay(fd);
      co_return stream(unique_fd(fd));
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) detail::throw_os_error(errno, "accept");
    co_await detail::io_waiter(listen_fd, false, true);  // cancelled here: no connection taken
  }
}

void listen_on(const unique_fd& fd, int backlog) {
  if (::listen(fd.get(), backlog) < 0) detail::throw_os_error(errno, "listen");
}

}  // namespace

task<stream> tcp_connect(std::string host, std::uint16_t port) {
  std::vector<address> addresses;
  address numeric;
  if (parse_numeric(host, port, numeric))
    addresses.push_back(numeric);
  else
    addresses = co_await resolve_awaiter(host, port);
  int last = EHOSTUNREACH;
  for (const address& a : addresses) {
    int fdn = open_socket(a.family);
    if (fdn < 0) {  // say, no IPv6 here: try the next address
      last = errno;
      continue;
    }
    unique_fd fd(fdn);
    last = co_await connect_one(fd, a);
    if (last == 0) {
      set_nodelay(fd.get());
      co_return stream(std::move(fd));
    }
  }
  detail::throw_os_error(last, "connect to " + host + ":" + std::to_string(port));
}

tcp_listener tcp_listener::bind(std::string host, std::uint16_t port, int backlog) {
  std::vector<address> addresses;
  address numeric;
  if (parse_numeric(host, port, numeric)) {
    addresses.push_back(numeric);
  } else {
    int gai_error = 0;
    addresses = resolve_blocking(host, port, AI_PASSIVE, gai_error);
    if (gai_error != 0) throw_gai(gai_error, host);
  }
  int last = EADDRNOTAVAIL;
  for (const address& a : addresses) {
    unique_fd fd = new_socket(a.family);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.storage), a.length) < 0) {
      last = errno;
      continue;
    }
    listen_on(fd, backlog);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    std::uint16_t actual = bound.ss_family == AF_INET6
                               ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                               : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return tcp_listener(std::move(fd), actual);
  }
  detail::throw_os_error(last, "bind " + host + ":" + std::to_string(port));
}

task<stream> tcp_listener::accept() {
  co_return co_await accept_on(fd_.get(), true);
}

namespace {
sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path)
    detail::throw_os_error(ENAMETOOLONG, "unix socket path " + path);
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}
}  // namespace

task<stream> unix_connect(std::string path) {
  address a;
  sockaddr_un un = unix_address(path);
  std::memcpy(&a.storage, &un, sizeof un);
  a.length = sizeof un;
  a.family = AF_UNIX;
  unique_fd fd = new_socket(AF_UNIX);
  int err = co_await connect_one(fd, a);
  if (err != 0) detail::throw_os_error(err, "connect to " + path);
  co_return stream(std::move(fd));
}

unix_listener unix_listener::bind(std::string path, int backlog) {
  sockaddr_un un = unix_address(path);
  unique_fd fd = new_socket(AF_UNIX);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&un), sizeof un) < 0)
    detail::throw_os_error(errno, "bind " + path);
  listen_on(fd, backlog);
  return unix_listener(std::move(fd), std::move(path));
}

task<stream> unix_listener::accept() {
  co_return co_await accept_on(fd_.get(), false);
}

}  // namespace grove
