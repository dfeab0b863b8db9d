// gather: run all, one outcome per task, in input order (DESIGN §2).
#include <stdexcept>
#include <string>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

task<int> value_after(int seconds, int v) {
  co_await sleep(std::chrono::seconds(seconds));
  co_return v;
}

task<int> fail_after_s(int seconds, const char* what) {
  co_await sleep(std::chrono::seconds(seconds));
  throw std::runtime_error(what);
}

TEST(gather, mixed_outcomes_in_input_order_and_no_sibling_is_cancelled) {
  auto o = run_virtual([]() -> task<long long> {
    std::vector<task<int>> tasks;
    tasks.push_back(value_after(3, 30));
    tasks.push_back(fail_after_s(1, "early failure"));
    tasks.push_back(value_after(2, 20));
    tasks.push_back([]() -> task<int> {
      cancel_scope s;
      s.cancel();
      co_await s.run(value_after(1, 0));
      co_await sleep(100s);  // the scope caught it; this task goes on
      co_return 1;
    }());
    auto out = co_await gather(std::move(tasks));
    EXPECT_EQ(out.size(), 4u);
    EXPECT_EQ(out[0].value(), 30);  // not cancelled by the failure at 1 s
    EXPECT_TRUE(out[1].has_error());
    EXPECT_THROW(out[1].value(), std::runtime_error);
    EXPECT_EQ(out[2].value(), 20);
    EXPECT_EQ(out[3].value(), 1);
    co_return ms();
  }());
  EXPECT_EQ(o.value(), 100000);
}

TEST(gather, a_cancelled_child_reports_cancelled) {
  auto o = run_virtual([]() -> task<void> {
    std::vector<task<int>> tasks;
    tasks.push_back(value_after(1, 1));
    tasks.push_back([]() -> task<int> {
      // The child cancels a scope around itself from inside: its own outcome
      // is "cancelled" only if cancellation escapes it; here it is caught.
      co_return co_await fail_after(5s, value_after(1, 2));
    }());
    auto out = co_await gather(std::move(tasks));
    EXPECT_EQ(out[1].value(), 2);
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(gather, cancelling_the_gather_cancels_every_child_and_waits_for_them) {
  journal j;
  auto o = run_virtual([&]() -> task<void> {
    std::vector<task<int>> tasks;
    tasks.push_back(value_after(1, 1));  // done before the cancel
    // Coroutine lambdas get their state as parameters: a capturing closure
    // would die at the end of this statement, before the task runs.
    tasks.push_back([](journal& jj) -> task<int> {
      raii_probe p(jj, "sleeper");
      co_await sleep(100s);
      co_return 2;
    }(j));
    tasks.push_back([](journal& jj) -> task<int> {
      co_await finally([]() -> task<void> { co_await sleep(100s); }(),
                       [&jj]() -> task<void> {
                         co_await sleep(3s);
                         jj("cleanup done at " + std::to_string(ms()));
                       });
      co_return 3;
    }(j));
    auto r = co_await move_on_after(2s, gather(std::move(tasks)));
    j(r ? "gather completed" : "moved on at " + std::to_string(ms()));
  }());
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(j.lines,
            (std::vector<std::string>{"~sleeper", "cleanup done at 5000", "moved on at 5000"}));
}

TEST(gather, a_failure_during_cancellation_is_not_lost) {
  auto o = run_virtual([]() -> task<std::string> {
    cancel_scope scope;
    std::vector<task<int>> tasks;
    tasks.push_back([]() -> task<int> {
      co_await finally([]() -> task<void> { co_await sleep(100s); }(),
                       []() -> task<void> {
                         co_await sleep(1s);
                         throw std::runtime_error("cleanup failed");
                       });
      co_return 0;
    }());
    auto g = gather(std::move(tasks));
    auto body = [&]() -> task<std::vector<outcome<int>>> { co_return co_await g; };
    std::string seen;
    auto r = co_await move_on_after(2s, body());
    // The outer deadline cancelled the gather, but a child failed while
    // unwinding: the outcomes are delivered, the error inside.
    if (r && (*r)[0].has_error()) seen = "error delivered at " + std::to_string(ms());
    co_return seen;
  }());
  EXPECT_EQ(o.value(), "error delivered at 3000");
}

TEST(gather, variadic_form_gives_a_tuple) {
  auto o = run_virtual([]() -> task<void> {
    auto [a, b, c] = co_await gather(value_after(1, 10), fail_after_s(2, "x"),
                                     []() -> task<void> { co_await sleep(3s); }());
    EXPECT_EQ(a.value(), 10);
    EXPECT_TRUE(b.has_error());
    EXPECT_TRUE(c.has_value());
    EXPECT_EQ(ms(), 3000);
  }());
  EXPECT_TRUE(o.has_value());
}

TEST(gather, empty_input_returns_at_once) {
  auto o = run_virtual([]() -> task<std::size_t> {
    auto out = co_await gather(std::vector<task<int>>{});
    EXPECT_EQ(ms(), 0);
    co_return out.size();
  }());
  EXPECT_EQ(o.value(), 0u);
}

}  // namespace
}  // namespace grove::testing
