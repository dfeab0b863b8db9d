// DESIGN.md §2: the public names users and outside tests rely on, each used
// once through <grove/grove.hpp>. This file failing to compile is the test.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <grove/grove.hpp>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace {

using namespace std::chrono_literals;

grove::task<int> every_name() {
  co_await grove::sleep(1ms);
  co_await grove::sleep_until(grove::now() + 1ms);
  co_await grove::checkpoint();
  int v = co_await grove::finally([]() -> grove::task<int> { co_return 1; }(),
                                  []() -> grove::task<void> { co_return; });
  v += co_await grove::shield([]() -> grove::task<int> { co_return 1; }());

  grove::cancel_scope scope;
  scope.set_deadline(grove::now() + 1s);
  scope.set_shield(false);
  (void)scope.deadline();
  (void)scope.shield();
  std::optional<int> r = co_await scope.run([]() -> grove::task<int> { co_return 1; }());
  (void)scope.cancelled_caught();
  scope.cancel();

  std::optional<int> a =
      co_await grove::move_on_after(1s, []() -> grove::task<int> { co_return 1; }());
  bool b =
      co_await grove::move_on_at(grove::now() + 1s, []() -> grove::task<void> { co_return; }());
  v += co_await grove::fail_after(1s, []() -> grove::task<int> { co_return 1; }());
  v += co_await grove::fail_at(grove::now() + 1s, []() -> grove::task<int> { co_return 1; }());

  co_await grove::with_task_group([](grove::task_group& g) -> grove::task<void> {
    g.spawn([](int) -> grove::task<void> { co_return; }, 1);
    (void)g.size();
    g.cancel();
    co_return;
  });

  std::vector<grove::task<int>> ts;
  ts.push_back([]() -> grove::task<int> { co_return 1; }());
  std::vector<grove::outcome<int>> outs = co_await grove::gather(std::move(ts));
  grove::outcome<int>& o = outs.at(0);
  (void)o.has_value();
  (void)o.has_error();
  (void)o.error();
  (void)o.cancelled();
  v += o.value();

  grove::semaphore sem(1);
  co_await sem.acquire();
  sem.release();
  {
    auto guard = co_await sem.lock();
  }
  grove::event ev;
  ev.set();
  co_await ev.wait();

  v += co_await grove::to_thread([](std::stop_token) { return 1; });

  std::vector<std::function<grove::task<void>()>> jobs;
  jobs.push_back([]() -> grove::task<void> { co_return; });
  grove::run_tasks_options opts;
  opts.fail_fast = false;
  grove::run_report rep = co_await grove::run_tasks(std::move(jobs), 1, opts);
  const grove::job_result& jr = rep.jobs().at(0);
  (void)jr.error;
  (void)jr.started;
  (void)jr.ended;
  (void)rep.count(grove::job_state::completed);
  (void)rep.count(grove::job_state::failed);
  (void)rep.count(grove::job_state::cancelled);
  (void)rep.count(grove::job_state::not_started);
  (void)rep.interrupted();
  (void)rep.size();

  try {
    throw grove::exception_group({std::make_exception_ptr(grove::timeout_error())});
  } catch (const grove::exception_group& g) {
    v += static_cast<int>(g.exceptions().size());
  }
  co_return v + (r ? 1 : 0) + (a ? 1 : 0) + (b ? 1 : 0) + (jr.state == grove::job_state::completed);
}

TEST(public_names, every_design_name_compiles_from_grove_hpp_and_runs) {
  grove::run_options options;
  options.signals = {SIGINT, SIGTERM};
  options.grace = 10s;
  options.on_signal = [](int, int) {};
  int code = grove::run([] { return every_name(); }, options);
  EXPECT_EQ(code, 11);  // 7 from values, 4 from the flags
}

