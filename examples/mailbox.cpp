// A cancellable awaiter written against grove/awaitable.hpp (the worked
// example of docs/architecture.md): a one-slot mailbox whose recv() can be
// cancelled at any moment without losing the value, even when the value was
// already handed to the receiver and its wake-up is on its way.
#include <cstdio>
#include <grove/grove.hpp>
#include <optional>
#include <stdexcept>
#include <utility>

using namespace std::chrono_literals;

template <class T>
class mailbox {
 public:
  class recv_awaiter;

  // Hands `v` to the waiting receiver, or keeps it in the box.
  void send(T v);
  // `co_await box.recv()` gives the next value (one receiver at a time).
  recv_awaiter recv() noexcept { return recv_awaiter(*this); }
  // Takes the value left in the box, if any.
  std::optional<T> try_take() noexcept { return std::exchange(value_, std::nullopt); }

 private:
  std::optional<T> value_;
  recv_awaiter* waiter_ = nullptr;
};

template <class T>
class mailbox<T>::recv_awaiter {
 public:
  explicit recv_awaiter(mailbox& box) noexcept : box_(&box) {}
  recv_awaiter(recv_awaiter&& o) noexcept : box_(o.box_) {}  // movable until awaited
  ~recv_awaiter() { withdraw(); }                            // destroyed without a cancel

  bool await_ready() noexcept {
    value_ = box_->try_take();
    return value_.has_value();
  }
  void await_suspend(std::coroutine_handle<> h) {
    if (box_->waiter_ != nullptr) throw std::logic_error("mailbox: one receiver at a time");
    wake_.target = h;
    box_->waiter_ = this;
  }
  // Waiting: leave the box; nothing will resume us: true. Handed a value
  // (its wake-up is posted): take the wake-up back and return the value to
  // the box, then answer true. Never true with a wake-up still pending.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    withdraw();
    return true;
  }
  T await_resume() noexcept { return std::move(*value_); }
  void await_describe(std::string& out, int depth) const {
    out.append(static_cast<std::size_t>(depth) * 2, ' ');
    out += value_ ? "mailbox recv (value handed over)\n" : "mailbox recv (waiting)\n";
  }

 private:
  friend class mailbox;
  void withdraw() noexcept {
    if (box_->waiter_ == this) box_->waiter_ = nullptr;  // was waiting
    if (wake_.linked()) {                                // was handed a value
      wake_.unlink();
      box_->value_ = std::move(value_);
      value_.reset();
    }
  }

  mailbox* box_;
  std::optional<T> value_;
  grove::detail::ready_node wake_;  // our place in the loop's ready queue
};

template <class T>
void mailbox<T>::send(T v) {
  if (recv_awaiter* w = std::exchange(waiter_, nullptr)) {
    w->value_.emplace(std::move(v));
    grove::event_loop::current()->post(w->wake_);  // never resume inline
  } else if (!value_) {
    value_.emplace(std::move(v));
  } else {
    throw std::logic_error("mailbox: full");
  }
}

int main() {
  return grove::run([]() -> grove::task<int> {
    mailbox<int> box;
    std::optional<int> got = co_await grove::move_on_after(5ms, box.recv());
    std::printf("nothing sent: recv timed out (%s)\n", got ? "got a value?" : "no value");

    // The send and the deadline land in the same step, the send first: the
    // value is handed over, then the deadline cancels the receiver.
    grove::time_point at = grove::now() + 10ms;
    co_await grove::with_task_group([&](grove::task_group& g) -> grove::task<void> {
      g.spawn([&]() -> grove::task<void> {
        co_await grove::sleep_until(at);
        box.send(7);
      });
      g.spawn([&]() -> grove::task<void> { got = co_await grove::move_on_at(at, box.recv()); });
      co_return;
    });
    std::optional<int> left = box.try_take();
    std::printf("send and deadline together: recv %s, box holds %s\n",
                got ? "got the value" : "timed out", left ? "the value" : "nothing");
    co_return (got.has_value() != left.has_value()) ? 0 : 1;  // exactly one has it
  });
}
