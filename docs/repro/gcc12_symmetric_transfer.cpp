// g++-12 -O0: symmetric transfer (await_suspend returning a coroutine_handle)
// is not compiled as a tail call, so a loop that awaits children which finish
// without suspending grows the stack by a few frames per iteration.
#include <coroutine>
#include <cstdio>
#include <utility>

struct task {
  struct promise_type {
    std::coroutine_handle<> continuation;
    int value = 0;
    task get_return_object() {
      return task{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;  // symmetric transfer back to the awaiter
      }
      void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_value(int v) { value = v; }
    void unhandled_exception() {}
  };
  std::coroutine_handle<promise_type> h;
  explicit task(std::coroutine_handle<promise_type> hh) : h(hh) {}
  task(task&& o) noexcept : h(std::exchange(o.h, {})) {}
  ~task() {
    if (h) h.destroy();
  }
  bool await_ready() noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) noexcept {
    h.promise().continuation = c;
    return h;  // symmetric transfer into the child
  }
  int await_resume() { return h.promise().value; }
};

task one() {
  co_return 1;
}
task many(long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await one();
  co_return static_cast<int>(sum);
}
struct root {
  struct promise_type {
    root get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() {}
  };
};
root run(long n) {
  int v = co_await many(n);
  std::printf("sum = %d\n", v);
}
int main() {
  run(10'000'000);
}
