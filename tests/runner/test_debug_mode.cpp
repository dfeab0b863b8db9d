// Debug mode: the per-task event log, the slow-callback warning, and the
// Chrome trace-event file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <grove/grove.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using grove::task;

// Runs `t` on a loop with `opts`, the log captured in memory.
template <class T>
std::string logged_run(grove::event_loop& loop, grove::debug_options opts, task<T> t) {
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* f = ::open_memstream(&buf, &len);
  opts.log = true;
  opts.log_file = f;
  loop.set_debug(opts);
  auto o = loop.run(std::move(t));
  EXPECT_FALSE(o.has_error());
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

std::vector<std::string> lines_with(const std::string& text, const std::string& part) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(part) != std::string::npos) out.push_back(line.substr(line.find(part)));
  return out;
}

task<void> sleeper(grove::duration d) {
  co_await grove::sleep(d);
}

TEST(debug_mode, a_cancelled_task_logs_its_events_in_order) {
  grove::virtual_loop loop;
  std::string log = logged_run(loop, {}, []() -> task<void> {
    co_await grove::with_task_group([](grove::task_group& g) -> task<void> {
      g.spawn(grove::named("victim", [] {
        return grove::finally(sleeper(1h), grove::named("tidy", [] { return sleeper(2s); }));
      }));
      co_await grove::sleep(1s);
      g.cancel();
    });
  }());
  EXPECT_EQ(
      lines_with(log, "\"victim\": "),
      (std::vector<std::string>{"\"victim\": spawned", "\"victim\": started",
                                "\"victim\": cancel requested (noticed at its next suspension)",
                                "\"victim\": cancelled"}))
      << log;
  EXPECT_EQ(lines_with(log, "\"tidy\": "),
            (std::vector<std::string>{"\"tidy\": spawned", "\"tidy\": cleanup started",
                                      "\"tidy\": started", "\"tidy\": finished"}))
      << log;
  // Every line: "grove debug", the loop clock's time, what, number, name.
  auto line_of = [&](const std::string& part) {
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);)
      if (line.find(part) != std::string::npos) return line;
    return std::string();
  };
  std::string requested = line_of("\"victim\": cancel requested");
  EXPECT_EQ(requested.rfind("grove debug     1.000000  task #", 0), 0u) << requested;
  std::string tidied = line_of("\"tidy\": finished");
  EXPECT_EQ(tidied.rfind("grove debug     3.000000  cleanup #", 0), 0u) << tidied;
  // The victim's body was cancelled synchronously while it slept.
  EXPECT_NE(log.find(": cancel delivered (unwinding)"), std::string::npos) << log;
  // The order across tasks: the request, then the cleanup, then the end.
  EXPECT_LT(log.find("\"victim\": cancel requested"), log.find("\"tidy\": cleanup started"));
  EXPECT_LT(log.find("\"tidy\": finished"), log.find("\"victim\": cancelled"));
}

