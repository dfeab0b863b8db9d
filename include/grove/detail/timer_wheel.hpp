// The loop's pending deadlines: O(1) insert and remove, exact expiry order.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <grove/detail/intrusive.hpp>
#include <limits>
#include <vector>

namespace grove {

// The loop's clock: steady, nanoseconds. On a virtual loop it is virtual.
using clock = std::chrono::steady_clock;
using duration = std::chrono::nanoseconds;
using time_point = std::chrono::time_point<clock, duration>;

namespace detail {

// Something the loop resumes: a frame, or a proxy standing for a callback.
struct ready_node : list_hook {
  std::coroutine_handle<> target;
};

// A deadline in the running loop's timer wheel. Removes itself when
// destroyed (the loop disarms every timer when it stops, so a timer is armed
// only while its loop runs on this thread). 40 bytes: one exists per
// sleeping task. The ready node is posted when the deadline passes; while
// the timer is armed its hook links the timer into a wheel slot instead.
struct timer_node : private ready_node {
  time_point deadline{};
  std::uint32_t place = npos;  // npos, a wheel slot (see in_wheel), or an index in the near heap
  std::uint32_t seq = 0;       // equal deadlines fire in the order they were set

  static constexpr std::uint32_t npos = std::numeric_limits<std::uint32_t>::max();
  // Wheel slots count down from first_slot: level * 64 + slot below it.
  static constexpr std::uint32_t first_slot = npos - 1;
  static constexpr std::uint32_t wheel_places = 8 * 64;
  bool armed() const noexcept { return place != npos; }
  bool in_wheel() const noexcept { return armed() && place > first_slot - wheel_places; }
  // What the loop posts when the deadline passes (set its target first).
  ready_node& fire() noexcept { return *this; }
  timer_node() noexcept = default;
  timer_node(const timer_node&) = delete;
  timer_node& operator=(const timer_node&) = delete;
  ~timer_node();

 private:
  friend class timer_wheel;
};

// A hierarchical timing wheel over ticks of 2^20 ns (about 1 ms): 8 levels
// of 64 slots cover every tick a time_point can name. A timer sits at the
// level of the highest base-64 digit in which its tick differs from the
// wheel's current tick (`elapsed_`), so inserting and removing it is a list
// link and a bit in an occupancy mask. Timers whose tick has come, or is
// the current one, sit in a small binary heap ordered by (deadline, seq):
// expiry stays exact to the nanosecond, which the virtual clock needs.
//
// Invariants: every heap timer's tick is <= elapsed_; every wheel timer's
// tick is > elapsed_ and it sits at the level its tick's digits give against
// elapsed_ (so remove() finds its slot). Hence the heap's top, when there is
// one, is the earliest timer of all.
class timer_wheel {
 public:
  timer_wheel() noexcept = default;
  ~timer_wheel() { clear(); }
  timer_wheel(const timer_wheel&) = delete;
  timer_wheel& operator=(const timer_wheel&) = delete;

  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }

  // Arms `t` (re-arms it if armed). Throws std::bad_alloc, leaving `t` as it
  // was: the heap's capacity always covers every pending timer, so a timer
  // moving from the wheel to the heap later never allocates.
  void insert(timer_node& t, time_point deadline);
  void remove(timer_node& t) noexcept;

  // The earliest deadline, or time_point::max() when nothing is pending.
  // May move the earliest slot's timers into the heap (hence not const).
  time_point next_deadline() noexcept;
  // Disarms and returns the earliest timer whose deadline is <= now, or
  // nullptr. Equal deadlines come out in the order they were set.
  timer_node* pop_expired(time_point now) noexcept;
  // Disarms every timer.
  void clear() noexcept;

 private:
  static constexpr int tick_bits = 20;
  static constexpr int digit_bits = 6;
  static constexpr int slots = 1 << digit_bits;
  static constexpr int levels = 8;  // 8 * 6 >= 63 - 20 bits of tick
  using slot_list = intrusive_list<ready_node>;
  static_assert(levels * slots == timer_node::wheel_places);

  static std::uint64_t tick_of(time_point t) noexcept {
    auto ns = t.time_since_epoch().count();
    return ns <= 0 ? 0 : static_cast<std::uint64_t>(ns) >> tick_bits;
  }
  int level_of(std::uint64_t tick) const noexcept;
  slot_list& slot_of(std::uint64_t tick, int level) noexcept;
  void place(timer_node& t) noexcept;  // in the heap or the wheel, by tick
  bool next_slot(int& level, std::uint64_t& start) const noexcept;
  void advance_to(int level, std::uint64_t start) noexcept;

  void heap_push(timer_node& t) noexcept;
  void heap_erase(std::uint32_t i) noexcept;
  void heap_up(std::uint32_t i) noexcept;
  void heap_down(std::uint32_t i) noexcept;
  void heap_set(std::uint32_t i, timer_node* t) noexcept;

  std::uint64_t elapsed_ = 0;
  std::size_t count_ = 0;
  std::uint32_t seq_ = 0;
  std::uint64_t occupied_[levels] = {};
  slot_list wheel_[levels][slots];
  std::vector<timer_node*> heap_;
};

}  // namespace detail
}  // namespace grove
