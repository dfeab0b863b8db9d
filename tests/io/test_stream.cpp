// stream over pipes: reads and writes, waits that cancel in O(1), and the
// partial-I/O contract (DESIGN §2): a cancelled read_some or write_some moved
// nothing; a cancelled write_all or read_exact leaves the stream broken.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <grove/io.hpp>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "io/io_testing.hpp"
#include "virtual_time.hpp"

namespace grove::testing {
namespace {

std::string text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TEST(stream, what_is_written_is_read_in_order) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [r, w] = make_pipe();
    co_await w.write_all(bytes("hello, grove"));
    std::vector<std::byte> buf(12);
    co_await r.read_exact(buf);
    co_return text(buf);
  }());
  EXPECT_EQ(o.value(), "hello, grove");
}

TEST(stream, a_reader_waits_for_the_writer_and_sees_the_end_of_stream) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    auto [r, w] = make_pipe();
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        std::vector<std::byte> buf(64);
        for (;;) {
          std::size_t n = co_await r.read_some(buf);
          j((n == 0 ? std::string("end") : "read " + text(std::span(buf).first(n))) + at());
          if (n == 0) co_return;
        }
      });
      g.spawn([&]() -> task<void> {
        co_await sleep(5ms);
        co_await w.write_all(bytes("ab"));
        co_await sleep(5ms);
        w.shutdown_write();  // a pipe's write end closes: the reader sees 0
      });
      co_return;
    });
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(j.lines, (lines{"read ab at 5", "end at 10"}));
}

TEST(stream, a_cancelled_read_some_consumed_nothing) {
  auto o = run_virtual([]() -> task<std::string> {
    auto [r, w] = make_pipe();
    std::vector<std::byte> buf(8);
    auto nothing = co_await move_on_after(5ms, r.read_some(buf));
    EXPECT_FALSE(nothing.has_value());
    co_await w.write_all(bytes("x"));
    std::size_t n = co_await r.read_some(buf);  // the byte is still there
    co_return text(std::span(buf).first(n));
  }());
  EXPECT_EQ(o.value(), "x");
}

