// A fake coroutine frame: a std::coroutine_handle<> whose resume() calls a
// plain function. Clang and GCC both lay out a coroutine frame as
// {resume fn, destroy fn, ...} and implement handle.resume() as a call through
// the first pointer, so an object with that layout can be handed to any
// awaiter (or returned for symmetric transfer) in place of a real coroutine.
// This is what lets grove observe *how* an await completed (value, or
// cancellation confirmed) before deciding whether to resume the awaiting
// frame or unwind it, without ever throwing through user code.
#pragma once

#include <coroutine>

namespace grove::detail {

struct proxy_frame {
  using fn = void (*)(proxy_frame*);

  fn resume_fn = nullptr;
  fn destroy_fn = nullptr;
  void* owner = nullptr;

  proxy_frame() noexcept = default;
  proxy_frame(fn on_resume, void* o) noexcept
      : resume_fn(on_resume), destroy_fn(&no_destroy), owner(o) {}

  std::coroutine_handle<> handle() noexcept { return std::coroutine_handle<>::from_address(this); }

 private:
  // Nobody owns a proxy through a handle, so destroying one is a no-op.
  static void no_destroy(proxy_frame*) noexcept {}
};

// Binds a proxy to a member function of its owner.
template <class Owner, void (Owner::*Fn)() noexcept>
proxy_frame make_proxy(Owner* owner) noexcept {
  return proxy_frame([](proxy_frame* p) { (static_cast<Owner*>(p->owner)->*Fn)(); }, owner);
}

// The same trick without the owner pointer, for objects that exist by the
// million (a task's adapter, a task group's child): the owner derives from
// embedded_proxy<Owner, Tag> and gets owner.proxy_resumed(Tag{}) called.
struct proxy_tag {};

template <class Owner, class Tag = proxy_tag>
class embedded_proxy {
 public:
  std::coroutine_handle<> proxy_handle() noexcept {
    return std::coroutine_handle<>::from_address(static_cast<embedded_proxy*>(this));
  }

 private:
  static void trampoline(embedded_proxy* p) noexcept {
    static_cast<Owner*>(p)->proxy_resumed(Tag{});
  }
  static void no_destroy(embedded_proxy*) noexcept {}

  void (*resume_fn_)(embedded_proxy*) noexcept = &trampoline;
  void (*destroy_fn_)(embedded_proxy*) noexcept = &no_destroy;
};

}  // namespace grove::detail
