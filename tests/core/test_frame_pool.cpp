// The frame pool's thread contract: a frame is freed on the thread that
// allocated it, and debug builds catch a frame freed elsewhere.
#include <thread>

#include "virtual_time.hpp"

namespace grove::testing {
namespace {

task<int> answer() {
  co_return 42;
}

TEST(frame_pool, frames_are_reused_on_their_own_thread) {
  auto o = run_virtual([]() -> task<int> {
    int sum = 0;
    for (int i = 0; i < 10000; ++i) sum += co_await answer();
    co_return sum;
  }());
  EXPECT_EQ(o.value(), 420000);
}

TEST(frame_pool, a_frame_freed_on_another_thread_is_caught_in_debug_builds) {
#if !GROVE_FRAME_POOL || defined(NDEBUG)
  GTEST_SKIP() << "the check lives in the pooled allocator of debug builds";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        task<int> t = answer();  // allocated here
        std::thread([t = std::move(t)]() mutable { t = task<int>(); }).join();
      },
      "a coroutine frame was freed on a thread other than");
#endif
}

}  // namespace
}  // namespace grove::testing
