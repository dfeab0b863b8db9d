// The per-thread reaper (see include/grove/detail/reaper.hpp).
#include <cstddef>
#include <grove/detail/reaper.hpp>
#include <vector>

namespace grove::detail {

constinit thread_local int reap_depth = 0;
constinit thread_local bool reap_due = false;

namespace {

struct entry {
  void* object;
  destroy_fn destroy;
};

// Grows to the largest batch ever cancelled at once and is reused; a very
// large one is given back after it was reaped.
std::vector<entry>& queue() {
  thread_local std::vector<entry> q;
  return q;
}

constexpr std::size_t keep_capacity = 4096;

}  // namespace

void enqueue_destroy(void* object, destroy_fn fn) noexcept {
  queue().push_back({object, fn});  // bad_alloc here terminates: nothing can be undone
  reap_due = true;
}

void reap() noexcept {
  if (reap_depth != 0 || !reap_due) return;
  reap_guard reaping;  // a cancel() from a destructor queues behind us
  std::vector<entry>& q = queue();
  // q grows while destructors cancel more: index, never iterators.
  for (std::size_t i = 0; i < q.size(); ++i) {
    entry e = q[i];
    e.destroy(e.object);
  }
  q.clear();
  if (q.capacity() > keep_capacity) std::vector<entry>().swap(q);
  reap_due = false;
}

}  // namespace grove::detail
