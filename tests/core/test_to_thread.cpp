// grove::to_thread: blocking work on the worker pool, with cancellation that
// requests stop and waits for fn to return.
//
// Synchronisation with worker threads uses latches, condition variables, stop
// tokens, and (in one test) a yield loop on a pool counter; never a sleep.
// Where the loop must act while fn runs (the loop is parked waiting for the
// worker), fn posts a callback to it with post_threadsafe. Two timed waits
// exist, and neither orders anything: a fn that sleeps to stand for slow
// blocking work, and the 100 ms cap on a deliberately held write(2).
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <grove/thread.hpp>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "virtual_time.hpp"

// Holds one write(2) on the thread that armed it, to widen a race window
// deterministically (see the_loop_outlives_the_workers_last_touch). Every
// other write goes straight to the kernel.
namespace held_write {
thread_local bool armed = false;
std::mutex m;
std::condition_variable cv;
bool holding = false;    // the armed write is being held
bool loop_gone = false;  // the test destroyed the loop
bool written = false;    // the held write went through
}  // namespace held_write

extern "C" ssize_t write(int fd, const void* buf, size_t n) {
  if (held_write::armed) {
    held_write::armed = false;
    std::unique_lock lock(held_write::m);
    held_write::holding = true;
    held_write::cv.notify_all();
    // Until the loop is gone, or long enough to show that it waits for us.
    held_write::cv.wait_for(lock, std::chrono::milliseconds(100),
                            [] { return held_write::loop_gone; });
    lock.unlock();
    ssize_t r = syscall(SYS_write, fd, buf, n);
    lock.lock();
    held_write::written = true;
    held_write::cv.notify_all();
    return r;
  }
  return syscall(SYS_write, fd, buf, n);
}

namespace {

using namespace grove;
using namespace grove::testing;

// Awaits to_thread(fn) inside a task of its own (a frame that owns fn).
template <class F>
task<typename detail::thread_awaiter<F>::result_type> offload(F fn) {
  co_return co_await to_thread(std::move(fn));
}

// A callback that runs on the loop thread when posted (from any thread).
struct on_loop {
  std::function<void()> fn;
  detail::ready_node node;
  detail::proxy_frame proxy;
  explicit on_loop(std::function<void()> f) : fn(std::move(f)) {
    proxy = detail::make_proxy<on_loop, &on_loop::run>(this);
    node.target = proxy.handle();
  }
  on_loop(const on_loop&) = delete;
  on_loop& operator=(const on_loop&) = delete;
  void run() noexcept { fn(); }
};

// Blocks until stop is requested on `st` (and never otherwise).
void wait_for_stop(const std::stop_token& st) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait(lock, st, [] { return false; });
}

struct my_error : std::runtime_error {
  explicit my_error(int c) : std::runtime_error("my_error"), code(c) {}
  int code;
};

// --- results -----------------------------------------------------------------

TEST(to_thread, returns_the_value) {
  auto r = run_virtual([]() -> task<int> {
    int a = co_await to_thread([] { return 40; });
    int b = co_await to_thread(
        [](std::stop_token st) { return st.stop_possible() && !st.stop_requested() ? 2 : -100; });
    co_return a + b;
  }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 42);
}

TEST(to_thread, void_move_only_and_reference_results) {
  static int shared_value = 0;
  auto r = run_virtual([]() -> task<int> {
    bool ran = false;
    co_await to_thread([&ran] { ran = true; });
    EXPECT_TRUE(ran);
    std::unique_ptr<int> p = co_await to_thread([] { return std::make_unique<int>(7); });
    int& ref = co_await to_thread([]() -> int& { return shared_value; });
    EXPECT_EQ(&ref, &shared_value);
    co_return *p;
  }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 7);
}

// fn is called exactly once, as an rvalue, and may be move-only.
struct rvalue_only {
  std::unique_ptr<int> payload = std::make_unique<int>(5);
  int operator()() && { return *payload * 2; }
};

TEST(to_thread, calls_a_move_only_callable_once_as_an_rvalue) {
  // rvalue_only() rather than rvalue_only{}: g++ 12 destroys a braced
  // aggregate temporary inside a co_await operand twice (a compiler defect).
  auto r = run_virtual([]() -> task<int> { co_return co_await to_thread(rvalue_only()); }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 10);
}

