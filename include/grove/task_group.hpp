// task_group: structured concurrency (Trio's nursery).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <grove/detail/reaper.hpp>
#include <grove/errors.hpp>
#include <grove/event_loop.hpp>
#include <grove/task.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace grove {

class task_group;

namespace detail {

// A task group's cancellation node. Its children's frames run in it (a
// frame's context is set once, before it first runs), so a child's record
// finds its group through its frame instead of keeping a pointer of its own.
struct group_node : cancel_node {
  task_group* group = nullptr;
};

// One spawned child: its callable and arguments (kept alive until the child
// finishes, so the child may refer to them), its frame, and its list hook.
// The frame's parent is this record: when the child ends, the group hears.
// 48 bytes besides the callable and arguments, one per sleeping child: no
// pointer to the group (the frame's context leads there), and the frame
// handle is the start node's target (it names the frame it starts).
class child_base : public frame_parent, public list_hook {
 public:
  child_base(const child_base&) = delete;
  child_base& operator=(const child_base&) = delete;
  virtual ~child_base() = default;

  virtual promise_base& promise() noexcept = 0;
  bool started() const noexcept { return !start_.linked(); }

 protected:
  child_base() noexcept = default;
  // Takes ownership of the child's frame and makes it run in `g`.
  void bind(task_group& g, promise_base& p, std::coroutine_handle<> frame) noexcept;
  std::coroutine_handle<> frame() const noexcept { return start_.target; }
  // The frame (whose promise is `p`) has ended: tells its group.
  std::coroutine_handle<> ended(promise_base& p) noexcept;

 private:
  friend class grove::task_group;

  ready_node start_;
};

template <class F, class... Args>
class child final : public child_base {
  using result = std::invoke_result_t<F&, Args&...>;
  static_assert(is_task<result>::value,
                "task_group::spawn: the callable must return a grove::task<T>");
  using handle = std::coroutine_handle<typename result::promise_type>;

 public:
  template <class FF, class... AA>
  child(task_group& g, FF&& f, AA&&... args)
      : fn_(std::forward<FF>(f)), args_(std::forward<AA>(args)...) {
    // Arguments are passed as lvalues into this record.
    handle h = std::apply(fn_, args_).release();
    bind(g, h.promise(), h);
  }
  // The frame dies before the callable and arguments it may refer to.
  ~child() override { frame().destroy(); }

  static void* operator new(std::size_t n) { return frame_pool::allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_pool::deallocate(p, n); }

  promise_base& promise() noexcept override { return typed_promise(); }
  std::coroutine_handle<> child_ended() noexcept override { return ended(typed_promise()); }

 private:
  typename result::promise_type& typed_promise() noexcept {
    return handle::from_address(frame().address()).promise();
  }

  [[no_unique_address]] F fn_;
  [[no_unique_address]] std::tuple<Args...> args_;
};

// The group's side of its awaiter (type-erased over the body's T).
class group_runner {
 public:
  // Cancels the body if it still runs; finishes the group if all is done.
  virtual void cancel_body() noexcept = 0;
  virtual void on_children_done() noexcept = 0;

 protected:
  ~group_runner() = default;
};

template <class T>
class group_awaiter;

}  // namespace detail

// A nursery: the tasks spawned into it run concurrently with its body, and
// the group does not finish until every one of them has finished.
//
// - A child's error cancels the body and every sibling; every error (from
//   children and the body) is collected, in the order it happened, into one
//   exception_group that with_task_group throws. No first-error-wins.
// - Cancellation is not an error: a child that ends cancelled adds nothing.
// - cancel() cancels the body and every child; the group then completes
//   without error.
// - Cancelling the task that awaits the group cancels the body and children;
//   errors raised while they unwind (e.g. by finally cleanups) still win.
// A task_group is only ever opened by with_task_group, and never outlives it.
class task_group {
 public:
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;
  ~task_group();

  // Creates a child from `callable(args...)` (callable and args are decay-
  // copied into the child's record and passed to it as lvalues, so the child
  // may refer to them for its whole life) and schedules it to start in the
  // loop's next batch. Returns true when scheduled. Returns false, starting
  // nothing, when the group (or anything enclosing it) is cancelled or the
  // group has finished: callable and arguments are then destroyed at once.
  // Throws what the callable throws synchronously, and std::bad_alloc.
  template <class F, class... Args>
  bool spawn(F&& callable, Args&&... args);

  // Cancels the body and every child; idempotent.
  void cancel() noexcept;
  bool cancel_called() const noexcept { return node_.cancelled; }

  // Children spawned and not yet finished.
  std::size_t size() const noexcept { return size_; }

 private:
  template <class Body>
  friend auto with_task_group(Body body);
  template <class T>
  friend class detail::group_awaiter;
  friend class detail::child_base;

  task_group() noexcept = default;
  void child_done(detail::child_base& c) noexcept;
  void record_error(std::exception_ptr e) noexcept;
  void note_error(std::exception_ptr e) noexcept;
  void cancel_all() noexcept;
  void cancel_children() noexcept;

  detail::group_node node_{{}, this};
  detail::intrusive_list<detail::child_base> children_;
  std::vector<std::exception_ptr> errors_;
  detail::group_runner* runner_ = nullptr;
  std::size_t size_ = 0;
  bool closed_ = false;
  bool any_cancelled_ = false;
};

