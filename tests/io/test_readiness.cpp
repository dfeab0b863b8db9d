// wait_readable / wait_writable on raw descriptors: one epoll registration
// per descriptor, a reader and a writer on one descriptor, O(1) cancel.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <grove/io.hpp>

#include "virtual_time.hpp"

// Counts the epoll_ctl calls this program makes (grove's included), to show
// that waits never re-arm a descriptor.
namespace epoll_calls {
std::atomic<int> add{0};
std::atomic<int> mod{0};
}  // namespace epoll_calls

extern "C" int epoll_ctl(int epfd, int op, int fd, struct epoll_event* ev) {
  if (op == EPOLL_CTL_ADD) ++epoll_calls::add;
  if (op == EPOLL_CTL_MOD) ++epoll_calls::mod;
  return static_cast<int>(::syscall(SYS_epoll_ctl, epfd, op, fd, ev));
}

namespace grove::testing {
namespace {

struct socket_pair {
  unique_fd a, b;
  socket_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

TEST(readiness, a_descriptor_is_registered_once_however_often_it_is_waited_on) {
  socket_pair sp;
  auto o = run_virtual([&]() -> task<int> {
    int adds_before = epoll_calls::add;
    int mods_before = epoll_calls::mod;
    char c = 0;
    for (int i = 0; i < 100; ++i) {
      EXPECT_EQ(::write(sp.b.get(), "x", 1), 1);
      co_await wait_readable(sp.a.get());
      EXPECT_EQ(::read(sp.a.get(), &c, 1), 1);
    }
    EXPECT_EQ(epoll_calls::mod - mods_before, 0);
    co_return epoll_calls::add - adds_before;
  }());
  EXPECT_EQ(o.value(), 1);
}

TEST(readiness, a_reader_and_a_writer_wait_on_one_descriptor) {
  socket_pair sp;
  journal j;
  auto o = run_virtual(concurrently(
      [&]() -> task<void> {
        co_await wait_readable(sp.a.get());  // until the peer writes
        j("readable" + at());
      },
      [&]() -> task<void> {
        // Fill a's send buffer so that a is not writable, then wait.
        std::vector<char> chunk(65536, 'w');
        while (::write(sp.a.get(), chunk.data(), chunk.size()) > 0) {
        }
        co_await wait_writable(sp.a.get());  // until the peer reads
        j("writable" + at());
      },
      [&]() -> task<void> {
        co_await sleep(5ms);
        EXPECT_EQ(::write(sp.b.get(), "r", 1), 1);
        co_await sleep(5ms);
        std::vector<char> sink(1 << 20);
        while (::read(sp.b.get(), sink.data(), sink.size()) > 0) {
        }
      }));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"readable at 5", "writable at 10"}));
}

TEST(readiness, a_cancelled_wait_unwinds_at_once_and_the_next_wait_works) {
  socket_pair sp;
  auto o = run_virtual([&]() -> task<long long> {
    EXPECT_FALSE(co_await move_on_after(3ms, wait_readable(sp.a.get())));
    EXPECT_EQ(ms(), 3);
    EXPECT_EQ(::write(sp.b.get(), "y", 1), 1);
    co_await wait_readable(sp.a.get());
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 3);
}

TEST(readiness, waiting_on_a_bad_descriptor_throws) {
  auto o = run_virtual([]() -> task<void> { co_await wait_readable(-1); }());
  ASSERT_TRUE(o.has_error());
  EXPECT_THROW(o.value(), std::system_error);
}

}  // namespace
}  // namespace grove::testing