TEST(to_thread, copies_an_lvalue_callable) {
  auto r = run_virtual([]() -> task<int> {
    auto counter = std::make_shared<int>(0);
    auto fn = [counter] { return ++*counter; };
    int a = co_await to_thread(fn);
    int b = co_await to_thread(fn);
    EXPECT_EQ(counter.use_count(), 2) << "copies of fn outlived their calls";
    co_return a * 10 + b;
  }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 12);
}

TEST(to_thread, propagates_the_exception_unchanged) {
  auto r = run_virtual([]() -> task<int> {
    std::exception_ptr thrown;  // the very object fn threw
    try {
      co_await to_thread([&thrown]() -> int {
        thrown = std::make_exception_ptr(my_error(7));
        std::rethrow_exception(thrown);
      });
      ADD_FAILURE() << "no exception";
    } catch (const my_error& e) {
      EXPECT_EQ(e.code, 7);
      try {
        std::rethrow_exception(thrown);
      } catch (const my_error& original) {
        EXPECT_EQ(&e, &original) << "the exception object was copied or replaced";
      }
      co_return 1;
    } catch (...) {
      ADD_FAILURE() << "wrong exception type";
    }
    co_return 0;
  }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 1);
}

TEST(to_thread, an_uncaught_exception_ends_the_task_with_that_error) {
  auto r = run_virtual(offload([]() -> int { throw my_error(3); }));
  ASSERT_TRUE(r.has_error());
  EXPECT_THROW(r.value(), my_error);
}

// --- threads and signals -------------------------------------------------------

TEST(to_thread, runs_on_another_thread) {
  auto loop_thread = std::this_thread::get_id();
  auto r = run_virtual(offload([] { return std::this_thread::get_id(); }));
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r.value(), loop_thread);
}

// Every signal a thread can block, except those glibc reserves for itself.
std::vector<int> unblocked_signals(const sigset_t& mask) {
  std::vector<int> open;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;  // cannot be blocked
    if (sig >= 32 && sig < SIGRTMIN) continue;       // glibc-internal
    if (sigismember(&mask, sig) != 1) open.push_back(sig);
  }
  return open;
}

TEST(to_thread, workers_block_every_signal) {
  // The loop thread blocks only SIGUSR2; starting workers must not change that.
  sigset_t mine, before, after;
  sigemptyset(&mine);
  sigaddset(&mine, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &mine, &before), 0);

  // Several calls at once from several loops, so several workers answer.
  const unsigned n = 2;  // the pool always has at least two workers
  std::latch together(n);
  std::vector<std::vector<int>> open(n);
  std::vector<std::thread> loops;
  for (unsigned i = 0; i < n; ++i)
    loops.emplace_back([&, i] {
      auto r = run_virtual(offload([&together] {
        together.arrive_and_wait();  // both fns run at once: two distinct workers
        sigset_t m;
        pthread_sigmask(SIG_BLOCK, nullptr, &m);
        return unblocked_signals(m);
      }));
      open[i] = r.value();
    });
  for (auto& t : loops) t.join();
  for (unsigned i = 0; i < n; ++i)
    EXPECT_TRUE(open[i].empty()) << "worker " << i << " leaves signal " << open[i].front()
                                 << " unblocked";

  auto r = run_virtual(offload([] {
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, nullptr, &m);
    return unblocked_signals(m);
  }));
  EXPECT_TRUE(r.value().empty());

  pthread_sigmask(SIG_SETMASK, &before, &after);
  EXPECT_EQ(sigismember(&after, SIGUSR2), 1);
  EXPECT_EQ(sigismember(&after, SIGINT), 0) << "the loop thread's mask was changed";
  EXPECT_EQ(sigismember(&after, SIGTERM), 0) << "the loop thread's mask was changed";
}

// --- the loop waits for the worker ----------------------------------------------

TEST(to_thread, virtual_time_stands_still_while_fn_runs) {
  auto r = run_virtual([]() -> task<long long> {
    // Without the loop's external hold, the virtual clock would jump to this
    // deadline while fn runs and cancel it (or report a deadlock).
    auto v = co_await move_on_after(
        1ms, offload([] {
          std::this_thread::sleep_for(20ms);  // stands for blocking work, not for synchronisation
          return 3;
        }));
    EXPECT_EQ(v, std::optional<int>(3));
    co_return ms();
  }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 0);
}

TEST(to_thread, many_sequential_calls) {
  auto r = run_virtual([]() -> task<long> {
    long sum = 0;
    for (int i = 0; i < 2000; ++i) sum += co_await to_thread([i] { return long{i}; });
    co_return sum;
  }());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), 1999L * 2000 / 2);
}

