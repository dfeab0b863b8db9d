// A TCP echo server (one message = one line) that stops correctly.
//
//   echo_server [PORT]      (default 0: the kernel picks; the port is printed)
//
// Each connection is served in a task group under grove::run. On Ctrl+C (or
// SIGTERM) the server stops accepting, closes idle connections at once, lets
// a connection that is in the middle of a message finish it and get its
// echo (bounded by the grace period: a second Ctrl+C, or 10 s, cuts it
// short), closes every connection, and exits by the signal.
#include <cstdio>
#include <cstdlib>
#include <grove/grove.hpp>
#include <string>
#include <vector>

namespace {

// Reads until the message that has started is complete, then echoes every
// complete line. Awaited under a shield: Ctrl+C does not cut a message.
grove::task<void> finish_message(grove::stream& s, std::string& pending) {
  std::vector<std::byte> buf(4096);
  while (pending.find('\n') == std::string::npos) {
    std::size_t n = co_await s.read_some(buf);
    if (n == 0) co_return;  // the client went away mid-message
    pending.append(reinterpret_cast<const char*>(buf.data()), n);
  }
  std::size_t end = pending.rfind('\n') + 1;
  co_await s.write_all(std::as_bytes(std::span(pending.data(), end)));
  pending.erase(0, end);
}

grove::task<void> serve(grove::stream& s, int id) {
  std::printf("conn %d: open\n", id);
  std::string pending;
  std::vector<std::byte> buf(4096);
  for (;;) {
    std::size_t n = co_await s.read_some(buf);  // idle: Ctrl+C cancels it at once
    if (n == 0) break;
    pending.append(reinterpret_cast<const char*>(buf.data()), n);
    std::printf("conn %d: message started\n", id);
    co_await grove::shield(finish_message(s, pending));
  }
  std::printf("conn %d: closed by the client\n", id);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
  grove::run_options options;
  options.on_signal = [](int, int stage) {
    if (stage == 1) std::printf("stopping: no new connections; open messages finish\n");
  };
  return grove::run(
      [port]() -> grove::task<int> {
        auto listener = grove::tcp_listener::bind("127.0.0.1", port);
        std::printf("listening on 127.0.0.1:%u\n", listener.port());
        co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
          for (int id = 1;; ++id) g.spawn(serve, co_await listener.accept(), id);
        });
        co_return 0;
      },
      std::move(options));
}
