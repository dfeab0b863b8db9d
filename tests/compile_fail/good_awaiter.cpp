// expect: compiles
// The control: an awaiter with every hook right compiles (so the failures
// above fail for the reason their messages say, not for a broken include).
#include <coroutine>
#include <grove/task.hpp>
#include <string>

struct good_awaiter {
  bool await_ready() const noexcept { return true; }
  void await_suspend(std::coroutine_handle<>) noexcept {}
  void await_resume() noexcept {}
  bool await_early_cancel() noexcept { return true; }
  bool await_cancel(std::coroutine_handle<>) noexcept { return true; }
  bool await_must_resume() const noexcept { return true; }
  void await_set_parent(grove::detail::promise_base&) noexcept {}
  void await_describe(std::string& out, int) const { out += "good\n"; }
};

static_assert(grove::awaitable<good_awaiter>);
static_assert(grove::cancellable_awaiter<good_awaiter>);

grove::task<void> user() {
  co_await good_awaiter{};
}
