/* W5p floor: spawn and wait N processes of PROGRAM, P at a time, with
 * nothing but posix_spawnp and waitpid (bench/w5p/README.md).
 *
 *   spawn_floor [--n 2000] [--parallel 2] [--program /usr/bin/true] [--like-grove]
 *               [--with-arg]
 *
 * Starts P children, then loops: waitpid(-1) for any one, check it exited
 * with 0, start the next, until N have been reaped. The children get the
 * parent's environment (environ) and stdio; posix_spawnp looks PROGRAM up in
 * PATH only if it has no '/'. Without --like-grove: no attributes and no file
 * actions (NULL, NULL), the cheapest spawn glibc offers.
 *
 * --like-grove asks glibc for what grove::process::spawn asks for by default
 * (src/process/process.cpp): a process group of the child's own, an empty
 * signal mask, every signal reset to its default (glibc's internal 32 and 33
 * too), and every descriptor above 2 closed. It still waits with waitpid: the
 * difference from grove is then grove's own machinery (pidfd, epoll, waitid,
 * the coroutines), not what the child is asked to do.
 *
 * --with-arg runs `PROGRAM K` for K = 1..N, as `grove true ::: $(seq N)` and
 * xargs do (W5): GNU true given an argument sets up its locale to look for
 * --help, which costs the child about 150 us more than a bare `true`.
 *
 * Times from just before the first spawn to just after the last reap and
 * prints one JSON line, the same shape as spawn_grove's:
 *   {"impl":"floor","workload":"w5p","n":..,"parallel":..,"program":..,
 *    "total_ms":..,"value":<µs per spawn>,"unit":"us/spawn","cpu_ms":..,"check":"ok"}
 * cpu_ms: this process's own CPU time (user + system, getrusage), its whole
 * life so far, start-up included; the children's is not in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_long(const char* s, long* out) {
  char* end = NULL;
  *out = strtol(s, &end, 10);
  return *s != '\0' && *end == '\0';
}

/* A JSON string: the program path and error messages are quoted. */
static void put_string(const char* s) {
  putchar('"');
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar((unsigned char)*s < 0x20 ? ' ' : *s);
  }
  putchar('"');
}

static double own_cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Prints the JSON line; total_ms < 0 means there is no figure. */
static void report(const char* impl, long n, long parallel, const char* program, double total_ms,
                   const char* check) {
  printf("{\"impl\": \"%s\", \"workload\": \"w5p\", \"n\": %ld, \"parallel\": %ld, \"program\": ",
         impl, n, parallel);
  put_string(program);
  if (total_ms >= 0)
    printf(", \"total_ms\": %.3f, \"value\": %.3f, ", total_ms, total_ms * 1000.0 / (double)n);
  else
    printf(", \"total_ms\": null, \"value\": null, ");
  printf("\"unit\": \"us/spawn\", \"cpu_ms\": %.3f, \"check\": ", own_cpu_ms());
  put_string(check);
  puts("}");
}

int main(int argc, char** argv) {
  long n = 2000, parallel = 2;
  const char* program = "/usr/bin/true";
  int like_grove = 0;
  int with_arg = 0;
  for (int i = 1; i < argc; ++i) {
    int has_value = i + 1 < argc, good = 0;
    if (strcmp(argv[i], "--n") == 0 && has_value)
      good = parse_long(argv[++i], &n) && n >= 1;
    else if (strcmp(argv[i], "--parallel") == 0 && has_value)
      good = parse_long(argv[++i], &parallel) && parallel >= 1;
    else if (strcmp(argv[i], "--program") == 0 && has_value)
      good = (program = argv[++i])[0] != '\0';
    else if (strcmp(argv[i], "--like-grove") == 0)
      good = like_grove = 1;
    else if (strcmp(argv[i], "--with-arg") == 0)
      good = with_arg = 1;
    if (!good) {
      fputs(
          "usage: spawn_floor [--n N] [--parallel P] [--program PATH] [--like-grove] "
          "[--with-arg]\n",
          stderr);
      return 2;
    }
  }
  const char* impl = like_grove ? "floor-like-grove" : "floor";

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t* fap = NULL;
  posix_spawnattr_t* attrp = NULL;
  if (like_grove) {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    /* glibc's sigfillset and sigaddset refuse its two internal signals (32
     * and 33); grove sets their bits by hand, and so does this. */
    all.__val[0] |= (1UL << (32 - 1)) | (1UL << (33 - 1));
    if (posix_spawn_file_actions_init(&fa) || posix_spawnattr_init(&attr) ||
        posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1) ||
        posix_spawnattr_setpgroup(&attr, 0) || posix_spawnattr_setsigmask(&attr, &none) ||
        posix_spawnattr_setsigdefault(&attr, &all) ||
        posix_spawnattr_setflags(
            &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) {
      report(impl, n, parallel, program, -1, "error: setting up the spawn attributes");
      return 1;
    }
    fap = &fa;
    attrp = &attr;
  }

  char number[24] = "";
  char* child_argv[] = {(char*)program, with_arg ? number : NULL, NULL};
  long started = 0, ok = 0, failed = 0;
  char check[160] = "ok";
  double t0 = now_ms();
  for (; started < n && started < parallel; ++started) {
    pid_t pid;
    snprintf(number, sizeof number, "%ld", started + 1);
    int rc = posix_spawnp(&pid, program, fap, attrp, child_argv, environ);
    if (rc != 0) {
      snprintf(check, sizeof check, "error: spawn %s: %s", program, strerror(rc));
      break;
    }
  }
  while (ok + failed < started) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      snprintf(check, sizeof check, "error: waitpid: %s", strerror(errno));
      break;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      ++ok;
    } else if (failed++ == 0 && strcmp(check, "ok") == 0) {
      snprintf(check, sizeof check, "pid %ld ended with wait status %d", (long)pid, status);
    }
    if (started < n && strncmp(check, "error", 5) != 0) {
      snprintf(number, sizeof number, "%ld", started + 1);
      int rc = posix_spawnp(&pid, program, fap, attrp, child_argv, environ);
      if (rc != 0) {
        snprintf(check, sizeof check, "error: spawn %s: %s", program, strerror(rc));
        continue; /* reap what is still running, start nothing more */
      }
      ++started;
    }
  }
  double t1 = now_ms();
  if (strcmp(check, "ok") == 0 && ok != n)
    snprintf(check, sizeof check, "reaped %ld of %ld", ok, n);
  int good = strcmp(check, "ok") == 0;
  report(impl, n, parallel, program, good ? t1 - t0 : -1, check);
  if (like_grove) {
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
  }
  return good ? 0 : 1;
}
