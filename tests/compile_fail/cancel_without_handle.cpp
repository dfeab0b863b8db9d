// expect: await_cancel must be declared
// A grove::task awaits an awaiter whose hook is wrong: the build must fail
// with a message that names the hook.
#include <coroutine>
#include <grove/task.hpp>
#include <string>

struct bad_awaiter {
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) noexcept {}
  void await_resume() noexcept {}
  bool await_cancel() noexcept { return true; }
};

grove::task<void> user() {
  co_await bad_awaiter{};
}
