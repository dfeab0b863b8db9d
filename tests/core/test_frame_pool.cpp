// The frame pool: its thread contract (a frame is freed on the thread that
// allocated it, and debug builds catch a frame freed elsewhere) and its
// allocator (arenas, huge pages, bump carving, giving memory back).
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <grove/detail/frame_pool.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

// The allocator itself: 2 MiB arenas (huge pages where THP allows them),
// blocks carved by bump pointer, the idle policy, trim() and thread exit.
// Each test runs on a fresh thread, so that it starts with an empty pool.
// These call the pool directly (pooled_allocate), so they also run under
// ASan, where frames bypass the pool.
using pool = detail::frame_pool;
constexpr std::size_t page = 4096;

template <class F>
void on_fresh_thread(F f) {
  std::thread(f).join();
}

// Pages of [p, p + bytes) resident (mincore), or -1 if some are unmapped.
long resident_pages(void* p, std::size_t bytes) {
  std::vector<unsigned char> v((bytes + page - 1) / page);
  if (::mincore(p, bytes, v.data()) != 0) return -1;
  long n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

struct vma {
  std::uintptr_t start = 0, end = 0;
  std::string flags;
  long rss_kb = 0, lazy_kb = 0, huge_kb = 0;
};

// The /proc/self/smaps entry of the mapping holding `addr`.
vma vma_of(const void* addr) {
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  vma cur;
  bool in_it = false;
  while (std::getline(in, line)) {
    unsigned long s = 0, e = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &s, &e) == 2 && line.find(':') > line.find('-')) {
      if (in_it) return cur;
      in_it = a >= s && a < e;
      cur = vma{};
      cur.start = s;
      cur.end = e;
      continue;
    }
    if (!in_it) continue;
    long kb = 0;
    if (std::sscanf(line.c_str(), "Rss: %ld kB", &kb) == 1) cur.rss_kb = kb;
    if (std::sscanf(line.c_str(), "LazyFree: %ld kB", &kb) == 1) cur.lazy_kb = kb;
    if (std::sscanf(line.c_str(), "AnonHugePages: %ld kB", &kb) == 1) cur.huge_kb = kb;
    if (line.rfind("VmFlags:", 0) == 0) cur.flags = line.substr(8) + " ";
  }
  return in_it ? cur : vma{};
}

bool thp_supported() {
  return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
}

TEST(frame_pool, parses_the_thp_mode) {
  EXPECT_EQ(detail::parse_thp_mode("always [madvise] never\n"), detail::thp_mode::madvise);
  EXPECT_EQ(detail::parse_thp_mode("[always] madvise never\n"), detail::thp_mode::always);
  EXPECT_EQ(detail::parse_thp_mode("always madvise [never]\n"), detail::thp_mode::never);
  EXPECT_EQ(detail::parse_thp_mode(""), detail::thp_mode::never);
  EXPECT_EQ(detail::parse_thp_mode("[bogus]"), detail::thp_mode::never);
}

TEST(frame_pool, carves_blocks_by_bump_pointer_touching_only_used_pages) {
  on_fresh_thread([] {
    pool::set_thread_thp_mode(detail::thp_mode::never);
    constexpr int k = 100;
    std::vector<char*> blocks;
    for (int i = 0; i < k; ++i) {
      auto* b = static_cast<char*>(pool::pooled_allocate(1024));
      std::memset(b, 0xab, 1024);
      blocks.push_back(b);
    }
    void* arena = pool::arena_of(blocks[0]);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(arena) % pool::arena_bytes, 0u);
    for (int i = 1; i < k; ++i) EXPECT_EQ(blocks[i], blocks[i - 1] + 1024);
    EXPECT_EQ(pool::thread_stats().arenas, 1u);
    EXPECT_EQ(pool::thread_stats().carved, k * 1024u);
    // Only the pages holding those blocks are resident, not the arena.
    const long used = static_cast<long>((k * 1024 + page - 1) / page);
    const long res = resident_pages(arena, pool::arena_bytes);
    EXPECT_GE(res, used);
    EXPECT_LE(res, used + 1);
    for (char* b : blocks) pool::pooled_deallocate(b, 1024);
    EXPECT_EQ(pool::thread_stats().live, 0u);
  });
}