// Many calls in flight at once on one loop, more than the pool has workers.
TEST(to_thread, many_concurrent_calls_in_a_task_group) {
  constexpr int children = 200;
  std::latch pair(2);  // children 0 and 1 must run at the same time
  auto r = run_virtual([](std::latch& both) -> task<long> {
    long sum = 0;
    co_await with_task_group([&](task_group& g) -> task<void> {
      for (int i = 0; i < children; ++i)
        g.spawn(
            [&sum, &both](int k) -> task<void> {
              sum += co_await to_thread([k, &both] {
                if (k < 2) both.arrive_and_wait();
                return long{k};
              });
            },
            i);
      co_return;
    });
    co_return sum;
  }(pair));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), long{children} * (children - 1) / 2);
  EXPECT_EQ(detail::thread_pool::snapshot().queued, 0U);
}

// Several loops, each on its own thread, share the process-wide pool.
TEST(to_thread, many_concurrent_calls_from_many_loops) {
  constexpr int loops = 6;
  constexpr int calls = 300;
  std::vector<long> sums(loops, -1);
  std::vector<std::thread> threads;
  for (int l = 0; l < loops; ++l)
    threads.emplace_back([&sums, l] {
      auto r = run_virtual([](int base) -> task<long> {
        long sum = 0;
        for (int i = 0; i < calls; ++i)
          sum += co_await to_thread([base, i](std::stop_token) { return long{base + i}; });
        co_return sum;
      }(l * 1000));
      sums[static_cast<std::size_t>(l)] = r.value();
    });
  for (auto& t : threads) t.join();
  for (int l = 0; l < loops; ++l)
    EXPECT_EQ(sums[static_cast<std::size_t>(l)],
              long{l} * 1000 * calls + long{calls} * (calls - 1) / 2);
  auto s = detail::thread_pool::snapshot();
  EXPECT_LE(s.threads, detail::thread_pool::max_threads());
  EXPECT_EQ(s.queued, 0U);
}

// A worker's completion wakes the loop with a write to its eventfd. If
// something else woke the loop before that write, the loop could run the
// completion, finish and be destroyed first: the write would then land on a
// closed fd, or on whatever reused the number. post_threadsafe writes under
// the queue lock the loop needs to see the completion, so it cannot.
TEST(to_thread, the_loop_outlives_the_workers_last_touch) {
  auto loop = std::make_unique<virtual_loop>();
  detail::ready_node other;  // another thread's post wakes the loop meanwhile
  other.target = std::noop_coroutine();
  std::thread waker([&] {
    {
      std::unique_lock lock(held_write::m);
      held_write::cv.wait(lock, [] { return held_write::holding; });
    }
    loop->post_threadsafe(other);
  });
  auto out = loop->run(offload([] { held_write::armed = true; }));  // arms the worker's next write
  EXPECT_TRUE(out.has_value());
  waker.join();
  loop.reset();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);  // likely reuses the eventfd's number
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  {
    std::unique_lock lock(held_write::m);
    held_write::loop_gone = true;
    held_write::cv.notify_all();
    held_write::cv.wait(lock, [] { return held_write::written; });
  }
  char junk[16];
  EXPECT_EQ(read(fds[0], junk, sizeof junk), -1)
      << "a worker wrote to the loop's fd after the loop was destroyed";
  close(fds[0]);
  close(fds[1]);
}

// --- cancellation ---------------------------------------------------------------

// Records, when the frame it lives in is destroyed, whether fn had returned.
struct frame_probe {
  const std::atomic<bool>* fn_returned;
  bool* seen;
  ~frame_probe() { *seen = fn_returned->load(); }
};

