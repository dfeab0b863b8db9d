/* W6 anchor: a minimal raw-epoll TCP echo server, the floor for the others.
 *
 *   echo_epoll [--port P]      (P = 0, the default: the kernel picks one)
 *
 * Listens on 127.0.0.1 only, prints "port N" on stdout, and echoes every
 * byte back on the connection it came from. One thread, one epoll set,
 * level-triggered: per readiness one read of up to 64 KiB and a write of what
 * was read; what the socket does not take is kept and the connection stops
 * reading until it has gone (EPOLLOUT). SIGINT or SIGTERM (through a
 * signalfd) closes everything and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF = 65536, MAX_EVENTS = 256 };

struct conn {
  int fd;
  int out;                   /* watching EPOLLOUT instead of EPOLLIN */
  size_t pend_off, pend_len; /* unsent bytes in buf */
  unsigned char buf[BUF];
};

static struct conn** by_fd; /* every open connection, indexed by descriptor */
static size_t by_fd_len;

static void drop(int ep, struct conn* c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  by_fd[c->fd] = NULL;
  free(c);
}

/* Writes the pending bytes; watches EPOLLOUT instead of EPOLLIN until they
 * are gone. Returns -1 when the connection failed (and was dropped). */
static int flush(int ep, struct conn* c) {
  while (c->pend_len > 0) {
    ssize_t n = send(c->fd, c->buf + c->pend_off, c->pend_len, MSG_NOSIGNAL);
    if (n > 0) {
      c->pend_off += (size_t)n;
      c->pend_len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    drop(ep, c);
    return -1;
  }
  int out = c->pend_len > 0;
  if (out != c->out) { /* only when it changes: the usual echo costs no epoll_ctl */
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->out = out;
  }
  return 0;
}

int main(int argc, char** argv) {
  long port = 0;
  static const struct option opts[] = {{"port", required_argument, 0, 'p'}, {0, 0, 0, 0}};
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    if (o != 'p') {
      fputs("usage: echo_epoll [--port P]\n", stderr);
      return 2;
    }
    port = strtol(optarg, NULL, 10);
  }
  if (port < 0 || port > 65535 || optind != argc) {
    fputs("usage: echo_epoll [--port P (0..65535)]\n", stderr);
    return 2;
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (sfd < 0 || lfd < 0 || bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr*)&a, &alen) != 0) {
    perror("echo_epoll");
    return 1;
  }
  printf("port %u\n", ntohs(a.sin_port));
  fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &lfd};
  struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &sfd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0 ||
      epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) != 0) {
    perror("echo_epoll: epoll");
    return 1;
  }

  struct epoll_event evs[MAX_EVENTS];
  for (int running = 1; running;) {
    int k = epoll_wait(ep, evs, MAX_EVENTS, -1);
    if (k < 0) {
      if (errno == EINTR) continue;
      perror("echo_epoll: epoll_wait");
      return 1;
    }
    for (int e = 0; e < k; ++e) {
      void* p = evs[e].data.ptr;
      if (p == &sfd) {
        running = 0;
        break;
      }
      if (p == &lfd) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if ((size_t)fd >= by_fd_len) {
            size_t len = (size_t)fd * 2 + 64;
            struct conn** more = realloc(by_fd, len * sizeof *more);
            if (!more) {
              close(fd);
              continue;
            }
            memset(more + by_fd_len, 0, (len - by_fd_len) * sizeof *more);
            by_fd = more;
            by_fd_len = len;
          }
          struct conn* c = malloc(sizeof *c);
          if (!c) {
            close(fd);
            continue;
          }
          c->fd = fd;
          c->out = 0;
          c->pend_off = c->pend_len = 0;
          by_fd[fd] = c;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      struct conn* c = p;
      if (c->out) { /* EPOLLOUT: the rest of the last echo */
        flush(ep, c);
        continue;
      }
      ssize_t n = recv(c->fd, c->buf, BUF, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) { /* end of stream or an error (a reset): done with it */
        drop(ep, c);
        continue;
      }
      c->pend_off = 0;
      c->pend_len = (size_t)n;
      flush(ep, c);
    }
  }

  for (size_t fd = 0; fd < by_fd_len; ++fd)
    if (by_fd[fd]) drop(ep, by_fd[fd]);
  free(by_fd);
  close(lfd);
  close(sfd);
  close(ep);
  return 0;
}