TEST(frame_pool, huge_page_path_advises_the_arena) {
  if (!thp_supported()) GTEST_SKIP() << "no transparent huge pages in this kernel";
  on_fresh_thread([] {
    pool::set_thread_thp_mode(detail::thp_mode::madvise);
    auto* b = static_cast<char*>(pool::pooled_allocate(256));
    b[0] = 1;  // the first fault: a huge page if the kernel has one free
    void* arena = pool::arena_of(b);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(arena) % pool::arena_bytes, 0u);
    // Fill the arena: where the kernel has a free huge page, one fault maps it.
    std::vector<void*> blocks{b};
    while (pool::thread_stats().arenas == 1) blocks.push_back(pool::pooled_allocate(1024));
    vma v = vma_of(arena);
    EXPECT_NE(v.flags.find(" hg "), std::string::npos) << "VmFlags:" << v.flags;
    std::printf("madvise path: AnonHugePages %ld kB in the arena's mapping (system mode %d)\n",
                v.huge_kb, static_cast<int>(detail::system_thp_mode()));
    pool::pooled_deallocate(blocks.back(), 1024);
    blocks.pop_back();
    pool::pooled_deallocate(blocks[0], 256);
    for (std::size_t i = 1; i < blocks.size(); ++i) pool::pooled_deallocate(blocks[i], 1024);
  });
}

TEST(frame_pool, no_huge_page_path_maps_plainly) {
  for (auto mode : {detail::thp_mode::never, detail::thp_mode::always}) {
    on_fresh_thread([mode] {
      pool::set_thread_thp_mode(mode);
      void* b = pool::pooled_allocate(256);
      void* arena = pool::arena_of(b);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(arena) % pool::arena_bytes, 0u);
      vma v = vma_of(arena);
      EXPECT_NE(v.end, 0u);
      EXPECT_EQ(v.flags.find(" hg "), std::string::npos) << "VmFlags:" << v.flags;
      pool::pooled_deallocate(b, 256);
    });
  }
}

TEST(frame_pool, a_freed_block_is_reused_first_by_its_size_class) {
  on_fresh_thread([] {
    void* a = pool::pooled_allocate(64);
    void* b = pool::pooled_allocate(64);
    pool::pooled_deallocate(a, 64);
    void* c = pool::pooled_allocate(48);  // another class: carved anew
    EXPECT_NE(c, a);
    EXPECT_EQ(pool::pooled_allocate(57), a);  // 57 rounds up to 64's class
    EXPECT_EQ(pool::thread_stats().live, 3u);
    pool::pooled_deallocate(a, 64);
    pool::pooled_deallocate(b, 64);
    pool::pooled_deallocate(c, 48);
    EXPECT_EQ(pool::thread_stats().live, 0u);
  });
}

TEST(frame_pool, every_size_class_gets_aligned_disjoint_blocks) {
  on_fresh_thread([] {
    std::vector<std::pair<char*, std::size_t>> blocks;
    for (int round = 0; round < 3; ++round)
      for (std::size_t n = 1; n <= pool::max_pooled; ++n) {
        auto* p = static_cast<char*>(pool::pooled_allocate(n));
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % pool::granule, 0u);
        std::memset(p, static_cast<int>(n & 0xff), n);
        blocks.emplace_back(p, n);
      }
    auto sorted = blocks;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
      ASSERT_GE(sorted[i].first, sorted[i - 1].first + sorted[i - 1].second);
    for (auto [p, n] : blocks)
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(static_cast<unsigned char>(p[i]), n & 0xff);
    const std::size_t carved = pool::thread_stats().carved;
    for (auto [p, n] : blocks) pool::pooled_deallocate(p, n);
    // Everything again: all from the free lists, nothing carved.
    std::vector<char*> again;
    for (auto [p, n] : blocks) again.push_back(static_cast<char*>(pool::pooled_allocate(n)));
    EXPECT_EQ(pool::thread_stats().carved, carved);
    std::vector<char*> before, after = again;
    for (auto [p, n] : blocks) before.push_back(p);
    std::sort(before.begin(), before.end());
    std::sort(after.begin(), after.end());
    EXPECT_EQ(before, after);
    for (std::size_t i = 0; i < blocks.size(); ++i)
      pool::pooled_deallocate(again[i], blocks[i].second);
  });
}

