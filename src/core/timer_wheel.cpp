#include <algorithm>
#include <bit>
#include <cassert>
#include <grove/detail/timer_wheel.hpp>

namespace grove::detail {
namespace {

// Sequence numbers wrap; their difference orders them while fewer than 2^31
// timers set in between are still pending.
bool earlier(const timer_node* a, const timer_node* b) noexcept {
  if (a->deadline != b->deadline) return a->deadline < b->deadline;
  return static_cast<std::int32_t>(a->seq - b->seq) < 0;
}

}  // namespace

// Precondition: tick > elapsed_.
int timer_wheel::level_of(std::uint64_t tick) const noexcept {
  return (63 - std::countl_zero(tick ^ elapsed_)) / digit_bits;
}

timer_wheel::slot_list& timer_wheel::slot_of(std::uint64_t tick, int level) noexcept {
  return wheel_[level][(tick >> (level * digit_bits)) & (slots - 1)];
}

void timer_wheel::insert(timer_node& t, time_point deadline) {
  std::size_t pending = count_ + (t.armed() ? 0 : 1);
  if (heap_.capacity() < pending) heap_.reserve(std::max<std::size_t>(64, 2 * pending));
  remove(t);
  ++count_;
  t.deadline = deadline;
  t.seq = seq_++;
  place(t);
}

void timer_wheel::place(timer_node& t) noexcept {
  std::uint64_t tick = tick_of(t.deadline);
  if (tick <= elapsed_) {
    heap_push(t);
    return;
  }
  int level = level_of(tick);
  auto slot = static_cast<std::uint32_t>((tick >> (level * digit_bits)) & (slots - 1));
  wheel_[level][slot].push_back(t);
  occupied_[level] |= std::uint64_t{1} << slot;
  t.place = timer_node::first_slot - static_cast<std::uint32_t>(level * slots) - slot;
}

void timer_wheel::remove(timer_node& t) noexcept {
  if (!t.armed()) return;
  --count_;
  if (!t.in_wheel()) {
    heap_erase(t.place);
    return;
  }
  // The slot recorded at placing is still the timer's: until its slot is
  // reached, elapsed_ keeps the digits that chose it.
  std::uint32_t index = timer_node::first_slot - t.place;
  t.unlink();
  t.place = timer_node::npos;
  int level = static_cast<int>(index / slots);
  std::uint32_t slot = index % slots;
  if (wheel_[level][slot].empty()) occupied_[level] &= ~(std::uint64_t{1} << slot);
}

// The earliest occupied slot: the lowest level that has one wins, since a
// level's timers all come before the next level's. Within a level every
// occupied slot lies after elapsed_'s own digit.
bool timer_wheel::next_slot(int& level, std::uint64_t& start) const noexcept {
  for (int l = 0; l < levels; ++l) {
    int shift = l * digit_bits;
    auto digit = static_cast<int>((elapsed_ >> shift) & (slots - 1));
    assert((occupied_[l] & (std::uint64_t{1} << digit)) == 0);
    std::uint64_t later =
        digit == slots - 1 ? 0 : occupied_[l] & (~std::uint64_t{0} << (digit + 1));
    if (later == 0) continue;
    std::uint64_t above = elapsed_ >> (shift + digit_bits) << (shift + digit_bits);
    level = l;
    start = above | (static_cast<std::uint64_t>(std::countr_zero(later)) << shift);
    return true;
  }
  return false;
}

// Moves the wheel's clock to the start of the earliest slot and re-places
// its timers: one level down, or into the heap once their tick has come.
// Nothing lies between: the slot was the earliest.
void timer_wheel::advance_to(int level, std::uint64_t start) noexcept {
  elapsed_ = start;
  slot_list& slot = slot_of(start, level);
  slot_list moving;
  moving.splice_back(slot);
  occupied_[level] &= ~(std::uint64_t{1} << ((start >> (level * digit_bits)) & (slots - 1)));
  while (ready_node* n = moving.pop_front()) place(*static_cast<timer_node*>(n));
}

time_point timer_wheel::next_deadline() noexcept {
  int level;
  std::uint64_t start;
  while (heap_.empty()) {
    if (!next_slot(level, start)) return time_point::max();
    advance_to(level, start);
  }
  return heap_.front()->deadline;
}

timer_node* timer_wheel::pop_expired(time_point now) noexcept {
  std::uint64_t now_tick = tick_of(now);
  int level;
  std::uint64_t start;
  while (heap_.empty()) {
    // The loop asks every iteration; within the current tick the answer is
    // no without looking (every wheel timer's tick is later).
    if (now_tick <= elapsed_) return nullptr;
    // Everything pending is in the wheel, after elapsed_. Catch the wheel's
    // clock up with `now`, slot by slot: a slot that starts later than now
    // holds nothing due, and then the clock may jump to now (no slot lies
    // in between to be passed over).
    if (!next_slot(level, start) || start > now_tick) {
      elapsed_ = std::max(elapsed_, now_tick);
      return nullptr;
    }
    advance_to(level, start);
  }
  timer_node* top = heap_.front();
  if (top->deadline > now) return nullptr;
  --count_;
  heap_erase(0);
  return top;
}

void timer_wheel::clear() noexcept {
  for (int l = 0; l < levels; ++l) {
    for (slot_list& slot : wheel_[l]) {
      while (ready_node* n = slot.pop_front())
        static_cast<timer_node*>(n)->place = timer_node::npos;
    }
    occupied_[l] = 0;
  }
  for (timer_node* t : heap_) t->place = timer_node::npos;
  heap_.clear();
  count_ = 0;
}

// The heap never allocates: insert() reserved room for every pending timer.
void timer_wheel::heap_push(timer_node& t) noexcept {
  assert(heap_.size() < heap_.capacity());
  heap_.push_back(&t);
  auto i = static_cast<std::uint32_t>(heap_.size() - 1);
  t.place = i;
  heap_up(i);
}

void timer_wheel::heap_erase(std::uint32_t i) noexcept {
  timer_node* gone = heap_[i];
  timer_node* last = heap_.back();
  heap_.pop_back();
  gone->place = timer_node::npos;
  if (gone == last) return;
  heap_set(i, last);
  heap_down(i);
  heap_up(last->place);
}

void timer_wheel::heap_set(std::uint32_t i, timer_node* t) noexcept {
  heap_[i] = t;
  t->place = i;
}

void timer_wheel::heap_up(std::uint32_t i) noexcept {
  timer_node* t = heap_[i];
  while (i > 0) {
    std::uint32_t parent = (i - 1) / 2;
    if (!earlier(t, heap_[parent])) break;
    heap_set(i, heap_[parent]);
    i = parent;
  }
  heap_set(i, t);
}

void timer_wheel::heap_down(std::uint32_t i) noexcept {
  timer_node* t = heap_[i];
  auto n = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    std::uint32_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && earlier(heap_[child + 1], heap_[child])) ++child;
    if (!earlier(heap_[child], t)) break;
    heap_set(i, heap_[child]);
    i = child;
  }
  heap_set(i, t);
}

}  // namespace grove::detail