// DESIGN §2 "I/O", each name once through <grove/grove.hpp>, on loopback
// only, leaving no descriptor behind.
grove::task<std::size_t> every_io_name(const std::string& unix_path) {
  std::size_t moved = 0;
  {
    auto [r, w] = grove::make_pipe();
    grove::unique_fd spare(::dup(w.fd()));
    EXPECT_TRUE(static_cast<bool>(spare));
    ::close(spare.release());
    std::byte buf[2] = {std::byte{1}, std::byte{2}};
    moved += co_await w.write_some(std::span(buf).first(1));
    co_await w.write_all(std::span(buf).last(1));
    co_await grove::wait_writable(w.fd());
    co_await grove::wait_readable(r.fd());
    co_await r.read_exact(buf);
    w.shutdown_write();
    moved += co_await r.read_some(buf);  // 0: end of stream
    EXPECT_THROW(co_await r.read_exact(buf), grove::end_of_stream);
    EXPECT_FALSE(r.broken());
    r.close();
  }
  grove::tcp_listener l = grove::tcp_listener::bind("127.0.0.1", 0);
  grove::stream c = co_await grove::tcp_connect("127.0.0.1", l.port());
  grove::stream s = co_await l.accept();
  grove::unix_listener u = grove::unix_listener::bind(unix_path);
  grove::stream uc = co_await grove::unix_connect(u.path());
  grove::stream us = co_await u.accept();
  static_assert(std::is_base_of_v<std::logic_error, grove::broken_stream_error>);
  co_return moved + (c.fd() >= 0) + (s.fd() >= 0) + (uc.fd() >= 0) + (us.fd() >= 0);
}

int open_fds() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) n += ::fcntl(fd, F_GETFD) != -1;
  return n;
}

TEST(public_names, every_io_name_compiles_from_grove_hpp_and_leaves_no_descriptor) {
  std::string dir = ::testing::TempDir() + "grove_names_XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  grove::virtual_loop loop;
  int before = open_fds();  // the loop's own epoll and eventfd included
  auto o = loop.run(every_io_name(dir + "/sock"));
  ::unlink((dir + "/sock").c_str());
  ::rmdir(dir.c_str());
  EXPECT_EQ(o.value(), 5u);
  EXPECT_EQ(open_fds(), before);
}

// DESIGN §2 "Processes": every name, on real children (the real loop: a
// virtual one never waits for a pidfd).
grove::task<int> every_process_name() {
  grove::process_options o;
  o.argv = {"/bin/sh", "-c", "read x; echo \"$x\"; echo e >&2; exit 3"};
  o.env = std::nullopt;
  o.cwd = "/";
  o.stdin_ = grove::stdio::pipe;
  o.stdout_ = grove::stdio::pipe;
  o.stderr_ = grove::stdio::null;
  o.new_process_group = true;
  o.terminate_signal = SIGTERM;
  o.kill_grace = 1s;
  grove::process p = grove::process::spawn(std::move(o));
  (void)p.pid();
  co_await p.stdin_stream().write_all(std::as_bytes(std::span("hi\n", 3)));
  p.stdin_stream().close();
  std::array<std::byte, 8> buf;
  std::size_t n = co_await p.stdout_stream().read_some(buf);
  (void)&grove::process::stderr_stream;
  p.send_signal(0);
  grove::exit_status st = co_await p.wait();
  int sum =
      static_cast<int>(n) + st.exited() + st.code() + st.signaled() + st.signal() + st.shell_code();

  grove::process_options sleeper;
  sleeper.argv = {"sleep", "100"};
  grove::process q = grove::process::spawn(std::move(sleeper));
  grove::exit_status killed = co_await q.terminate(1s);
  sum += killed.signaled();

  grove::run_process_options ro;
  ro.input = "x";
  ro.capture_stdout = true;
  ro.capture_stderr = true;
  ro.check = false;
  ro.cwd = "/";
  ro.env = std::nullopt;
  ro.kill_grace = 1s;
  // (Named vectors: g++ 12 cannot take a braced list of strings in a
  // co_await operand, "array used as initializer"; docs/gcc12.md.)
  std::vector<std::string> cat{"cat"}, fails{"false"};
  grove::completed_process r = co_await grove::run_process(std::move(cat), ro);
  sum += static_cast<int>(r.out.size() + r.err.size()) + r.status.code();
  try {
    co_await grove::run_process(std::move(fails));
  } catch (const grove::process_error& e) {
    sum += e.result().status.code();
  }
  co_return sum;  // 3 ("hi\n") + 1 + 3 + 0 + 0 + 3, + 1 (killed), + 1 ("x"), + 1 (false)
}

TEST(public_names, every_process_name_compiles_from_grove_hpp_and_leaves_no_descriptor) {
  grove::event_loop loop;
  int before = open_fds();
  auto o = loop.run(every_process_name());
  EXPECT_EQ(o.value(), 13);
  EXPECT_EQ(open_fds(), before);
}

}  // namespace