TEST(to_thread, cancel_requests_stop_and_waits_for_fn) {
  virtual_loop loop;
  cancel_scope scope;
  on_loop cancel([&] { scope.cancel(); });
  std::atomic<bool> fn_returned{false};
  bool fn_saw_stop = false;
  bool frame_died_after_fn = false;
  bool resumed = false;

  auto body = [&]() -> task<int> {
    frame_probe probe{&fn_returned, &frame_died_after_fn};
    int frame_local =
        0;  // fn writes it after stop: ASan sees a use-after-free if the frame died early
    int v = co_await to_thread([&](std::stop_token st) {
      loop.post_threadsafe(cancel.node);  // cancel the scope while fn runs
      wait_for_stop(st);
      fn_saw_stop = st.stop_requested();
      frame_local = 1;
      fn_returned = true;
      return 1;
    });
    resumed = true;
    co_return v + frame_local;
  };
  auto main = [&]() -> task<void> {
    auto r = co_await scope.run(body());
    EXPECT_FALSE(r.has_value());
    EXPECT_TRUE(fn_returned.load()) << "the scope returned before fn did";
  };
  auto out = loop.run(main());
  EXPECT_TRUE(out.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_TRUE(fn_saw_stop);
  EXPECT_TRUE(frame_died_after_fn) << "the awaiting frame was destroyed while fn ran";
  EXPECT_FALSE(resumed) << "the cancelled task resumed with fn's value";
}

// A real-clock loop, cancelled by a deadline while fn blocks on its token.
// Under load the pool may not have started fn when the 5 ms pass: the call
// is then withdrawn and fn never runs. Either way the deadline ends the call,
// and an fn that started was stopped, not abandoned.
TEST(to_thread, move_on_after_on_a_real_loop_stops_fn) {
  event_loop loop;
  std::atomic<bool> fn_started{false}, fn_returned{false};
  auto out = loop.run([](std::atomic<bool>& started, std::atomic<bool>& returned) -> task<bool> {
    auto r = co_await move_on_after(5ms, offload([&](std::stop_token st) {
                                      started = true;
                                      wait_for_stop(st);  // only the deadline can end this
                                      returned = true;
                                      return 1;
                                    }));
    EXPECT_EQ(returned.load(), started.load()) << "the call ended while fn still ran";
    co_return r.has_value();
  }(fn_started, fn_returned));
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out.value()) << "the deadline did not cancel the call";
  EXPECT_EQ(fn_returned.load(), fn_started.load());
}

// fn never looks at its token: cancellation still waits for it; the value it
// returns is destroyed, not delivered.
TEST(to_thread, fn_ignoring_stop_completes_and_its_value_is_discarded) {
  virtual_loop loop;
  cancel_scope scope;
  std::latch release(1);
  on_loop cancel([&] {
    scope.cancel();
    release.count_down();  // only after the cancellation reached the call
  });
  auto payload = std::make_shared<int>(9);
  std::weak_ptr<int> watch = payload;
  std::atomic<bool> fn_returned{false};
  bool stop_was_requested = false;
  bool resumed = false;

  auto body = [&]() -> task<int> {
    // `payload` is captured by reference, not by init-capture: g++ 12 destroys
    // a lambda's non-trivial init-captures twice when the lambda is a
    // temporary inside a co_await operand (a compiler defect).
    std::shared_ptr<int> got = co_await to_thread([&](std::stop_token st) {
      loop.post_threadsafe(cancel.node);
      release.wait();
      stop_was_requested = st.stop_requested();
      fn_returned = true;
      return std::move(payload);
    });
    resumed = true;
    co_return *got;
  };
  auto main = [&]() -> task<void> {
    auto r = co_await scope.run(body());
    EXPECT_FALSE(r.has_value());
    EXPECT_TRUE(fn_returned.load());
    EXPECT_TRUE(watch.expired()) << "the discarded value is still alive";
  };
  auto out = loop.run(main());
  EXPECT_TRUE(out.has_value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_TRUE(stop_was_requested);
  EXPECT_FALSE(resumed);
}

// Errors win over cancellation: fn's exception is not swallowed.
TEST(to_thread, an_exception_after_stop_propagates) {
  virtual_loop loop;
  cancel_scope scope;
  on_loop cancel([&] { scope.cancel(); });
  auto body = [&]() -> task<int> {
    co_return co_await to_thread([&](std::stop_token st) -> int {
      loop.post_threadsafe(cancel.node);
      wait_for_stop(st);
      throw my_error(11);
    });
  };
  auto main = [&]() -> task<int> {
    try {
      co_await scope.run(body());
    } catch (const my_error& e) {
      co_return e.code;
    }
    co_return 0;
  };
  auto out = loop.run(main());
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out.value(), 11);
  EXPECT_FALSE(scope.cancelled_caught());
}

// A graceful then a forced cancellation while fn runs (the call sees both):
// it still waits for fn.
TEST(to_thread, forced_cancellation_still_waits_for_fn) {
  virtual_loop loop;
  on_loop cancel([&] {
    loop.cancel_root();
    loop.force_cancel();
  });
  std::atomic<bool> fn_returned{false};
  bool frame_died_after_fn = false;
  auto main = [&]() -> task<void> {
    frame_probe probe{&fn_returned, &frame_died_after_fn};
    co_await to_thread([&](std::stop_token st) {
      loop.post_threadsafe(cancel.node);
      wait_for_stop(st);
      fn_returned = true;
    });
    ADD_FAILURE() << "resumed after a forced cancellation";
  };
  auto out = loop.run(main());
  EXPECT_TRUE(out.cancelled());
  EXPECT_TRUE(frame_died_after_fn);
}

