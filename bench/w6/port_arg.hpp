// The W6 servers' one option, `[--port P]` (0, the default: the kernel picks
// one). Shared by the C++ servers; echo_epoll.c reads it with getopt.
#pragma once

#include <cstdlib>
#include <cstring>

// The port, or -1 for bad usage (then print the usage line and exit 2).
inline long w6_port_arg(int argc, char** argv) {
  long port = 0;
  if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
    char* end = nullptr;
    port = std::strtol(argv[2], &end, 10);
    if (*end != '\0') port = -1;
  } else if (argc != 1) {
    port = -1;
  }
  return port < 0 || port > 65535 ? -1 : port;
}
