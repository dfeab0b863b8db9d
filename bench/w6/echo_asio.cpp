// W6 anchor: a TCP echo server on Boost.Asio with C++20 coroutines
// (co_spawn, awaitable, use_awaitable), the idiomatic modern Asio form.
//
//   echo_asio [--port P]      (P = 0, the default: the kernel picks one)
//
// Listens on 127.0.0.1 only, prints "port N" on stdout; one coroutine per
// connection reads up to 64 KiB and writes it all back (async_write), on one
// io_context run by one thread. SIGINT or SIGTERM (asio::signal_set) stops
// the context, and the process exits 0.
//
// Boost 1.74's Asio enables co_await for clang only with
// <experimental/coroutine> (libc++ of old); with libstdc++'s <coroutine> it
// needs to be told. Its awaitable.hpp also uses std::exchange without
// including <utility>.
#if defined(__clang__) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
// clang-format off
#include <utility>  // first: see above
#include <boost/asio.hpp>
// clang-format on

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "port_arg.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket s) {
  std::array<char, 65536> buf;
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // end of stream or a reset: done with this connection
  }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), echo(std::move(s)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  long port = w6_port_arg(argc, argv);
  if (port < 0) {
    std::fputs("usage: echo_asio [--port P (0..65535)]\n", stderr);
    return 2;
  }
  try {
    asio::io_context ctx(1);  // one thread runs it: no locking inside Asio
    tcp::acceptor acceptor(ctx);
    tcp::endpoint at(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    acceptor.open(at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(at);
    acceptor.listen(4096);
    std::printf("port %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code&, int) { ctx.stop(); });
    asio::co_spawn(ctx, listen(acceptor), asio::detached);
    ctx.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_asio: %s\n", e.what());
    return 1;
  }
  return 0;
}
