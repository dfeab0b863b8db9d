// Intrusive containers used on the runtime's hot paths: nothing here allocates.
#pragma once

#include <cstddef>
#include <utility>

namespace grove::detail {

// A node of a circular doubly-linked list. It unlinks itself on destruction,
// so an awaiter destroyed with its frame can never leave a dangling pointer
// behind in a ready queue or a waiter list.
class list_hook {
 public:
  list_hook() noexcept = default;
  list_hook(const list_hook&) = delete;
  list_hook& operator=(const list_hook&) = delete;
  ~list_hook() { unlink(); }

  bool linked() const noexcept { return next_ != this; }

  void unlink() noexcept {
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = this;
  }

 private:
  template <class T>
  friend class intrusive_list;
  list_hook* prev_ = this;
  list_hook* next_ = this;
};

// FIFO of T, where T derives from list_hook. O(1) push, pop, unlink, splice.
template <class T>
class intrusive_list {
 public:
  intrusive_list() noexcept = default;
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;
  ~intrusive_list() { clear(); }

  bool empty() const noexcept { return !head_.linked(); }

  void push_back(T& item) noexcept {
    list_hook& n = item;
    n.unlink();
    n.prev_ = head_.prev_;
    n.next_ = &head_;
    head_.prev_->next_ = &n;
    head_.prev_ = &n;
  }

  T* front() noexcept { return empty() ? nullptr : static_cast<T*>(head_.next_); }

  T* pop_front() noexcept {
    T* item = front();
    if (item) static_cast<list_hook*>(item)->unlink();
    return item;
  }

  // Moves every item of `other` to the back of this list.
  void splice_back(intrusive_list& other) noexcept {
    if (other.empty()) return;
    list_hook* first = other.head_.next_;
    list_hook* last = other.head_.prev_;
    other.head_.prev_ = other.head_.next_ = &other.head_;
    first->prev_ = head_.prev_;
    last->next_ = &head_;
    head_.prev_->next_ = first;
    head_.prev_ = last;
  }

  // Moves every item of `other` to the front of this list, in order.
  void splice_front(intrusive_list& other) noexcept {
    if (other.empty()) return;
    list_hook* first = other.head_.next_;
    list_hook* last = other.head_.prev_;
    other.head_.prev_ = other.head_.next_ = &other.head_;
    last->next_ = head_.next_;
    first->prev_ = &head_;
    head_.next_->prev_ = last;
    head_.next_ = first;
  }

  void clear() noexcept {
    while (pop_front()) {
    }
  }

  template <class F>
  void for_each(F&& f) {
    for (list_hook* n = head_.next_; n != &head_; n = n->next_) f(*static_cast<T*>(n));
  }

 private:
  list_hook head_;
};

}  // namespace grove::detail
