#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <grove/detail/frame_pool.hpp>
#include <unordered_set>
#include <vector>

namespace grove::detail {

thp_mode parse_thp_mode(std::string_view enabled) noexcept {
  const auto open = enabled.find('[');
  if (open == std::string_view::npos) return thp_mode::never;
  const auto close = enabled.find(']', open);
  if (close == std::string_view::npos) return thp_mode::never;
  const std::string_view word = enabled.substr(open + 1, close - open - 1);
  if (word == "always") return thp_mode::always;
  if (word == "madvise") return thp_mode::madvise;
  return thp_mode::never;
}

thp_mode system_thp_mode() noexcept {
  static const thp_mode mode = [] {
    std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
    if (f == nullptr) return thp_mode::never;
    char buf[128];
    const std::size_t got = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    return parse_thp_mode(std::string_view(buf, got));
  }();
  return mode;
}

// A thread's arenas, in carving order: the pool carves arenas[cur] and, when
// it is used up, moves on to the next one (mapping it if there is none).
// Kept out of the arenas themselves, so that an idle pool can hand every
// arena page to the kernel (MADV_FREE) without losing its bookkeeping.
struct frame_pool::arena_table {
  std::vector<char*> arenas;
  std::unordered_set<std::uintptr_t> owned;  // the same, for the owner check
  std::size_t cur = 0;
  std::size_t idle_trims = 0;
  thp_mode mode = system_thp_mode();

  std::size_t carved(const lists& l) const noexcept {
    if (arenas.empty()) return 0;
    return cur * arena_bytes + static_cast<std::size_t>(l.bump - arenas[cur]);
  }
};

namespace {

// Maps one arena_bytes arena aligned to arena_bytes. The kernel usually
// places a new mapping just below the previous one, so the first try is
// usually aligned; otherwise map twice the size and trim.
char* map_arena(thp_mode mode) {
  constexpr std::size_t size = frame_pool::arena_bytes;
  constexpr int prot = PROT_READ | PROT_WRITE;
  constexpr int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  void* p = ::mmap(nullptr, size, prot, flags, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* mem = static_cast<char*>(p);
  if (reinterpret_cast<std::uintptr_t>(mem) % size != 0) {
    ::munmap(mem, size);
    p = ::mmap(nullptr, 2 * size, prot, flags, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    auto* raw = static_cast<char*>(p);
    const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(raw);
    mem = raw + ((size - a % size) % size);
    if (mem > raw) ::munmap(raw, static_cast<std::size_t>(mem - raw));
    if (mem + size < raw + 2 * size)
      ::munmap(mem + size, static_cast<std::size_t>(raw + 2 * size - (mem + size)));
  }
  // Where THP is [always], an aligned anonymous region gets huge pages
  // without advice; where it is [never] (or absent) advice would do nothing.
  if (mode == thp_mode::madvise) ::madvise(mem, size, MADV_HUGEPAGE);
  return mem;
}

// Tells the kernel the arena's contents are disposable but keeps it mapped.
void discard(char* arena) noexcept {
#ifdef MADV_FREE
  if (::madvise(arena, frame_pool::arena_bytes, MADV_FREE) == 0) return;
#endif
  ::madvise(arena, frame_pool::arena_bytes, MADV_DONTNEED);
}

}  // namespace

// The slow path of pooled_allocate: the current arena cannot hold `size`
// more bytes (its tail, under max_pooled bytes, is left unused). Moves on to
// the next arena, mapping one if this thread has no more.
void* frame_pool::grow(lists& l, std::size_t size) {
  try {
    if (l.table == nullptr) l.table = new arena_table;
    arena_table& t = *l.table;
    if (!t.arenas.empty() && t.cur + 1 < t.arenas.size()) {
      ++t.cur;  // mapped before a rewind
    } else {
      t.arenas.reserve(t.arenas.size() + 1);
      t.owned.reserve(t.arenas.size() + 1);
      char* a = map_arena(t.mode);
      if (a == nullptr) throw std::bad_alloc();
      t.arenas.push_back(a);
      t.owned.insert(reinterpret_cast<std::uintptr_t>(a));
      t.cur = t.arenas.size() - 1;
    }
    l.bump = t.arenas[t.cur];
    l.end = l.bump + arena_bytes;
  } catch (...) {
    --l.live;
    throw;
  }
  void* p = l.bump;
  l.bump += size;
  return p;
}

// The last live block of this thread was just freed.
void frame_pool::went_idle(lists& l) noexcept {
  arena_table* t = l.table;
  if (t == nullptr || t->carved(l) < idle_trim_bytes) return;
  for (std::size_t i = 0; i <= t->cur; ++i) discard(t->arenas[i]);
  for (auto& h : l.heads) h = nullptr;
  t->cur = 0;
  l.bump = t->arenas[0];
  l.end = l.bump + arena_bytes;
  ++t->idle_trims;
}

std::size_t frame_pool::trim() noexcept {
  lists& l = local();
  arena_table* t = l.table;
  if (l.live != 0 || t == nullptr || t->arenas.empty()) return 0;
  const std::size_t released = t->arenas.size() * arena_bytes;
  for (std::size_t i = 1; i < t->arenas.size(); ++i) {
    t->owned.erase(reinterpret_cast<std::uintptr_t>(t->arenas[i]));
    ::munmap(t->arenas[i], arena_bytes);
  }
  t->arenas.resize(1);
  ::madvise(t->arenas[0], arena_bytes, MADV_DONTNEED);
  for (auto& h : l.heads) h = nullptr;
  t->cur = 0;
  l.bump = t->arenas[0];
  l.end = l.bump + arena_bytes;
  return released;
}

frame_pool::lists::~lists() {
  if (table == nullptr) return;
  // A block still live (a frame outliving its thread) keeps the arenas
  // mapped: freeing it later must not fault.
  if (live == 0)
    for (char* a : table->arenas) ::munmap(a, arena_bytes);
  delete table;
  table = nullptr;
  for (auto& h : heads) h = nullptr;
  bump = end = nullptr;
}

frame_pool::stats frame_pool::thread_stats() noexcept {
  const lists& l = local();
  stats s;
  s.live = l.live;
  s.mode = system_thp_mode();
  if (const arena_table* t = l.table) {
    s.arenas = t->arenas.size();
    s.carved = t->carved(l);
    s.idle_trims = t->idle_trims;
    s.mode = t->mode;
  }
  return s;
}

void frame_pool::set_thread_thp_mode(thp_mode m) {
  lists& l = local();
  if (l.table == nullptr) l.table = new arena_table;
  l.table->mode = m;
}

bool frame_pool::owned_by_this_thread(void* block) noexcept {
  const arena_table* t = local().table;
  return t != nullptr && t->owned.count(reinterpret_cast<std::uintptr_t>(arena_of(block))) != 0;
}

}  // namespace grove::detail
