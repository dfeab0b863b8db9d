#include <grove/task_group.hpp>

namespace grove {

task_group::~task_group() {
  // Only reached with live children when a suspended group is destroyed
  // without being cancelled (e.g. a root dropped after a deadlock report).
  while (detail::child_base* c = children_.pop_front()) delete c;
}

void task_group::cancel() noexcept {
  if (node_.cancelled) return;
  detail::cancel_call call;  // the cancelled children's frames go before we return
  node_.cancelled = true;
  if (runner_ == nullptr) return;  // not running yet, or finished
  cancel_children();
  runner_->cancel_body();
}

void task_group::record_error(std::exception_ptr e) noexcept {
  note_error(std::move(e));
  cancel_all();
}

void task_group::note_error(std::exception_ptr e) noexcept {
  errors_.push_back(std::move(e));
  node_.cancelled = true;  // later spawns start nothing; the body unwinds
}

void task_group::cancel_all() noexcept {
  cancel_children();
  if (runner_ != nullptr) runner_->cancel_body();
}

// Children that are suspended (or never started) are finished at once and
// their records go to the reaper; a child that is running or waits on
// something that must finish first stays, and ends through child_done later.
void task_group::cancel_children() noexcept {
  detail::intrusive_list<detail::child_base> pending;
  pending.splice_back(children_);
  while (detail::child_base* c = pending.pop_front()) {
    if (c->started() && !c->promise().cancel()) {
      children_.push_back(*c);
      continue;
    }
    c->start_.unlink();
    --size_;
    any_cancelled_ = true;
    detail::delete_later(c);  // the frame first (its destructors run), then the callable
  }
}

void task_group::child_done(detail::child_base& c) noexcept {
  detail::task_state state = c.promise().state;
  std::exception_ptr error = c.promise().error;
  c.unlink();
  --size_;
  if (state == detail::task_state::cancelled) any_cancelled_ = true;
  // Recorded before the record goes: a destructor's cancel() that reaches
  // the group sees the error, and the group resumes to throw it.
  if (state == detail::task_state::error) note_error(std::move(error));
  {
    // Its parameters' and the callable's destructors may cancel: what they
    // cancel is reaped when this step is over, never under us.
    detail::reap_guard ending;
    delete &c;
  }
  if (state == detail::task_state::error) cancel_all();
  if (size_ == 0 && runner_ != nullptr) runner_->on_children_done();
}

}  // namespace grove
