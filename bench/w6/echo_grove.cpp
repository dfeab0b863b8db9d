// W6: grove's TCP echo server, the same shape as the anchors (bench/w6/README.md).
//
//   grove_echo [--port P]      (P = 0, the default: the kernel picks one)
//
// Listens on 127.0.0.1 only (grove::tcp_listener), prints "port N" on stdout;
// one task per connection in a task group reads up to 64 KiB (read_some) and
// writes it all back (write_all). Under grove::run: SIGINT or SIGTERM cancels
// every task at once (nothing is shielded), and the process then exits by
// that signal, as grove::run does (the driver counts that as a clean stop).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <grove/grove.hpp>
#include <span>
#include <system_error>
#include <vector>

#include "port_arg.hpp"

namespace {

grove::task<void> echo(grove::stream& s) {
  std::vector<std::byte> buf(65536);
  try {
    for (;;) {
      std::size_t n = co_await s.read_some(buf);
      if (n == 0) break;  // the client closed
      co_await s.write_all(std::span<const std::byte>(buf.data(), n));
    }
  } catch (const std::system_error&) {
    // a reset: done with this connection
  }
}

}  // namespace

int main(int argc, char** argv) {
  long port = w6_port_arg(argc, argv);
  if (port < 0) {
    std::fputs("usage: grove_echo [--port P (0..65535)]\n", stderr);
    return 2;
  }
  return grove::run([port]() -> grove::task<int> {
    auto listener = grove::tcp_listener::bind("127.0.0.1", static_cast<std::uint16_t>(port));
    std::printf("port %u\n", static_cast<unsigned>(listener.port()));
    std::fflush(stdout);
    co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
      for (;;) g.spawn(echo, co_await listener.accept());
    });
    co_return 0;
  });
}
