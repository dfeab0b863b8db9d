// The drained hint (docs/io.md, "Try first, then wait"): after a TCP read
// came back short, read_some waits for the next readiness edge instead of
// reading into EAGAIN. What must still hold: an echo costs one read per
// message; data and the end of the stream seen in one edge, and urgent data,
// are still read (no hang); a cancelled read_some moved nothing, at the
// hinted wait too; a read in a cancelled context does not start; a Unix
// socket, where a short read proves nothing, never uses the hint.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <grove/io.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/io_testing.hpp"
#include "virtual_time.hpp"

// Counts the recv calls on one descriptor that said EAGAIN (grove's
// included: streams read sockets with recv).
namespace recv_calls {
std::atomic<int> watched{-1};
std::atomic<int> eagain{0};
}  // namespace recv_calls

extern "C" ssize_t recv(int fd, void* buf, size_t n, int flags) {
  auto r = static_cast<ssize_t>(::syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr));
  if (r < 0 && errno == EAGAIN && fd == recv_calls::watched) ++recv_calls::eagain;
  return r;
}

namespace grove::testing {
namespace {

std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// {server side, client side} of a loopback TCP connection.
task<std::pair<stream, stream>> tcp_pair() {
  auto l = tcp_listener::bind("127.0.0.1", 0);
  stream c = co_await tcp_connect("127.0.0.1", l.port());
  stream s = co_await l.accept();
  co_return std::pair<stream, stream>(std::move(s), std::move(c));
}

// Registers the stream's descriptor with the loop, as a reader that found
// nothing does (the hint needs a registration).
task<void> register_reader(stream& s) {
  std::vector<std::byte> b(1);
  auto n = co_await move_on_after(1ms, s.read_some(b));
  EXPECT_FALSE(n.has_value());
}

// Reads until `n` bytes came; a read that waits a second for more than is
// there (the hint waiting for an edge that never comes) ends it with
// " (hang)" after what came.
task<std::string> read_at_least(stream& s, std::size_t n) {
  std::string got;
  std::vector<std::byte> buf(64);
  while (got.size() < n) {
    auto k = co_await move_on_after(1s, s.read_some(buf));
    if (!k) co_return got + " (hang)";
    got += text(std::span(buf).first(*k));
  }
  co_return got;
}

TEST(stream_drained_hint, a_tcp_echo_reads_once_per_message) {
  auto o = run_virtual([]() -> task<int> {
    auto [s, c] = co_await tcp_pair();
    recv_calls::watched = s.fd();
    int before = recv_calls::eagain;
    std::string echoed;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        std::vector<std::byte> buf(65536);
        for (;;) {
          std::size_t n = co_await s.read_some(buf);
          if (n == 0) co_return;
          co_await s.write_all(std::span<const std::byte>(buf.data(), n));
        }
      });
      std::vector<std::byte> back(10);
      for (int i = 0; i < 100; ++i) {
        co_await c.write_all(bytes("0123456789"));
        co_await c.read_exact(back);
        echoed += text(back);
      }
      c.shutdown_write();  // the server reads 0 and ends
      co_return;
    });
    recv_calls::watched = -1;
    EXPECT_EQ(echoed.size(), 1000u);
    EXPECT_EQ(echoed.substr(990), "0123456789");
    co_return recv_calls::eagain - before;
  }());
  // Only the first read (before the registration, before any data) may say
  // EAGAIN; without the hint every message costs one.
  EXPECT_LE(o.value(), 1);
}

// The peer's data and its end of stream arrive before the loop looks: one
// edge reports both. The short read that takes the data must not make the
// next read wait for an edge that already came (it returns 0 at once).
TEST(stream_drained_hint, data_and_the_end_of_stream_in_one_edge_are_both_read) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [s, c] = co_await tcp_pair();
    co_await register_reader(s);
    co_await c.write_all(bytes("abc"));
    c.shutdown_write();
    co_await sleep(1ms);  // the loop sees the edge before the data is read
    std::vector<std::byte> buf(64);
    auto n = co_await move_on_after(1s, s.read_some(buf));
    if (!n) co_return "no data";
    std::string got = text(std::span(buf).first(*n));
    auto end = co_await move_on_after(1s, s.read_some(buf));
    if (!end) co_return got + ", then a hang";
    co_return got + (*end == 0 ? ", then the end" : ", then more");
  }());
  EXPECT_EQ(o.value(), "abc, then the end");
}

