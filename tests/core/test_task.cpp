// task<T>: values, void, nesting, exceptions, laziness, move-only ownership.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

struct custom_error : std::runtime_error {
  custom_error(const std::string& what, int c) : std::runtime_error(what), code(c) {}
  int code;
};

task<int> forty_two() {
  co_return 42;
}

task<int> add_after(int a, int b, duration d) {
  co_await sleep(d);
  co_return a + b;
}

task<int> sum_of_children() {
  int x = co_await add_after(1, 2, 1s);   // ends at 1000
  int y = co_await add_after(x, 10, 2s);  // ends at 3000
  co_return x + y;
}

task<int> three_levels(std::vector<long long>& times) {
  auto inner = []() -> task<int> { co_return co_await sum_of_children(); };
  int v = co_await inner();
  times.push_back(ms());
  co_return v * 2;
}

TEST(task, returns_its_value) {
  auto o = run_virtual(forty_two());
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(o.has_error());
  EXPECT_FALSE(o.cancelled());
  EXPECT_EQ(o.value(), 42);
}

TEST(task, void_task_completes) {
  journal j;
  auto body = [&]() -> task<void> {
    j("start");
    co_await sleep(5ms);
    j("end at " + std::to_string(ms()));
  };
  auto o = run_virtual(body());
  EXPECT_TRUE(o.has_value());
  EXPECT_NO_THROW(o.value());
  EXPECT_EQ(j.lines, (std::vector<std::string>{"start", "end at 5"}));
}

TEST(task, nested_tasks_compose_values_and_time) {
  std::vector<long long> times;
  auto o = run_virtual(three_levels(times));
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o.value(), 2 * (3 + 13));
  EXPECT_EQ(times, (std::vector<long long>{3000}));
}

TEST(task, returns_move_only_value) {
  auto make = []() -> task<std::unique_ptr<int>> {
    co_await sleep(1ms);
    co_return std::make_unique<int>(7);
  };
  auto outer = [&]() -> task<int> {
    std::unique_ptr<int> p = co_await make();
    co_return *p;
  };
  EXPECT_EQ(run_virtual(outer()).value(), 7);
}

task<int> throws_custom(bool after_suspension) {
  if (after_suspension) co_await sleep(10ms);
  throw custom_error("boom from child", 17);
  co_return 0;  // unreachable; makes this a coroutine on every path
}

TEST(task, exception_reaches_awaiter_unchanged) {
  for (bool after_suspension : {false, true}) {
    SCOPED_TRACE(after_suspension ? "after a suspension" : "before any suspension");
    journal j;
    auto parent = [&]() -> task<void> {
      try {
        co_await throws_custom(after_suspension);
        j("no exception");
      } catch (const custom_error& e) {
        j(std::string(typeid(e).name() == typeid(custom_error).name() ? "custom_error" : "sliced") +
          ": " + e.what() + " code=" + std::to_string(e.code) + " at " + std::to_string(ms()));
      } catch (...) {
        j("some other exception");
      }
    };
    ASSERT_TRUE(run_virtual(parent()).has_value());
    std::string at = after_suspension ? "10" : "0";
    EXPECT_EQ(j.lines,
              (std::vector<std::string>{"custom_error: boom from child code=17 at " + at}));
  }
}

TEST(task, exception_crosses_several_frames_to_the_outcome) {
  auto middle = []() -> task<int> { co_return co_await throws_custom(true) + 1; };
  auto top = [&]() -> task<int> { co_return co_await middle() + 1; };
  auto o = run_virtual(top());
  ASSERT_TRUE(o.has_error());
  EXPECT_FALSE(o.has_value());
  EXPECT_FALSE(o.cancelled());
  try {
    std::rethrow_exception(o.error());
  } catch (const custom_error& e) {
    EXPECT_STREQ(e.what(), "boom from child");
    EXPECT_EQ(e.code, 17);
  } catch (...) {
    ADD_FAILURE() << "wrong exception type";
  }
  EXPECT_THROW(o.value(), custom_error);
}