TEST(stream, a_write_all_cancelled_part_way_leaves_the_stream_broken) {
  auto o = run_virtual([]() -> task<void> {
    auto [r, w] = make_pipe();
    std::string big(1 << 20, 'z');  // far more than a pipe holds
    bool done = co_await move_on_after(5ms, w.write_all(bytes(big)));
    EXPECT_FALSE(done);
    EXPECT_TRUE(w.broken());
    EXPECT_THROW(co_await w.write_some(bytes("more")), broken_stream_error);
    EXPECT_FALSE(r.broken());  // the reader's position is still exact
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(stream, a_write_all_cancelled_before_any_byte_moved_leaves_it_usable) {
  auto o = run_virtual([]() -> task<void> {
    auto [r, w] = make_pipe();
    std::string fill(1 << 20, 'f');
    while (co_await move_on_after(1ms, w.write_some(bytes(fill)))) {
    }  // the pipe is full now
    bool done = co_await move_on_after(5ms, w.write_all(bytes("late")));
    EXPECT_FALSE(done);
    EXPECT_FALSE(w.broken());
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(stream, read_exact_throws_end_of_stream_when_the_writer_stops_short) {
  auto o = run_virtual([]() -> task<void> {
    auto [r, w] = make_pipe();
    co_await w.write_all(bytes("abc"));
    w.close();
    std::vector<std::byte> buf(8);
    EXPECT_THROW(co_await r.read_exact(buf), end_of_stream);
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(stream, closing_a_descriptor_wakes_its_waiter_with_ebadf) {
  auto o = run_virtual([]() -> task<void> {
    auto [r, w] = make_pipe();
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        std::vector<std::byte> buf(8);
        try {
          co_await r.read_some(buf);
          ADD_FAILURE() << "read returned";
        } catch (const std::system_error& e) {
          EXPECT_EQ(e.code().value(), EBADF);
        }
      });
      g.spawn([&]() -> task<void> {
        co_await sleep(1ms);
        r.close();
      });
      co_return;
    });
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(stream, writing_to_a_pipe_whose_reader_is_gone_throws_epipe) {
  auto o = run_virtual([]() -> task<void> {
    auto [r, w] = make_pipe();
    r.close();
    try {
      co_await w.write_all(bytes("anyone?"));
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE);  // and SIGPIPE did not kill us
    }
  }());
  EXPECT_TRUE(o.has_value());
}

// (review B2) A released descriptor leaves grove's registry: when another
// owner closes it and the number is reused, the new descriptor works.
TEST(stream, a_released_descriptors_number_can_be_reused) {
  auto o = run_virtual([]() -> task<std::string> {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    {
      unique_fd r(p[0]);
      (void)co_await move_on_after(1ms, wait_readable(r.get()));  // registers it
      ::close(r.release());  // handed to "another library", which closes it
    }
    ::close(p[1]);
    auto [rd, wr] = make_pipe();  // likely the same number again
    std::string got;
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        co_await sleep(10ms);
        co_await wr.write_all(bytes("x"));
      });
      std::vector<std::byte> b(1);
      auto n = co_await move_on_after(1s, rd.read_some(b));
      got = n ? "read" : "timed out";
    });
    co_return got;
  }());
  EXPECT_EQ(o.value(), "read");
}

TEST(stream, no_descriptor_outlives_its_stream) {
  int before = open_fds();
  auto o = run_virtual([]() -> task<void> {
    for (int i = 0; i < 50; ++i) {
      auto [r, w] = make_pipe();
      co_await w.write_all(bytes("x"));
      std::vector<std::byte> b(1);
      co_await r.read_exact(b);
      (void)co_await move_on_after(1ms, r.read_some(b));  // registered, then closed
    }
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(open_fds(), before);
}

// On a real loop: a writer pushes 1 MiB in random chunks while the reader's
// read_some is cancelled at random sub-millisecond moments. Every byte
// arrives once, in order: through a pipe, and through loopback TCP.
task<std::pair<stream, stream>> connected(bool tcp) {
  if (!tcp) co_return make_pipe();
  auto l = tcp_listener::bind("127.0.0.1", 0);
  stream c = co_await tcp_connect("127.0.0.1", l.port());
  stream s = co_await l.accept();
  co_return std::pair<stream, stream>(std::move(s), std::move(c));  // {reader, writer}
}

void random_cancels(bool tcp) {
  constexpr std::size_t total = 1 << 20;
  std::vector<std::byte> sent(total);
  for (std::size_t i = 0; i < total; ++i) sent[i] = std::byte(i * 131 % 251);
  std::vector<std::byte> got;
  int cancels = 0;
  event_loop loop;
  auto o = loop.run([&]() -> task<void> {
    auto [r, w] = co_await connected(tcp);
    co_await with_task_group([&](task_group& g) -> task<void> {
      g.spawn([&]() -> task<void> {
        std::mt19937 rng(1);
        std::size_t at = 0;
        while (at < total) {
          std::size_t n = std::min<std::size_t>(total - at, 1 + rng() % 9000);
          co_await w.write_all(std::span(sent).subspan(at, n));
          at += n;
          if (rng() % 4 == 0) co_await sleep(std::chrono::microseconds(rng() % 200));
        }
        w.shutdown_write();
      });
      g.spawn([&]() -> task<void> {
        std::mt19937 rng(2);
        std::vector<std::byte> buf(4096);
        for (;;) {
          auto deadline = std::chrono::microseconds(rng() % 300);
          auto n = co_await move_on_after(deadline, r.read_some(buf));
          if (!n) {
            ++cancels;
            continue;
          }
          if (*n == 0) co_return;
          got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
        }
      });
      co_return;
    });
  }());
  ASSERT_TRUE(o.has_value());
  EXPECT_GT(cancels, 0) << "no read was cancelled: the test proved nothing";
  ASSERT_EQ(got.size(), total);
  EXPECT_TRUE(got == sent);
}

TEST(stream, random_cancels_of_the_reader_lose_and_duplicate_nothing_on_a_pipe) {
  random_cancels(false);
}

TEST(stream, random_cancels_of_the_reader_lose_and_duplicate_nothing_over_tcp) {
  random_cancels(true);
}

}  // namespace
}  // namespace grove::testing
