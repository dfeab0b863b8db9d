// The timer wheel under the loop's timers: exact expiry order at every time
// scale, O(1) insert and remove, nothing lost across the wheel's levels.
#include <gtest/gtest.h>

#include <cstdint>
#include <grove/detail/timer_wheel.hpp>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace grove::detail {
namespace {

using namespace std::chrono_literals;

time_point at(duration d) {
  return time_point(d);
}

// Pops everything due at `now`, as the loop does, and returns the indices.
std::vector<int> pop_all(timer_wheel& w, time_point now, const std::vector<timer_node>& nodes) {
  std::vector<int> out;
  while (timer_node* t = w.pop_expired(now)) out.push_back(static_cast<int>(t - nodes.data()));
  return out;
}

TEST(timer_wheel, pops_in_deadline_order_across_every_level) {
  // From nanoseconds to years: each lands on a different level of the wheel.
  std::vector<duration> ds = {
      std::chrono::hours(24 * 365 * 30), 1ns, 3h, 2ms, 1500us, 70s, 5s, 999us};
  std::vector<timer_node> nodes(ds.size());
  timer_wheel w;
  for (std::size_t i = 0; i < ds.size(); ++i) w.insert(nodes[i], at(ds[i]));
  EXPECT_EQ(w.size(), ds.size());
  std::vector<int> order;
  while (!w.empty()) {
    time_point next = w.next_deadline();
    std::vector<int> due = pop_all(w, next, nodes);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(nodes[due[0]].deadline, next);  // exact: no rounding to a tick
    EXPECT_FALSE(nodes[due[0]].armed());
    order.push_back(due[0]);
  }
  EXPECT_EQ(order, (std::vector<int>{1, 7, 4, 3, 6, 5, 2, 0}));
}

TEST(timer_wheel, equal_deadlines_fire_in_arming_order_even_after_cascading) {
  std::vector<timer_node> nodes(100);
  timer_wheel w;  // after the nodes: destroyed first, it disarms them
  for (auto& n : nodes) w.insert(n, at(1h + 7ns));  // a high level: cascades down
  std::vector<int> due = pop_all(w, at(1h + 7ns), nodes);
  ASSERT_EQ(due.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(due[i], i);
}

TEST(timer_wheel, nothing_fires_a_nanosecond_early) {
  std::vector<timer_node> nodes(2);
  timer_wheel w;  // after the nodes: destroyed first, it disarms them
  w.insert(nodes[0], at(10s));
  w.insert(nodes[1], at(10s + 1ns));
  EXPECT_TRUE(pop_all(w, at(10s - 1ns), nodes).empty());
  EXPECT_EQ(pop_all(w, at(10s), nodes), std::vector<int>{0});
  EXPECT_EQ(w.next_deadline(), at(10s + 1ns));
  EXPECT_EQ(pop_all(w, at(10s + 1ns), nodes), std::vector<int>{1});
  EXPECT_EQ(w.next_deadline(), time_point::max());
}

TEST(timer_wheel, remove_from_the_wheel_and_from_the_near_heap) {
  std::vector<timer_node> nodes(4);
  timer_wheel w;                // after the nodes: destroyed first, it disarms them
  w.insert(nodes[0], at(1h));   // wheel
  w.insert(nodes[1], at(1ns));  // near heap: the current tick
  w.insert(nodes[2], at(2h));
  w.insert(nodes[3], at(2ns));
  w.remove(nodes[0]);
  w.remove(nodes[1]);
  EXPECT_FALSE(nodes[0].armed());
  EXPECT_FALSE(nodes[1].armed());
  EXPECT_EQ(w.size(), 2u);
  w.remove(nodes[0]);  // not armed: nothing happens
  EXPECT_EQ(pop_all(w, at(3h), nodes), (std::vector<int>{3, 2}));
  EXPECT_TRUE(w.empty());
}

TEST(timer_wheel, a_removed_timer_empties_its_slot_so_the_next_deadline_skips_it) {
  std::vector<timer_node> nodes(2);
  timer_wheel w;  // after the nodes: destroyed first, it disarms them
  w.insert(nodes[0], at(5s));
  w.insert(nodes[1], at(9s));
  w.remove(nodes[0]);
  EXPECT_EQ(w.next_deadline(), at(9s));
}

TEST(timer_wheel, rearming_moves_the_timer) {
  std::vector<timer_node> nodes(2);
  timer_wheel w;  // after the nodes: destroyed first, it disarms them
  w.insert(nodes[0], at(1h));
  w.insert(nodes[1], at(2s));
  w.insert(nodes[0], at(1s));  // earlier, and now armed later than nodes[1]
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(pop_all(w, at(1h), nodes), (std::vector<int>{0, 1}));
}

TEST(timer_wheel, past_and_extreme_deadlines) {
  std::vector<timer_node> nodes(4);
  timer_wheel w;  // after the nodes: destroyed first, it disarms them
  EXPECT_TRUE(pop_all(w, at(50s), nodes).empty());  // the wheel's clock moves to 50 s
  w.insert(nodes[0], time_point::max());
  w.insert(nodes[1], time_point::min());
  w.insert(nodes[2], at(10s));  // already past
  w.insert(nodes[3], at(50s + 1ms));
  EXPECT_EQ(pop_all(w, at(50s), nodes), (std::vector<int>{1, 2}));
  EXPECT_EQ(w.next_deadline(), at(50s + 1ms));
  EXPECT_EQ(pop_all(w, at(100s), nodes), std::vector<int>{3});
  EXPECT_EQ(w.next_deadline(), time_point::max());
  EXPECT_EQ(pop_all(w, time_point::max(), nodes), std::vector<int>{0});
}

TEST(timer_wheel, clear_disarms_everything) {
  std::vector<timer_node> nodes(3);
  timer_wheel w;  // after the nodes: destroyed first, it disarms them
  w.insert(nodes[0], at(1ns));
  w.insert(nodes[1], at(1h));
  w.insert(nodes[2], at(1s));
  w.clear();
  EXPECT_TRUE(w.empty());
  for (auto& n : nodes) EXPECT_FALSE(n.armed());
  EXPECT_EQ(w.next_deadline(), time_point::max());
  w.insert(nodes[1], at(2s));  // usable again
  EXPECT_EQ(w.next_deadline(), at(2s));
  w.clear();
}

// Random operations against a model (an ordered set of (deadline, seq)):
// the wheel must pop exactly what the model pops, in the same order.
TEST(timer_wheel, agrees_with_an_ordered_set_under_random_operations) {
  for (std::uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    constexpr int n = 400;
    std::vector<timer_node> nodes(n);
    timer_wheel w;
    std::vector<std::uint64_t> seq_of(n);
    std::set<std::pair<time_point, std::uint64_t>> model;  // (deadline, arming order)
    std::vector<int> by_seq;
    std::uint64_t seq = 0;
    time_point now = at(std::chrono::nanoseconds(rng() % 1'000'000'000'000));
    auto random_delay = [&] {
      // Mostly near (same tick, next ticks), sometimes far: every level.
      static constexpr std::int64_t scales[] = {
          1000, 1'000'000, 50'000'000, 10'000'000'000, 5'000'000'000'000, 1'000'000'000'000'000};
      std::int64_t scale = scales[rng() % 6];
      return std::chrono::nanoseconds(static_cast<std::int64_t>(rng() % scale) - scale / 20);
    };
    for (int step = 0; step < 5000; ++step) {
      int i = static_cast<int>(rng() % n);
      switch (rng() % 4) {
        case 0:
        case 1: {  // arm or re-arm
          if (nodes[i].armed()) model.erase({nodes[i].deadline, seq_of[i]});
          time_point d = now + random_delay();
          w.insert(nodes[i], d);
          seq_of[i] = seq++;
          if (by_seq.size() <= seq_of[i]) by_seq.resize(seq_of[i] + 1);
          by_seq[seq_of[i]] = i;
          model.insert({d, seq_of[i]});
          break;
        }
        case 2:  // disarm
          if (nodes[i].armed()) model.erase({nodes[i].deadline, seq_of[i]});
          w.remove(nodes[i]);
          break;
        case 3: {  // time passes: sometimes to the next deadline, sometimes by a random step
          time_point next = w.next_deadline();
          ASSERT_EQ(next, model.empty() ? time_point::max() : model.begin()->first);
          if (rng() % 2 == 0 && next != time_point::max()) {
            now = std::max(now, next);
          } else {
            now += std::chrono::nanoseconds(rng() % 3'000'000'000);
          }
          while (timer_node* t = w.pop_expired(now)) {
            ASSERT_FALSE(model.empty());
            auto first = *model.begin();
            ASSERT_LE(first.first, now);
            EXPECT_EQ(t, &nodes[by_seq[first.second]]);
            model.erase(model.begin());
          }
          ASSERT_TRUE(model.empty() || model.begin()->first > now);
          break;
        }
      }
      ASSERT_EQ(w.size(), model.size());
    }
  }
}

}  // namespace
}  // namespace grove::detail
