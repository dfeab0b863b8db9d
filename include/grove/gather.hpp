// gather: run tasks concurrently and collect how each one ended.
#pragma once

#include <coroutine>
#include <cstddef>
#include <grove/detail/reaper.hpp>
#include <grove/event_loop.hpp>
#include <grove/outcome.hpp>
#include <grove/task.hpp>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace grove {
namespace detail {

// The part of gather that does not depend on the tasks' types.
class gather_core {
 public:
  // (virtual only for release(); never deleted through this type)
  struct slot final : frame_parent {
    gather_core* core = nullptr;
    promise_base* promise = nullptr;
    ready_node start;
    task_state state = task_state::running;  // kept: the frame may be gone
    std::coroutine_handle<> child_ended() noexcept override {
      core->slot_done(*this);
      return std::noop_coroutine();
    }
  };

  gather_core(const gather_core&) = delete;
  gather_core& operator=(const gather_core&) = delete;

  void await_set_parent(promise_base& p) noexcept { node_.parent = p.node; }
  bool await_ready() const noexcept { return slots_.empty(); }

  // Every child is scheduled to start in the loop's next batch.
  void await_suspend(std::coroutine_handle<> h) noexcept {
    outer_ = h;
    event_loop* loop = event_loop::current();
    for (slot& s : slots_) loop->post(s.start);
  }

  // Cancels every unfinished child; true only when all went synchronously
  // and none ended in an error (an error is never dropped). Once the
  // resumption is posted (every child had finished) the gather answers
  // false and delivers its outcomes: it was scheduled (DESIGN §1.2).
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (resumption_ != resumption::none) return resumption_ == resumption::withdrawn;
    cancelled_ = true;
    for (slot& s : slots_) {
      if (s.state != task_state::running) continue;
      if (!s.start.linked() && !s.promise->cancel()) continue;
      // Never started, or cancelled synchronously: it is finished, and its
      // frame goes now (destructors run now, as in a task_group).
      s.start.unlink();
      mark_finished(s, task_state::cancelled);
      release(index_of(s));
    }
    // A stop callback's cancel() may have re-entered and decided already.
    if (resumption_ != resumption::none) return resumption_ == resumption::withdrawn;
    if (remaining_ != 0) return false;
    if (any_error()) {
      post_resume();
      return false;
    }
    resumption_ = resumption::withdrawn;
    return true;
  }

  // After an outer cancel the gather unwinds unless some child failed.
  bool await_must_resume() const noexcept { return !cancelled_ || any_error(); }

  void await_describe(std::string& out, int depth) const {
    indent(out, depth);
    out += "gather (" + std::to_string(remaining_) + " of " + std::to_string(slots_.size()) +
           " unfinished)\n";
    for (const slot& s : slots_)
      if (s.state == task_state::running && !s.start.linked())
        describe_frame(*s.promise, out, depth + 1);
  }

 protected:
  explicit gather_core(std::size_t n) : slots_(n), remaining_(n) {}
  ~gather_core() = default;

  // Hands task i's frame to the reaper; its outcome then reads as cancelled.
  virtual void release(std::size_t i) noexcept = 0;

  void bind(std::size_t i, promise_base& p, std::coroutine_handle<> frame) noexcept {
    slot& s = slots_[i];
    s.core = this;
    s.promise = &p;
    s.start.target = frame;
    p.attach(&node_, &s);
  }

 private:
  // A child that unwound goes at once, so its RAII objects (a semaphore
  // guard, say) are released now, not when its siblings are done.
  void slot_done(slot& s) noexcept {
    mark_finished(s, s.promise->state);
    if (s.state == task_state::cancelled) release(index_of(s));
    if (remaining_ == 0) post_resume();
  }
  std::size_t index_of(const slot& s) const noexcept {
    return static_cast<std::size_t>(&s - slots_.data());
  }
  void mark_finished(slot& s, task_state how) noexcept {
    s.state = how;
    --remaining_;
  }
  bool any_error() const noexcept {
    for (const slot& s : slots_)
      if (s.state == task_state::error) return true;
    return false;
  }
  void post_resume() noexcept {
    resumption_ = resumption::posted;
    resume_.target = outer_;
    event_loop::current()->post(resume_);
  }

