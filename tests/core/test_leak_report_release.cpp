// The leak report of a release build (NDEBUG): a semaphore or event destroyed
// while tasks wait on it is reported, and its waiters are orphaned: they
// stay suspended, a cancellation still unwinds them, and nothing touches the
// freed primitive (ASan would see it). Debug builds abort instead
// (test_task_tree.cpp).
#ifndef NDEBUG
#define NDEBUG  // this test binary is built as a release user's code would be
#endif
#include <gtest/gtest.h>

#include <grove/debug.hpp>
#include <string>

#include "core/leak_scenarios.hpp"
#include "virtual_time.hpp"

namespace grove::testing {
namespace {

TEST(leak_report_release, an_orphaned_semaphore_waiter_is_reported_and_can_still_be_cancelled) {
  std::string dump_after;
  ::testing::internal::CaptureStderr();
  auto o = run_virtual(semaphore_deleted_under_a_waiter(&dump_after));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(o.has_value() || o.cancelled());
  EXPECT_NE(err.find("grove: leak: a grove::semaphore was destroyed while 1 task waits on it"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("child \"stuck waiter\": suspended"), std::string::npos) << err;
  EXPECT_NE(dump_after.find("semaphore acquire (orphaned: the semaphore was destroyed)"),
            std::string::npos)
      << dump_after;
}

TEST(leak_report_release, orphaned_event_waiters_are_reported_and_can_still_be_cancelled) {
  ::testing::internal::CaptureStderr();
  auto o = run_virtual(event_deleted_under_two_waiters());
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(o.has_value() || o.cancelled());
  EXPECT_NE(err.find("grove::event was destroyed while 2 tasks wait on it"), std::string::npos)
      << err;
}

}  // namespace
}  // namespace grove::testing
