// Micro-benchmarks of grove's hot paths (Google Benchmark), so that
// regressions are visible: resume, checkpoint, timers, cancellation,
// semaphore with and without contention.
#include <benchmark/benchmark.h>

#include <grove/grove.hpp>

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

}  // namespace

BENCHMARK_MAIN();