// Resident bytes of the mappings holding `arenas` that the kernel may not
// simply drop (Rss minus LazyFree), in kB.
long kept_kb(const std::vector<void*>& arenas) {
  std::set<std::uintptr_t> seen;
  long kb = 0;
  for (void* a : arenas) {
    vma v = vma_of(a);
    if (v.end == 0 || !seen.insert(v.start).second) continue;
    kb += v.rss_kb - v.lazy_kb;
  }
  return kb;
}

TEST(frame_pool, an_idle_pool_gives_its_pages_back_and_rewinds) {
  on_fresh_thread([] {
    pool::set_thread_thp_mode(detail::thp_mode::never);
    // Under the threshold: idle, but kept as is (free lists reused).
    void* small = pool::pooled_allocate(512);
    pool::pooled_deallocate(small, 512);
    EXPECT_EQ(pool::thread_stats().idle_trims, 0u);
    EXPECT_EQ(pool::pooled_allocate(512), small);
    pool::pooled_deallocate(small, 512);

    std::vector<char*> blocks;
    std::vector<void*> arenas;
    while (pool::thread_stats().carved < pool::idle_trim_bytes + pool::arena_bytes / 2) {
      auto* b = static_cast<char*>(pool::pooled_allocate(1024));
      std::memset(b, 1, 1024);
      if (arenas.empty() || arenas.back() != pool::arena_of(b)) arenas.push_back(pool::arena_of(b));
      blocks.push_back(b);
    }
    EXPECT_EQ(arenas.size(), 5u);
    const long before = kept_kb(arenas);
    EXPECT_GE(before, static_cast<long>(pool::idle_trim_bytes / 1024));
    for (char* b : blocks) pool::pooled_deallocate(b, 1024);
    pool::stats s = pool::thread_stats();
    EXPECT_EQ(s.idle_trims, 1u);
    EXPECT_EQ(s.carved, 0u);
    EXPECT_EQ(s.arenas, 5u);  // still mapped, for reuse
    const long after = kept_kb(arenas);
    EXPECT_LE(after, before - static_cast<long>(pool::idle_trim_bytes / 1024))
        << "before " << before << " kB, after " << after << " kB";
    // Rewound: carving restarts at the first arena, the free lists are empty.
    void* again = pool::pooled_allocate(1024);
    EXPECT_EQ(again, arenas[0]);
    std::memset(again, 2, 1024);
    pool::pooled_deallocate(again, 1024);
  });
}

TEST(frame_pool, trim_returns_arenas_when_nothing_is_live) {
  on_fresh_thread([] {
    pool::set_thread_thp_mode(detail::thp_mode::never);
    std::vector<char*> blocks;
    while (pool::thread_stats().arenas < 3) {
      auto* b = static_cast<char*>(pool::pooled_allocate(1008));
      std::memset(b, 1, 1008);
      blocks.push_back(b);
    }
    void* first = pool::arena_of(blocks.front());
    void* last = pool::arena_of(blocks.back());
    EXPECT_EQ(pool::trim(), 0u);  // blocks are live
    EXPECT_EQ(resident_pages(last, pool::arena_bytes), 1);
    for (char* b : blocks) pool::pooled_deallocate(b, 1008);
    EXPECT_EQ(pool::trim(), 3 * pool::arena_bytes);
    EXPECT_EQ(pool::thread_stats().arenas, 1u);
    EXPECT_EQ(resident_pages(last, pool::arena_bytes), -1);  // unmapped
    EXPECT_EQ(resident_pages(first, pool::arena_bytes), 0);  // mapped, dropped
    auto* b = static_cast<char*>(pool::pooled_allocate(1008));
    EXPECT_EQ(b, first);
    std::memset(b, 1, 1008);
    pool::pooled_deallocate(b, 1008);
  });
}

