// Per-thread free lists for coroutine frames and task-group child records:
// after warm-up, spawning and finishing a task costs two list operations
// instead of two malloc/free pairs. A block carries no malloc header (a
// sleeping task costs what its frame and record need, nothing more).
// Disabled under AddressSanitizer so that use-after-free of a frame is still
// caught (allocate/deallocate then go to operator new/delete; the pool itself
// is still compiled, and its own tests run there).
//
// Memory. Each thread's pool maps 2 MiB arenas (mmap, aligned to 2 MiB so
// that a transparent huge page can back each one: the cold cost of a pool is
// page faults, one per 4 KiB page without THP, one per arena with it). When
// /sys/kernel/mm/transparent_hugepage/enabled says [madvise] (read once per
// process) an arena is madvise(MADV_HUGEPAGE)d; with [always] the kernel
// needs no advice, with [never] (or no THP) it is a plain mapping. Blocks are
// carved lazily: a size class whose free list is empty takes its next block
// from the current arena's bump pointer, so a page is touched only when a
// block on it is first used. Freed blocks go to their class's free list and
// are reused first (O(1), per thread, no lock, no atomic).
//
// Returning memory (the policy). A thread's pool counts its live blocks.
//  - When that count drops to zero and the pool has carved at least
//    `idle_trim_bytes` since it last did so, the pool goes idle: it forgets
//    its free lists, rewinds its bump pointer to its first arena, and
//    madvise(MADV_FREE)s the arenas it carved (MADV_DONTNEED where the kernel
//    lacks MADV_FREE). The arenas stay mapped: the kernel reclaims their
//    pages when it needs memory, without swapping them; until then reusing
//    them costs no fault (a warm loop stays warm). Rewinding bounds the
//    madvise work by what was carved since, so it is amortised.
//  - `trim()` releases at once: with no block live on this thread it unmaps
//    every arena but the first and drops the first's pages (MADV_DONTNEED).
//  - At thread exit every arena is unmapped, unless blocks are still live
//    (a frame outliving its thread, which the contract below forbids): then
//    the arenas are left mapped rather than unmapped under the block.
// A thread that always keeps some frame alive (a loop's root task, say)
// never reaches zero, so only thread exit or a trim() between runs returns
// its arenas.
//
// Thread contract: a block is freed on the thread that allocated it. Tasks
// satisfy it by construction (a frame is created, run and destroyed on its
// loop's thread); what breaks it is destroying a task object, or a group's
// child record, on another thread. Debug builds check it on every free (a
// block's arena is found by masking its address: arenas are aligned to their
// size; the check looks that arena up in the freeing thread's arena set).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string_view>

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

// The kernel's transparent-huge-page mode
// (/sys/kernel/mm/transparent_hugepage/enabled).
enum class thp_mode : unsigned char { never, madvise, always };

// Parses that file's text ("always [madvise] never"): the bracketed word;
// anything unrecognised (or no THP at all) is `never`.
thp_mode parse_thp_mode(std::string_view enabled) noexcept;
// The system's mode, read once per process.
thp_mode system_thp_mode() noexcept;

class frame_pool {
 public:
  static constexpr std::size_t granule = 16;
  static constexpr std::size_t max_pooled = 1024;
  static constexpr std::size_t arena_bytes = std::size_t{2} << 20;
  static constexpr std::size_t idle_trim_bytes = std::size_t{8} << 20;

  static void* allocate(std::size_t n) {
#if GROVE_FRAME_POOL
    if (n <= max_pooled) return pooled_allocate(n);
#endif
    return ::operator new(n);
  }

  static void deallocate(void* p, std::size_t n) noexcept {
#if GROVE_FRAME_POOL
    if (n <= max_pooled) {
      pooled_deallocate(p, n);
      return;
    }
#endif
    ::operator delete(p, n);
  }

  // The pool itself (n <= max_pooled), whatever GROVE_FRAME_POOL says.
  static void* pooled_allocate(std::size_t n) {
    lists& l = local();
    const std::size_t cls = index(n);
    ++l.live;
    if (free_block* b = l.heads[cls]) {
      l.heads[cls] = b->next;
      return b;
    }
    const std::size_t size = cls * granule;
    if (static_cast<std::size_t>(l.end - l.bump) >= size) {
      void* p = l.bump;
      l.bump += size;
      return p;
    }
    return grow(l, size);
  }

  static void pooled_deallocate(void* p, std::size_t n) noexcept {
    assert(owned_by_this_thread(p) &&
           "grove: a coroutine frame was freed on a thread other than the one that "
           "allocated it (a task must be destroyed on its loop's thread)");
    lists& l = local();
    auto* b = static_cast<free_block*>(p);
    auto& head = l.heads[index(n)];
    b->next = head;
    head = b;
    if (--l.live == 0) [[unlikely]]
      went_idle(l);
  }

  // Returns this thread's arenas to the system now if none of its blocks is
  // live (all but the first unmapped, the first's pages dropped); returns
  // the bytes released, 0 if a block is live.
  static std::size_t trim() noexcept;

  // For tests and diagnostics: this thread's pool.
  struct stats {
    std::size_t live = 0;        // blocks allocated and not freed
    std::size_t arenas = 0;      // arenas mapped
    std::size_t carved = 0;      // bytes carved since the last rewind
    std::size_t idle_trims = 0;  // times the pool went idle and rewound
    thp_mode mode = thp_mode::never;
  };
  static stats thread_stats() noexcept;
  // The THP mode this thread's pool maps its next arenas with (tests: the
  // huge-page and no-huge-page paths on any system).
  static void set_thread_thp_mode(thp_mode m);
  static void* arena_of(void* block) noexcept {
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(block) & ~(arena_bytes - 1));
  }
  static bool owned_by_this_thread(void* block) noexcept;

 private:
  struct free_block {
    free_block* next;
  };
  struct arena_table;  // src/core/frame_pool.cpp
  struct lists {
    free_block* heads[max_pooled / granule + 1] = {};
    char* bump = nullptr;  // the current arena's next free byte
    char* end = nullptr;   // and its end
    std::size_t live = 0;
    arena_table* table = nullptr;
    lists() = default;
    lists(const lists&) = delete;
    lists& operator=(const lists&) = delete;
    ~lists();
  };
  static void* grow(lists& l, std::size_t size);
  static void went_idle(lists& l) noexcept;
  static std::size_t index(std::size_t n) noexcept { return (n + granule - 1) / granule; }
  static lists& local() noexcept {
    thread_local lists l;
    return l;
  }
};

}  // namespace grove::detail
