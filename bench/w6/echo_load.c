/* W6 load generator: TCP echo ping-pong on loopback, the same program for
 * every server (bench/w6/README.md).
 *
 *   echo_load --port P [--host 127.0.0.1|::1] [--conns C] [--size S]
 *             [--duration-s D] [--warmup-s W] [--max-requests M]
 *
 * Opens C connections to HOST:P (loopback only: any other address is
 * refused). Each connection sends an S-byte message, waits for the same S
 * bytes back (checked byte for byte), and sends the next one at once. One
 * thread, one epoll set (level-triggered). Requests completed during the
 * first W seconds are not counted; then every request completed in the
 * next D seconds is counted and its latency (clock_gettime(CLOCK_MONOTONIC)
 * from the first byte sent to the last byte received) recorded; requests
 * still in flight at the end are drained, not counted. Bounded: at most
 * M requests are recorded (the measurement stops there), and the whole run
 * is abandoned after W + D + 5 s. Prints one JSON line:
 *
 *   {"workload": "w6", "conns": 16, "size": 64, "requests": ..., "rps": ...,
 *    "p50_us": ..., "p99_us": ..., "p999_us": ..., "max_us": ..., "check": "ok", ...}
 *
 * Exit status 0 when the check is "ok", 1 when the run failed (the JSON line
 * says why), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_CONNS = 1024, MAX_SIZE = 65536, MAX_EVENTS = 256 };

struct conn {
  int fd;
  unsigned char* tx;
  unsigned char* rx;
  size_t sent, got;
  uint64_t seq;
  int64_t t_start;  /* ns, when the current request's first byte went */
  int want_out;     /* EPOLLOUT armed (a partial send is pending) */
  int busy;         /* a request is in flight */
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(const char* msg) {
  fprintf(stderr,
          "echo_load: %s\n"
          "usage: echo_load --port P [--host 127.0.0.1|::1] [--conns C (1..%d)] "
          "[--size S (1..%d)] [--duration-s D] [--warmup-s W] [--max-requests M]\n",
          msg, MAX_CONNS, MAX_SIZE);
  exit(2);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct_us(const uint64_t* v, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)v[i] / 1e3;
}

/* The message for request `seq` on connection `c`: every byte depends on
 * both, so a misrouted or stale echo is caught. */
static void fill(struct conn* c, size_t size, int index) {
  for (size_t i = 0; i < size; ++i)
    c->tx[i] = (unsigned char)(c->seq * 131u + (uint64_t)i * 7u + (uint64_t)index * 17u);
}

static char check[256] = "ok";

static void fail(const char* what, int err) {
  if (strcmp(check, "ok") == 0)
    snprintf(check, sizeof check, "%s%s%s", what, err ? ": " : "", err ? strerror(err) : "");
}

/* Sends what is left of the current message; arms EPOLLOUT if it did not all go. */
static int push(int ep, struct conn* c, size_t size, int index) {
  while (c->sent < size) {
    ssize_t n = send(c->fd, c->tx + c->sent, size - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    fail("send", errno);
    return -1;
  }
  int want = c->sent < size;
  if (want != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.u32 = (uint32_t)index};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
      fail("epoll_ctl", errno);
      return -1;
    }
    c->want_out = want;
  }
  return 0;
}

static int start(int ep, struct conn* c, size_t size, int index) {
  c->seq++;
  fill(c, size, index);
  c->sent = c->got = 0;
  c->busy = 1;
  c->t_start = now_ns();
  return push(ep, c, size, index);
}