TEST(frame_pool, thread_exit_unmaps_the_arenas_unless_a_block_is_live) {
  std::vector<void*> arenas;
  on_fresh_thread([&] {
    std::vector<char*> blocks;
    while (pool::thread_stats().arenas < 2) {
      auto* b = static_cast<char*>(pool::pooled_allocate(640));
      b[0] = 1;
      if (arenas.empty() || arenas.back() != pool::arena_of(b)) arenas.push_back(pool::arena_of(b));
      blocks.push_back(b);
    }
    for (char* b : blocks) pool::pooled_deallocate(b, 640);
    for (void* a : arenas) EXPECT_GE(resident_pages(a, pool::arena_bytes), 0);
  });
  ASSERT_EQ(arenas.size(), 2u);
  for (void* a : arenas) EXPECT_EQ(resident_pages(a, pool::arena_bytes), -1);

  // A block outliving its thread (the contract forbids it) is left mapped.
  char* leaked = nullptr;
  on_fresh_thread([&] {
    leaked = static_cast<char*>(pool::pooled_allocate(128));
    std::memset(leaked, 7, 128);
  });
  EXPECT_GE(resident_pages(pool::arena_of(leaked), pool::arena_bytes), 1);
  EXPECT_EQ(leaked[127], 7);
}

// What a sleeping task costs (docs/benchmarks.md, "Memory of a sleeping
// task (W4)"): a group child is one frame and one record, nothing else from
// the pool, and these are the parts' budgets.
auto sleeper = []() -> task<void> { co_await sleep(1h); };

// The promise: context, parent, current wait, error, and three flags in what
// would be padding (state, starts_when_cancelled, early_cancelled).
static_assert(sizeof(detail::promise_base) <= 5 * sizeof(void*));
// An awaiter that never refuses its resumption (no await_must_resume) is
// wrapped without a proxy: the adapter is a vtable pointer, the awaiter (a
// reference to the temporary, for `co_await sleep(d)`) and the promise.
static_assert(!detail::needs_resume_proxy<detail::sleep_awaiter<true>>);
static_assert(sizeof(detail::adapter<detail::awaiter_t<detail::sleep_awaiter<true>>,
                                     detail::promise<void>>) == 3 * sizeof(void*));
// An awaiter that may confirm a cancellation when it resumes keeps the proxy.
static_assert(detail::needs_resume_proxy<detail::task_awaiter<void>>);
// A child's record: a vtable pointer, its place in the group's list, and its
// start node (whose target is the frame); no group pointer, no second handle.
static_assert(sizeof(detail::child<decltype(sleeper)>) == 6 * sizeof(void*));

TEST(frame_pool, a_sleeping_group_child_is_one_frame_and_one_record) {
  on_fresh_thread([] {
    constexpr std::size_t n = 100;
    pool::stats before, sleeping;
    auto o = run_virtual([&]() -> task<void> {
      co_await with_task_group([&](task_group& g) -> task<void> {
        before = pool::thread_stats();
        for (std::size_t i = 0; i < n; ++i) g.spawn(sleeper);
        co_await checkpoint();  // every child has started and sleeps
        sleeping = pool::thread_stats();
        g.cancel();
      });
    }());
    ASSERT_TRUE(o.has_value());
#if GROVE_FRAME_POOL
    EXPECT_EQ(sleeping.live - before.live, 2 * n);
#if defined(__clang__) && defined(__OPTIMIZE__)
    // The W4 budget, as clang lays out an optimised frame: 128 bytes of frame
    // (its size class exactly) and 48 of record.
    EXPECT_EQ(sleeping.carved - before.carved, n * (128 + 48));
#endif
#else
    EXPECT_EQ(sleeping.live, before.live);  // ASan bypasses the pool
#endif
  });
}

TEST(frame_pool, frames_use_the_pool_unless_asan_bypasses_it) {
  on_fresh_thread([] {
    const pool::stats before = pool::thread_stats();
    auto o = run_virtual(
        []() -> task<int> { co_return co_await answer() + pool::thread_stats().live; }());
#if GROVE_FRAME_POOL
    EXPECT_GE(o.value(), 42 + 1);  // at least the outer frame is pooled
    EXPECT_GE(pool::thread_stats().arenas, 1u);
#else
    EXPECT_EQ(o.value(), 42);
    EXPECT_EQ(pool::thread_stats().arenas, before.arenas);
#endif
    EXPECT_EQ(pool::thread_stats().live, before.live);
  });
}

}  // namespace
}  // namespace grove::testing