namespace detail {

inline void child_base::bind(task_group& g, promise_base& p,
                             std::coroutine_handle<> frame) noexcept {
  p.attach(&g.node_, this);
  start_.target = frame;
}

inline std::coroutine_handle<> child_base::ended(promise_base& p) noexcept {
  static_cast<group_node*>(p.node)->group->child_done(*this);  // destroys this record
  return std::noop_coroutine();
}

// Awaits the body and the children of one group.
template <class T>
class group_awaiter final : public group_runner, public frame_parent {
 public:
  group_awaiter(task_group& g, task<T> body) noexcept : group_(&g), body_(std::move(body)) {}
  group_awaiter(const group_awaiter&) = delete;
  group_awaiter& operator=(const group_awaiter&) = delete;
  ~group_awaiter() { group_->runner_ = nullptr; }

  void await_set_parent(promise_base& p) noexcept { parent_node_ = p.node; }
  bool await_ready() const noexcept { return false; }

  std::coroutine_handle<> await_suspend(std::coroutine_handle<> h) noexcept {
    outer_ = h;
    group_->node_.parent = parent_node_;
    group_->runner_ = this;
    body_.handle().promise().attach(&group_->node_, this);
    return body_.handle();
  }

  // The body's frame ended.
  std::coroutine_handle<> child_ended() noexcept override {
    on_body_done();
    return std::noop_coroutine();
  }

  // The awaiting task is cancelled: cancel the body and every child. Once
  // the resumption is posted the answer is false: it will run.
  bool await_cancel(std::coroutine_handle<>) noexcept {
    if (resumption_ != resumption::none) return resumption_ == resumption::withdrawn;
    group_->cancel_children();
    cancel_body_now();
    // A stop callback's cancel() may have re-entered and decided already.
    if (resumption_ != resumption::none) return resumption_ == resumption::withdrawn;
    if (group_->size_ != 0 || !body_finished_) return false;
    if (!group_->errors_.empty()) {  // errors win: resume to throw them
      finish();
      return false;
    }
    resumption_ = resumption::withdrawn;
    group_->closed_ = true;
    return true;
  }

  bool await_must_resume() const noexcept {
    if (!group_->errors_.empty()) return true;
    bool cancelled_inside = (body_finished_ && body_outcome_.cancelled()) || group_->any_cancelled_;
    return !(cancelled_inside && effectively_cancelled(parent_node_));
  }

  T await_resume() {
    if (!group_->errors_.empty()) throw exception_group(std::move(group_->errors_));
    // cancelled_error when cancel() came before the body's value.
    if constexpr (!std::is_void_v<T>) return std::move(body_outcome_).value();
  }

  void await_describe(std::string& out, int depth) const {
    indent(out, depth);
    out += "task_group (" + std::to_string(group_->size_) + " children)\n";
    if (!body_finished_) describe_frame(body_.handle().promise(), out, depth + 1, "body");
    group_->children_.for_each(
        [&](child_base& c) { describe_frame(c.promise(), out, depth + 1, "child", c.started()); });
  }

  void on_children_done() noexcept override {
    if (body_finished_) finish();
  }

  void cancel_body() noexcept override {
    cancel_body_now();
    if (body_finished_ && group_->size_ == 0) finish();
  }

 private:
  void on_body_done() noexcept {
    body_outcome_ = body_.handle().promise().take_outcome();
    std::exception_ptr error = body_outcome_.error();
    release_body();
    if (error) group_->record_error(error);  // cancels the children
    if (group_->size_ == 0) finish();
  }

  void cancel_body_now() noexcept {
    if (!body_finished_ && body_.handle().promise().cancel()) release_body();  // outcome: cancelled
  }

  // The body's frame goes to the reaper: we may be inside its end, or
  // inside a cancellation that is still being delivered.
  void release_body() noexcept {
    body_finished_ = true;
    if (body_) destroy_later(body_.release());
  }

  // Every part is done: resume the awaiting task from the loop (never from
  // inside a cancel() call or a child's frame).
  void finish() noexcept {
    if (resumption_ != resumption::none) return;
    resumption_ = resumption::posted;
    group_->closed_ = true;
    resume_.target = outer_;
    event_loop::current()->post(resume_);
  }

  // none: still running. posted: resume_ is queued and will run.
  // withdrawn: await_cancel answered true; nothing will resume the group.
  enum class resumption : unsigned char { none, posted, withdrawn };

  task_group* group_;
  task<T> body_;
  std::coroutine_handle<> outer_;
  cancel_node* parent_node_ = nullptr;
  ready_node resume_;
  outcome<T> body_outcome_;  // cancelled until the body ends otherwise
  bool body_finished_ = false;
  resumption resumption_ = resumption::none;
};

}  // namespace detail

template <class F, class... Args>
bool task_group::spawn(F&& callable, Args&&... args) {
  if (closed_ || effectively_cancelled(&node_)) return false;
  auto* c = new detail::child<std::decay_t<F>, std::decay_t<Args>...>(
      *this, std::forward<F>(callable), std::forward<Args>(args)...);
  children_.push_back(*c);
  ++size_;
  event_loop::current()->post(c->start_);
  return true;
}

// Opens a task group, runs `body(group)` in it, and completes when the body
// and every child have finished: with the body's value, or by throwing an
// exception_group holding every error. `body` is a callable taking
// task_group& and returning task<T>; it is kept alive for the group's whole
// life. State the children share must outlive the body's locals: keep it in
// the spawned callable's captures/arguments, or outside the group.
// If the group's own cancel() ends a body that returns a value before it
// produced one, there is no value to give: the task throws cancelled_error
// (for task<void> bodies it simply completes).
template <class Body>
auto with_task_group(Body body) {
  using body_task = std::invoke_result_t<Body&, task_group&>;
  static_assert(detail::is_task<body_task>::value,
                "with_task_group: the body must return a grove::task<T>");
  using T = typename body_task::value_type;
  return [](Body b) -> task<T> {
    task_group group;
    co_return co_await detail::group_awaiter<T>(group, b(group));
  }(std::move(body));
}

}  // namespace grove