// Cancelling a group with more calls than workers: the running ones are asked
// to stop and awaited, the queued ones are withdrawn and never run.
TEST(to_thread, cancelling_a_group_stops_running_calls_and_withdraws_queued_ones) {
  const unsigned workers = detail::thread_pool::max_threads();
  const unsigned children = workers + 5;
  virtual_loop loop;
  task_group* group = nullptr;
  std::latch cancel_finished(1);
  on_loop cancel([&] {
    group->cancel();
    cancel_finished.count_down();
  });
  std::atomic<unsigned> started{0};
  std::atomic<unsigned> returned{0};
  std::atomic<unsigned> saw_stop{0};
  unsigned resumed = 0;

  auto body = [&](task_group& g) -> task<void> {
    group = &g;
    for (unsigned i = 0; i < children; ++i)
      g.spawn([&]() -> task<void> {
        co_await to_thread([&](std::stop_token st) {
          // Every worker is busy once `workers` calls run; none returns
          // before the cancellation.
          if (started.fetch_add(1) + 1 == workers) loop.post_threadsafe(cancel.node);
          wait_for_stop(st);
          saw_stop += st.stop_requested() ? 1 : 0;
          // No worker frees up while the group cancels its children one by
          // one, so every queued call is still queued when its turn comes.
          cancel_finished.wait();
          ++returned;
        });
        ++resumed;
      });
    co_return;
  };
  auto out = loop.run(with_task_group(body));
  EXPECT_TRUE(out.has_value());
  EXPECT_EQ(started.load(), workers);
  EXPECT_EQ(returned.load(), workers);
  EXPECT_EQ(saw_stop.load(), workers);
  EXPECT_EQ(resumed, 0U);
  EXPECT_EQ(detail::thread_pool::snapshot().queued, 0U);
}

TEST(to_thread, a_cancelled_task_never_starts_fn) {
  std::atomic<bool> ran{false};
  cancel_scope scope;
  scope.cancel();
  auto out = run_virtual([](cancel_scope& s, std::atomic<bool>& r) -> task<bool> {
    auto v = co_await s.run(offload([&r] { r = true; }));
    co_return v;
  }(scope, ran));
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out.value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_FALSE(ran.load());
}

// With every worker busy, a cancelled call is withdrawn from the queue and
// its fn never runs.
TEST(to_thread, a_queued_call_is_withdrawn_when_cancelled) {
  const unsigned workers = detail::thread_pool::max_threads();
  std::latch busy(workers);
  std::latch release(1);
  std::vector<std::thread> blockers;
  for (unsigned i = 0; i < workers; ++i)
    blockers.emplace_back([&] {
      auto r = run_virtual(offload([&] {
        busy.count_down();
        release.wait();
      }));
      EXPECT_TRUE(r.has_value());
    });
  busy.wait();  // every worker the pool may have is inside a blocked fn

  virtual_loop loop;
  cancel_scope scope;
  unsigned queued_after_cancel = 99;
  std::atomic<bool> cancel_done{false};
  on_loop cancel([&] {
    scope.cancel();
    queued_after_cancel = detail::thread_pool::snapshot().queued;
    cancel_done = true;
  });
  std::atomic<bool> ran{false};
  std::thread canceller([&] {
    while (detail::thread_pool::snapshot().queued == 0) std::this_thread::yield();
    loop.post_threadsafe(cancel.node);
    // Free the workers once the cancellation was handled: if the call had not
    // been withdrawn, it now runs (and the test fails instead of hanging).
    while (!cancel_done) std::this_thread::yield();
    release.count_down();
  });
  auto out = loop.run([](cancel_scope& s, std::atomic<bool>& r) -> task<bool> {
    co_return co_await s.run(offload([&r] { r = true; }));
  }(scope, ran));
  canceller.join();
  for (auto& t : blockers) t.join();
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out.value());
  EXPECT_TRUE(scope.cancelled_caught());
  EXPECT_EQ(queued_after_cancel, 0U) << "the cancelled call is still queued";
  EXPECT_FALSE(ran.load()) << "a withdrawn call ran";
}

}  // namespace