int main(int argc, char** argv) {
  const char* host = "127.0.0.1";
  long port = -1, conns = 1, size = 64;
  double duration = 2.0, warmup = 0.25;
  long max_requests = 5000000;
  static const struct option opts[] = {
      {"host", required_argument, 0, 'h'},       {"port", required_argument, 0, 'p'},
      {"conns", required_argument, 0, 'c'},      {"size", required_argument, 0, 's'},
      {"duration-s", required_argument, 0, 'd'}, {"warmup-s", required_argument, 0, 'w'},
      {"max-requests", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    switch (o) {
      case 'h': host = optarg; break;
      case 'p': port = strtol(optarg, NULL, 10); break;
      case 'c': conns = strtol(optarg, NULL, 10); break;
      case 's': size = strtol(optarg, NULL, 10); break;
      case 'd': duration = strtod(optarg, NULL); break;
      case 'w': warmup = strtod(optarg, NULL); break;
      case 'm': max_requests = strtol(optarg, NULL, 10); break;
      default: usage("bad option");
    }
  }
  if (optind != argc) usage("unexpected argument");
  if (port < 1 || port > 65535) usage("--port must be 1..65535");
  if (conns < 1 || conns > MAX_CONNS) usage("--conns out of range");
  if (size < 1 || size > MAX_SIZE) usage("--size out of range");
  if (!(duration >= 0.05 && duration <= 60)) usage("--duration-s must be 0.05..60");
  if (!(warmup >= 0 && warmup <= 10)) usage("--warmup-s must be 0..10");
  if (max_requests < 1 || max_requests > 50000000) usage("--max-requests must be 1..50000000");

  /* Loopback only: exactly 127.0.0.1 or ::1. */
  struct sockaddr_storage addr;
  socklen_t alen;
  memset(&addr, 0, sizeof addr);
  if (strcmp(host, "127.0.0.1") == 0) {
    struct sockaddr_in* a = (struct sockaddr_in*)&addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    alen = sizeof *a;
  } else if (strcmp(host, "::1") == 0) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    a->sin6_addr = in6addr_loopback;
    alen = sizeof *a;
  } else {
    usage("--host must be 127.0.0.1 or ::1 (loopback only)");
  }

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("echo_load: epoll_create1");
    return 1;
  }
  struct conn* cs = calloc((size_t)conns, sizeof *cs);
  size_t cap = (size_t)max_requests < 1u << 20 ? (size_t)max_requests : 1u << 20;
  uint64_t* lat = malloc(cap * sizeof *lat);
  if (!cs || !lat) {
    fputs("echo_load: out of memory\n", stderr);
    return 1;
  }
  int opened = 0;
  for (int i = 0; i < conns; ++i) {
    struct conn* c = &cs[i];
    c->tx = malloc((size_t)size);
    c->rx = malloc((size_t)size);
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!c->tx || !c->rx || c->fd < 0) {
      fail("socket", errno);
      break;
    }
    ++opened;
    /* A blocking connect (loopback: immediate), then non-blocking I/O. */
    if (connect(c->fd, (struct sockaddr*)&addr, alen) != 0) {
      fail("connect", errno);
      break;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
      fail("epoll_ctl", errno);
      break;
    }
  }

  size_t nlat = 0;
  long warm_requests = 0;
  int64_t t_begin = now_ns();
  int64_t t_measure = t_begin + (int64_t)(warmup * 1e9);
  int64_t t_end = t_measure + (int64_t)(duration * 1e9);
  int64_t t_abandon = t_end + 5000000000LL;
  int64_t t_stopped = 0; /* when the measurement ended (t_end, or the count bound) */
  int in_flight = 0;

  if (strcmp(check, "ok") == 0) {
    for (int i = 0; i < conns && strcmp(check, "ok") == 0; ++i)
      if (start(ep, &cs[i], (size_t)size, i) == 0) ++in_flight;
  }

  struct epoll_event evs[MAX_EVENTS];
  while (strcmp(check, "ok") == 0 && in_flight > 0) {
    int64_t now = now_ns();
    if (now >= t_abandon) {
      fail("did not finish: requests still in flight 5 s after the end", 0);
      break;
    }
    if (!t_stopped && now >= t_end) t_stopped = t_end;
    int64_t until = t_stopped ? t_abandon : t_end;
    int timeout_ms = (int)((until - now) / 1000000) + 1;
    int k = epoll_wait(ep, evs, MAX_EVENTS, timeout_ms);
    if (k < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait", errno);
      break;
    }
    for (int e = 0; e < k && strcmp(check, "ok") == 0; ++e) {
      int i = (int)evs[e].data.u32;
      struct conn* c = &cs[i];
      if (!c->busy) continue;
      if ((evs[e].events & EPOLLOUT) && push(ep, c, (size_t)size, i) != 0) break;
      if (!(evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      ssize_t n = -1;
      while (c->got < (size_t)size &&
             (n = recv(c->fd, c->rx + c->got, (size_t)size - c->got, 0)) != 0) {
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) fail("recv", errno);
          break;
        }
        c->got += (size_t)n;
      }
      if (strcmp(check, "ok") != 0) break;
      if (c->got < (size_t)size) {
        if (n == 0) fail("the server closed a connection", 0);
        continue;
      }
      if (c->got > c->sent) {
        fail("received bytes before they were sent", 0);
        break;
      }
      int64_t t = now_ns();
      if (memcmp(c->rx, c->tx, (size_t)size) != 0) {
        fail("the echo differs from the message sent", 0);
        break;
      }
      c->busy = 0;
      --in_flight;
      if (t_stopped) continue; /* draining: no new requests */
      if (t >= t_end) {
        t_stopped = t_end;
        continue;
      }
      if (t < t_measure) {
        ++warm_requests;
      } else {
        if (nlat == cap) {
          size_t ncap = cap * 2 < (size_t)max_requests ? cap * 2 : (size_t)max_requests;
          uint64_t* more = ncap > cap ? realloc(lat, ncap * sizeof *lat) : NULL;
          if (!more) {
            t_stopped = t; /* the count bound: stop measuring here */
            continue;
          }
          lat = more;
          cap = ncap;
        }
        lat[nlat++] = (uint64_t)(t - c->t_start);
      }
      if (start(ep, c, (size_t)size, i) == 0) ++in_flight;
    }
  }
  if (!t_stopped) t_stopped = now_ns();

  for (int i = 0; i < opened; ++i) close(cs[i].fd);
  close(ep);

  double secs = (double)(t_stopped - t_measure) / 1e9;
  qsort(lat, nlat, sizeof *lat, cmp_u64);
  if (strcmp(check, "ok") == 0 && nlat == 0) fail("no request completed in the measured interval", 0);
  printf(
      "{\"workload\": \"w6\", \"host\": \"%s\", \"port\": %ld, \"conns\": %ld, \"size\": %ld, "
      "\"warmup_s\": %.3f, \"duration_s\": %.3f, \"warmup_requests\": %ld, \"requests\": %zu, "
      "\"rps\": %.1f, \"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, "
      "\"check\": \"%s\"}\n",
      host, port, conns, size, warmup, secs, warm_requests, nlat, secs > 0 ? (double)nlat / secs : 0.0,
      pct_us(lat, nlat, 0.50), pct_us(lat, nlat, 0.99), pct_us(lat, nlat, 0.999),
      nlat ? (double)lat[nlat - 1] / 1e3 : 0.0, check);
  for (int i = 0; i < conns; ++i) {
    free(cs[i].tx);
    free(cs[i].rx);
  }
  free(cs);
  free(lat);
  return strcmp(check, "ok") == 0 ? 0 : 1;
}