  // none: children outstanding. posted: resume_ is queued and will run.
  // withdrawn: await_cancel answered true; nothing will resume the gather.
  enum class resumption : unsigned char { none, posted, withdrawn };

  std::vector<slot> slots_;
  std::size_t remaining_;
  cancel_node node_;
  std::coroutine_handle<> outer_;
  ready_node resume_;
  resumption resumption_ = resumption::none;
  bool cancelled_ = false;
};

template <class T>
class gather_vector final : public gather_core {
 public:
  explicit gather_vector(std::vector<task<T>> tasks)
      : gather_core(tasks.size()), tasks_(std::move(tasks)) {
    for (std::size_t i = 0; i < tasks_.size(); ++i)
      bind(i, tasks_[i].handle().promise(), tasks_[i].handle());
  }
  std::vector<outcome<T>> await_resume() {
    std::vector<outcome<T>> out;
    out.reserve(tasks_.size());
    for (auto& t : tasks_) out.push_back(outcome_of(t));
    return out;
  }

 private:
  void release(std::size_t i) noexcept override {
    if (tasks_[i]) destroy_later(tasks_[i].release());
  }

  std::vector<task<T>> tasks_;
};

template <class... Ts>
class gather_tuple final : public gather_core {
 public:
  explicit gather_tuple(task<Ts>... tasks)
      : gather_core(sizeof...(Ts)), tasks_(std::move(tasks)...) {
    bind_all(std::index_sequence_for<Ts...>{});
  }
  std::tuple<outcome<Ts>...> await_resume() {
    return std::apply([](auto&... t) { return std::tuple<outcome<Ts>...>(outcome_of(t)...); },
                      tasks_);
  }

 private:
  void release(std::size_t i) noexcept override { release_at(i, std::index_sequence_for<Ts...>{}); }
  template <std::size_t... I>
  void release_at(std::size_t i, std::index_sequence<I...>) noexcept {
    ((I == i && std::get<I>(tasks_) ? destroy_later(std::get<I>(tasks_).release()) : void()), ...);
  }

  template <std::size_t... I>
  void bind_all(std::index_sequence<I...>) noexcept {
    (bind(I, std::get<I>(tasks_).handle().promise(), std::get<I>(tasks_).handle()), ...);
  }
  std::tuple<task<Ts>...> tasks_;
};

}  // namespace detail

// Runs every task concurrently (each starts in the loop's next batch) and
// completes when all have finished, with one outcome per task, in input
// order: a value, an error (std::exception_ptr), or cancelled. A failing
// task never cancels the others (use task_group for that). Cancelling the
// gather cancels every unfinished task and completes only after they all
// finish; it then unwinds, unless some task failed, in which case the
// outcomes are delivered so that no error is lost.
template <class T>
task<std::vector<outcome<T>>> gather(std::vector<task<T>> tasks) {
  co_return co_await detail::gather_vector<T>(std::move(tasks));
}

// The variadic form: one outcome per argument, as a tuple.
template <class... Ts>
task<std::tuple<outcome<Ts>...>> gather(task<Ts>... tasks) {
  co_return co_await detail::gather_tuple<Ts...>(std::move(tasks)...);
}

// The variadic form with awaitables that are not all tasks (rvalues:
// to_thread(fn), ev.wait(), sleep(d), ...): each is awaited in a task of its
// own; tasks stay as they are.
template <class... As>
  requires(awaitable<As> && ...) && (detail::non_task_awaitable<As> || ...)
auto gather(As... as) {
  return gather(detail::to_task(std::move(as))...);
}

}  // namespace grove