TEST(task, exception_that_is_not_a_std_exception) {
  auto child = []() -> task<void> {
    co_await sleep(1ms);
    throw 42;
  };
  auto parent = [&]() -> task<int> {
    try {
      co_await child();
    } catch (int v) {
      co_return v;
    }
    co_return -1;
  };
  EXPECT_EQ(run_virtual(parent()).value(), 42);
}

TEST(task, is_move_only) {
  static_assert(!std::is_copy_constructible_v<task<int>>);
  static_assert(!std::is_copy_assignable_v<task<int>>);
  static_assert(std::is_nothrow_move_constructible_v<task<int>>);
  static_assert(std::is_move_assignable_v<task<int>>);
  static_assert(!std::is_copy_constructible_v<task<void>>);

  journal j;
  auto make = [&](int v) -> task<int> {
    j("ran " + std::to_string(v));
    co_return v;
  };
  task<int> a = make(1);
  EXPECT_TRUE(a);
  task<int> b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(b);
  task<int> c;
  EXPECT_FALSE(c);
  c = std::move(b);
  EXPECT_FALSE(b);  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(j.lines.empty());
  EXPECT_EQ(run_virtual(std::move(c)).value(), 1);
  EXPECT_EQ(j.lines, (std::vector<std::string>{"ran 1"}));
}

TEST(task, is_lazy_and_starts_when_awaited) {
  journal j;
  auto child = [&](std::string name) -> task<void> {
    j("start " + name);
    co_await sleep(1ms);
    j("end " + name);
  };
  auto parent = [&]() -> task<void> {
    task<void> first = child("first");
    task<void> second = child("second");
    j("created");
    co_await sleep(10ms);
    j("awaiting second");
    co_await std::move(second);
    j("awaiting first");
    co_await std::move(first);
  };
  ASSERT_TRUE(run_virtual(parent()).has_value());
  EXPECT_EQ(j.lines,
            (std::vector<std::string>{"created", "awaiting second", "start second", "end second",
                                      "awaiting first", "start first", "end first"}));
}

TEST(task, destroyed_unstarted_runs_no_body_but_destroys_its_arguments) {
  journal j;
  auto child = [&](std::unique_ptr<raii_probe> p) -> task<void> {
    j("body ran");
    co_await sleep(1ms);
    (void)p;
  };
  {
    task<void> t = child(std::make_unique<raii_probe>(j, "argument"));
    EXPECT_TRUE(t);
  }
  EXPECT_EQ(j.lines, (std::vector<std::string>{"~argument"}));

  // Also inside a running loop: a task created and dropped by a coroutine.
  journal k;
  auto parent = [&]() -> task<void> {
    {
      task<void> unused = child(std::make_unique<raii_probe>(k, "argument"));
      co_await sleep(1ms);
    }
    k("after");
  };
  ASSERT_TRUE(run_virtual(parent()).has_value());
  EXPECT_EQ(k.lines, (std::vector<std::string>{"~argument", "after"}));
}

TEST(task, locals_die_in_reverse_order_when_the_task_completes) {
  journal j;
  auto child = [&]() -> task<int> {
    raii_probe a(j, "child a");
    co_await sleep(1ms);
    raii_probe b(j, "child b");
    co_return 5;
  };
  auto parent = [&]() -> task<int> {
    raii_probe p(j, "parent");
    int v = co_await child();
    j("got " + std::to_string(v));
    co_return v;
  };
  EXPECT_EQ(run_virtual(parent()).value(), 5);
  EXPECT_EQ(j.lines, (std::vector<std::string>{"~child b", "~child a", "got 5", "~parent"}));
}

// Awaiting a child that completes without suspending must not grow the
// stack: a loop of a million such awaits is ordinary code (a parser pulling
// tokens from a buffered reader). Runs in a child process so that a stack
// overflow fails this test instead of killing the whole binary.
task<long> await_many_synchronous_children(long n) {
  auto one = []() -> task<int> { co_return 1; };
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await one();
  co_return sum;
}

TEST(task_stack, awaiting_many_synchronous_children_does_not_grow_the_stack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        constexpr long n = 1'000'000;
        auto o = run_virtual(await_many_synchronous_children(n));
        std::exit(o.has_value() && o.value() == n ? 0 : 3);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace grove::testing
