#include <grove/detail/frame_pool.hpp>

namespace grove::detail {

frame_pool::lists::~lists() {
  while (slabs != nullptr) {
    slab* s = slabs;
    slabs = s->next;
    ::operator delete(s, std::align_val_t{slab_bytes});
  }
}

// Carves a new slab into blocks of class `cls` (the slab's first block
// holds the slab link).
void frame_pool::refill(std::size_t cls) {
  const std::size_t size = cls * granule;
  // Aligned to its size: a block finds its slab (and its owner) by masking.
  auto* mem = static_cast<char*>(::operator new(slab_bytes, std::align_val_t{slab_bytes}));
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
