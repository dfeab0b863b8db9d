#include <grove/detail/frame_pool.hpp>

namespace grove::detail {

frame_pool::lists::~lists() {
  for (auto*& head : heads) {
    while (head != nullptr) {
      free_block* b = head;
      head = b->next;
      ::operator delete(b);
    }
  }
}

}  // namespace grove::detail
