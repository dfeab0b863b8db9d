#include <grove/detail/frame_pool.hpp>

namespace grove::detail {

// Debug builds align a slab to its size, so that a block finds its slab's
// owner by masking (the thread check in deallocate). Release builds do not:
// an aligned request makes the allocator touch an extra page per slab
// (W4 measures resident bytes per sleeping task).
void* frame_pool::allocate_slab() {
#ifdef NDEBUG
  return ::operator new(slab_bytes);
#else
  return ::operator new(slab_bytes, std::align_val_t{slab_bytes});
#endif
}

void frame_pool::release_slab(void* s) noexcept {
#ifdef NDEBUG
  ::operator delete(s);
#else
  ::operator delete(s, std::align_val_t{slab_bytes});
#endif
}

frame_pool::lists::~lists() {
  while (slabs != nullptr) {
    slab* s = slabs;
    slabs = s->next;
    release_slab(s);
  }
}

// Carves a new slab into blocks of class `cls` (the slab's first block
// holds the slab link).
void frame_pool::refill(std::size_t cls) {
  const std::size_t size = cls * granule;
  auto* mem = static_cast<char*>(allocate_slab());
  lists& l = local();
  auto* s = reinterpret_cast<slab*>(mem);
  s->next = l.slabs;
  s->owner = &l;
  l.slabs = s;
  std::size_t first = (sizeof(slab) + size - 1) / size * size;
  for (std::size_t off = slab_bytes - size; off >= first && off + size <= slab_bytes; off -= size) {
    auto* b = reinterpret_cast<free_block*>(mem + off);
    b->next = l.heads[cls];
    l.heads[cls] = b;
    if (off < size) break;
  }
}

}  // namespace grove::detail