void spin(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST(debug_mode, a_callback_that_blocks_the_loop_is_named_and_a_fast_one_is_not) {
  grove::event_loop loop;  // real time: the warning is about real blocking
  grove::debug_options opts;
  opts.slow_callback = 30ms;
  std::string log = logged_run(loop, opts, []() -> task<void> {
    co_await grove::with_task_group([](grove::task_group& g) -> task<void> {
      g.spawn(grove::named("quick", []() -> task<void> {
        for (int i = 0; i < 100; ++i) co_await grove::checkpoint();
      }));
      // The hog computes, then awaits a quick child, and its parents resume
      // in the same callback: the warning still names the hog.
      g.spawn(grove::named("hog", []() -> task<void> {
        co_await grove::checkpoint();
        spin(60ms);  // computing on the loop thread
        co_await grove::named("innocent", []() -> task<void> { co_return; }());
      }));
      co_return;
    });
  }());
  auto warnings = lines_with(log, "warning: a callback blocked the loop");
  ASSERT_EQ(warnings.size(), 1u) << log;
  EXPECT_NE(warnings[0].find(" of it in task #"), std::string::npos) << log;
  EXPECT_NE(warnings[0].find(" \"hog\";"), std::string::npos) << log;
  EXPECT_NE(warnings[0].find("grove::to_thread"), std::string::npos) << log;
}

TEST(debug_mode, slow_callbacks_are_not_timed_without_the_log) {
  grove::event_loop loop;
  grove::debug_options opts;
  opts.trace_file = ::testing::TempDir() + "/grove-no-log-trace.json";
  loop.set_debug(opts);
  ::testing::internal::CaptureStderr();
  auto o = loop.run([]() -> task<void> {
    spin(40ms);
    co_return;
  }());
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(o.has_value());
  EXPECT_EQ(err, "");  // no log was asked for: no warning either
}

TEST(debug_mode, the_trace_is_valid_json_with_balanced_slices) {
  std::string path = ::testing::TempDir() + "/grove-trace-test.json";
  std::remove(path.c_str());
  {
    grove::virtual_loop loop;
    grove::debug_options opts;
    opts.trace_file = path;
    loop.set_debug(opts);
    auto o = loop.run([]() -> task<void> {
      co_await grove::with_task_group([](grove::task_group& g) -> task<void> {
        for (int i = 0; i < 3; ++i)
          g.spawn(grove::named("worker \"" + std::to_string(i) + "\"", sleeper), 1s);
        g.spawn(grove::named("victim", [] {
          return grove::finally(sleeper(1h), grove::named("tidy", [] { return sleeper(2s); }));
        }));
        co_await grove::sleep(1500ms);
        g.cancel();
      });
    }());
    EXPECT_TRUE(o.has_value() || o.cancelled());
  }  // the loop's end writes the file
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  nlohmann::json doc = nlohmann::json::parse(in);  // throws if not JSON
  ASSERT_TRUE(doc["traceEvents"].is_array());
  std::map<std::string, double> open;  // "cat/id" -> ts of its b
  std::map<std::string, int> names;    // slice names seen
  int cancels = 0;
  double last_ts = -1;
  for (const auto& ev : doc["traceEvents"]) {
    std::string ph = ev.at("ph");
    double ts = ev.at("ts");
    EXPECT_GE(ts, last_ts) << ev.dump();
    last_ts = ts;
    if (ph == "i") {
      if (ev.at("cat") == "cancel") ++cancels;
      continue;
    }
    std::string key =
        ev.at("cat").get<std::string>() + "/" + std::to_string(ev.at("id").get<long>());
    if (ph == "b") {
      EXPECT_EQ(open.count(key), 0u) << "a slice begun twice: " << ev.dump();
      open[key] = ts;
      ++names[ev.at("name")];
    } else {
      ASSERT_EQ(ph, "e") << ev.dump();
      ASSERT_EQ(open.count(key), 1u) << "an end without a begin: " << ev.dump();
      EXPECT_GE(ts, open[key]);
      open.erase(key);
    }
  }
  EXPECT_TRUE(open.empty()) << open.size() << " slices never ended";
  for (const char* n : {"worker \"0\"", "worker \"2\"", "victim", "cleanup tidy"})
    EXPECT_EQ(names[n], 1) << "no slice named " << n;
  EXPECT_GE(cancels, 2);  // the victim's request and its body's delivery
  std::remove(path.c_str());
}

TEST(debug_mode, the_environment_turns_it_on) {
  ::setenv("GROVE_DEBUG", "1", 1);
  ::setenv("GROVE_TRACE", "/tmp/x.json", 1);
  auto o = grove::debug_options::from_environment();
  EXPECT_TRUE(o.log);
  EXPECT_EQ(o.trace_file, "/tmp/x.json");
  ::setenv("GROVE_DEBUG", "0", 1);
  ::unsetenv("GROVE_TRACE");
  o = grove::debug_options::from_environment();
  EXPECT_FALSE(o.log);
  EXPECT_FALSE(o.active());
  ::unsetenv("GROVE_DEBUG");
}

}  // namespace
