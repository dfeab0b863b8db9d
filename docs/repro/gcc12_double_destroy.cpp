// g++-12.2 (Debian 12.2.0-14): a temporary with aggregate-style member
// initialisation (a braced aggregate, or a lambda's captures) that appears in
// a co_await operand and is passed by reference to a function is destroyed
// twice. clang is correct. Expected output: "member 1 destroyed" once.
#include <coroutine>
#include <cstdio>
#include <utility>

struct member {
  int id;
  explicit member(int i) : id(i) {}
  member(member&& o) noexcept : id(o.id) { o.id = 0; }
  ~member() { std::printf("  member %d destroyed\n", id); }
};

template <class F>
struct awaiter {
  F f;
  explicit awaiter(F&& g) : f(std::move(g)) {}
  bool await_ready() noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) noexcept {}
  void await_resume() noexcept {}
};
template <class F>
awaiter<F> make(F&& f) {
  return awaiter<F>(std::move(f));
}

struct co {
  struct promise_type {
    co get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() {}
  };
};

struct agg {
  member m;
};

co lambda_capture() {
  co_await make([m = member(1)] {});
}
co braced_aggregate() {
  co_await make(agg{member(1)});
}
co named_lambda() {
  auto l = [m = member(1)] {};
  co_await make(std::move(l));
}

int main() {
  std::puts("lambda with an init-capture:");
  lambda_capture();
  std::puts("braced aggregate:");
  braced_aggregate();
  std::puts("named lambda (workaround):");
  named_lambda();
}
