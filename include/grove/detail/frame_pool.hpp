// Per-thread free lists for coroutine frames and task-group child records:
// after warm-up, spawning and finishing a task costs two list operations
// instead of two malloc/free pairs. Blocks are carved from 64 KiB slabs, so
// a block carries no malloc header (a sleeping task costs what its frame and
// record need, nothing more). Memory returns to the system when the thread
// exits; until then freed blocks are reused. Disabled under AddressSanitizer
// so that use-after-free of a frame is still caught.
//
// Thread contract: a block is freed on the thread that allocated it. Tasks
// satisfy it by construction (a frame is created, run and destroyed on its
// loop's thread); what breaks it is destroying a task object, or a group's
// child record, on another thread. Debug builds check it on every free (there
// a slab is aligned to its size, so a block finds its slab's owner in O(1)).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define GROVE_FRAME_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GROVE_FRAME_POOL 0
#endif
#endif
#ifndef GROVE_FRAME_POOL
#define GROVE_FRAME_POOL 1
#endif

namespace grove::detail {

class frame_pool {
 public:
  static constexpr std::size_t granule = 16;
  static constexpr std::size_t max_pooled = 1024;

  static void* allocate(std::size_t n) {
#if GROVE_FRAME_POOL
    if (n <= max_pooled) {
      auto& head = local().heads[index(n)];
      if (head == nullptr) refill(index(n));
      free_block* b = head;
      head = b->next;
      return b;
    }
#endif
    return ::operator new(n);
  }

  static void deallocate(void* p, std::size_t n) noexcept {
#if GROVE_FRAME_POOL
    if (n <= max_pooled) {
      assert(slab_of(p)->owner == &local() &&
             "grove: a coroutine frame was freed on a thread other than the one that "
             "allocated it (a task must be destroyed on its loop's thread)");
      auto& head = local().heads[index(n)];
      auto* b = static_cast<free_block*>(p);
      b->next = head;
      head = b;
      return;
    }
#endif
    ::operator delete(p, n);
  }

 private:
  struct free_block {
    free_block* next;
  };
  static constexpr std::size_t slab_bytes = 64 * 1024;
  struct lists;
  struct slab {
    slab* next;
    lists* owner;  // the thread's lists that carved it
  };
  struct lists {
    free_block* heads[max_pooled / granule + 1] = {};
    slab* slabs = nullptr;
    lists() = default;
    lists(const lists&) = delete;
    lists& operator=(const lists&) = delete;
    ~lists();
  };
  static void refill(std::size_t cls);
  static void* allocate_slab();
  static void release_slab(void* s) noexcept;
  static std::size_t index(std::size_t n) noexcept { return (n + granule - 1) / granule; }
  static slab* slab_of(void* block) noexcept {
    return reinterpret_cast<slab*>(reinterpret_cast<std::uintptr_t>(block) & ~(slab_bytes - 1));
  }
  static std::size_t round(std::size_t n) noexcept { return index(n) * granule; }
  static lists& local() noexcept {
    thread_local lists l;
    return l;
  }
};

}  // namespace grove::detail