// A TCP read stops short at the urgent mark with data after it: the urgent
// data's edge turns the hint off, so that data is read without a new edge.
TEST(stream_drained_hint, data_after_an_urgent_mark_is_read) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [s, c] = co_await tcp_pair();
    co_await register_reader(s);
    EXPECT_EQ(::send(c.fd(), "abc", 3, 0), 3);
    EXPECT_EQ(::send(c.fd(), "!", 1, MSG_OOB), 1);
    EXPECT_EQ(::send(c.fd(), "def", 3, 0), 3);
    co_await sleep(1ms);  // the loop sees the edge before the data is read
    co_return co_await read_at_least(s, 6);
  }());
  EXPECT_EQ(o.value(), "abcdef");  // the urgent byte is out of band
}

// A read_some cancelled at the hinted wait moved nothing; the next one
// gets what came meanwhile, and the stream is not broken.
TEST(stream_drained_hint, a_read_some_cancelled_at_the_hinted_wait_moved_nothing) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [s, c] = co_await tcp_pair();
    co_await register_reader(s);
    co_await c.write_all(bytes("one"));
    std::vector<std::byte> buf(64);
    std::size_t n = co_await s.read_some(buf);  // short: the hint is on
    std::string got = text(std::span(buf).first(n));
    auto nothing = co_await move_on_after(5ms, s.read_some(buf));
    EXPECT_FALSE(nothing.has_value());
    EXPECT_FALSE(s.broken());
    co_await c.write_all(bytes("two"));
    auto more = co_await move_on_after(1s, s.read_some(buf));
    if (!more) co_return got + " (hang)";
    co_return got + text(std::span(buf).first(*more));
  }());
  EXPECT_EQ(o.value(), "onetwo");
}

// read_exact across a short read: it waits for the rest through the hint.
TEST(stream_drained_hint, read_exact_waits_for_the_rest_after_a_short_read) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [s, c] = co_await tcp_pair();
    std::string got;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await c.write_all(bytes("hello, "));
        co_await sleep(5ms);
        co_await c.write_all(bytes("grove"));
      });
      std::vector<std::byte> buf(12);
      co_await s.read_exact(buf);
      got = text(buf) + " at " + std::to_string(ms());
    });
    co_return got;
  }());
  EXPECT_EQ(o.value(), "hello, grove at 5");
}

// In a cancelled context a read_some does not start, though the data is
// there and the hint is off: nothing is consumed.
TEST(stream_drained_hint, a_read_in_a_cancelled_scope_takes_nothing) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [s, c] = co_await tcp_pair();
    co_await register_reader(s);
    co_await c.write_all(bytes("kept"));
    co_await sleep(1ms);  // the loop sees the edge
    std::vector<std::byte> buf(64);
    cancel_scope scope;
    scope.cancel();
    bool read = false;
    co_await scope.run([&]() -> task<void> {
      (void)co_await s.read_some(buf);
      read = true;
    }());
    EXPECT_FALSE(read);
    std::size_t n = co_await s.read_some(buf);
    co_return text(std::span(buf).first(n));
  }());
  EXPECT_EQ(o.value(), "kept");
}

// A Unix socket stops a read after a message that carried descriptors, with
// more data queued behind it and no new edge to come: no hint there.
TEST(stream_drained_hint, a_unix_socket_short_read_does_not_wait_for_an_edge) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  unique_fd peer(fds[1]);
  auto o = run_virtual([&]() -> task<std::string> {
    stream r{unique_fd(fds[0])};
    co_await register_reader(r);
    // "ab" with a descriptor attached (the reader's read() drops it), then "cd".
    char data[] = "ab";
    iovec iov{data, 2};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    int passed = peer.get();
    std::memcpy(CMSG_DATA(cm), &passed, sizeof passed);
    EXPECT_EQ(::sendmsg(peer.get(), &m, 0), 2);
    EXPECT_EQ(::send(peer.get(), "cd", 2, 0), 2);
    co_await sleep(1ms);  // the loop sees the edge before the data is read
    co_return co_await read_at_least(r, 4);
  }());
  EXPECT_EQ(o.value(), "abcd");
}

}  // namespace
}  // namespace grove::testing
