// Micro-benchmarks of grove's hot paths (Google Benchmark), so that
// regressions are visible: resume, checkpoint, timers, cancellation,
// semaphore with and without contention.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <grove/grove.hpp>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Runs the benchmark loop inside a task on a real event loop.
template <class F>
void in_loop(benchmark::State& state, F body) {
  grove::event_loop loop;
  loop.run(body(state)).value();
}

grove::task<int> trivial(int v) {
  co_return v;
}

void BM_task_create_and_await(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    int sum = 0;
    for (auto _ : s) sum += co_await trivial(1);
    benchmark::DoNotOptimize(sum);
  });
}
BENCHMARK(BM_task_create_and_await);

void BM_checkpoint(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    for (auto _ : s) co_await grove::checkpoint();
  });
}
BENCHMARK(BM_checkpoint);

// Insert and remove one timer with `range(0)` others pending.
void BM_timer_insert_remove(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    grove::event_loop& loop = *grove::event_loop::current();
    std::vector<grove::detail::timer_node> background(static_cast<std::size_t>(s.range(0)));
    auto t = loop.now() + 1h;
    for (auto& b : background) loop.add_timer(b, t += 1ms);
    grove::detail::timer_node node;
    auto deadline = loop.now() + 30min;
    for (auto _ : s) {
      loop.add_timer(node, deadline);
      loop.remove_timer(node);
    }
    co_return;
  });
}
BENCHMARK(BM_timer_insert_remove)->Arg(0)->Arg(10000)->Arg(1000000);

grove::task<void> sleeper() {
  co_await grove::sleep(1h);
}

// A task suspended in sleep, cancelled by its scope: frame creation, timer
// insert, synchronous cancel, frame destruction, resumption of the scope's owner.
void BM_cancel_suspended_task(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    for (auto _ : s) {
      grove::cancel_scope scope;
      co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
        g.spawn([&]() -> grove::task<void> { co_await scope.run(sleeper()); });
        co_await grove::checkpoint();  // the child is now asleep
        scope.cancel();
      });
    }
  });
}
BENCHMARK(BM_cancel_suspended_task);

// acquire + release with a free permit: no suspension.
void BM_semaphore_uncontended(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    grove::semaphore sem(1);
    for (auto _ : s) {
      co_await sem.acquire();
      sem.release();
    }
  });
}
BENCHMARK(BM_semaphore_uncontended);

// Two tasks, one permit, each holding it across a checkpoint: every
// acquire waits and every release hands the permit to the other task.
void BM_semaphore_contended_handoff(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    grove::semaphore sem(1);
    bool done = false;
    co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
      g.spawn([&]() -> grove::task<void> {
        while (!done) {
          auto guard = co_await sem.lock();
          co_await grove::checkpoint();
        }
      });
      for (auto _ : s) {
        auto guard = co_await sem.lock();
        co_await grove::checkpoint();
      }
      done = true;
    });
  });
}
BENCHMARK(BM_semaphore_contended_handoff);

// Spawn and join one child (the per-task cost inside a group).
void BM_spawn_join_1000(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    for (auto _ : s) {
      co_await grove::with_task_group([](grove::task_group& g) -> grove::task<void> {
        for (int i = 0; i < 1000; ++i) g.spawn([]() -> grove::task<void> { co_return; });
        co_return;
      });
    }
    s.SetItemsProcessed(s.iterations() * 1000);
  });
}
BENCHMARK(BM_spawn_join_1000);

// A read on a descriptor that has data: grove's read_some (a task frame and
// one read(2), no wait) beside the bare read(2), in the same run.
constexpr std::size_t pipe_fill = 1 << 16;

void refill(int fd) {
  static const std::vector<char> data(pipe_fill, 'd');
  while (::write(fd, data.data(), data.size()) > 0) {
  }
}

void BM_read_some_ready(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    auto [r, w] = grove::make_pipe();
    std::byte b[1];
    std::size_t left = 0;
    for (auto _ : s) {
      if (left == 0) {
        s.PauseTiming();
        refill(w.fd());
        left = pipe_fill;
        s.ResumeTiming();
      }
      left -= co_await r.read_some(b);
    }
  });
}
BENCHMARK(BM_read_some_ready);

void BM_raw_read_ready(benchmark::State& state) {
  auto [r, w] = grove::make_pipe();
  char b[1];
  std::size_t left = 0;
  for (auto _ : state) {
    if (left == 0) {
      state.PauseTiming();
      refill(w.fd());
      left = pipe_fill;
      state.ResumeTiming();
    }
    left -= static_cast<std::size_t>(::read(r.fd(), b, 1));
  }
}
BENCHMARK(BM_raw_read_ready);

// One byte there and back through two pipes between two tasks (each side
// waits for the other: a wake-up through epoll per hop).
void BM_pipe_round_trip(benchmark::State& state) {
  in_loop(state, [](benchmark::State& s) -> grove::task<void> {
    auto [ping_r, ping_w] = grove::make_pipe();
    auto [pong_r, pong_w] = grove::make_pipe();
    bool done = false;
    co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
      g.spawn([&]() -> grove::task<void> {
        std::byte b[1];
        while (co_await ping_r.read_some(b) == 1 && !done) co_await pong_w.write_all(b);
      });
      std::byte b[1] = {std::byte{1}};
      for (auto _ : s) {
        co_await ping_w.write_all(b);
        co_await pong_r.read_exact(b);
      }
      done = true;
      ping_w.close();
    });
  });
}
BENCHMARK(BM_pipe_round_trip);

}  // namespace

BENCHMARK_MAIN();
