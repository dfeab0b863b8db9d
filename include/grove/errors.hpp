// The exceptions grove itself throws.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

namespace grove {

// Thrown by fail_after / fail_at when their own deadline cancelled the body.
class timeout_error : public std::runtime_error {
 public:
  timeout_error() : std::runtime_error("grove: operation timed out") {}
};

// Cancellation is never an exception inside tasks; this is thrown only where
// a value is demanded that cancellation prevented: outcome<T>::value() on a
// cancelled outcome, and with_task_group when the group's own cancel() ended
// a body that returns a value before it produced one.
class cancelled_error : public std::runtime_error {
 public:
  cancelled_error() : std::runtime_error("grove: the task was cancelled") {}
};

// Thrown by a virtual-clock loop when every task is blocked, no timer is
// pending and nothing external can wake them: the test would hang forever.
class deadlock_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Several errors that happened together (a task group's children, a body and
// its cleanup). Every error is kept, in the order it happened.
class exception_group : public std::exception {
 public:
  explicit exception_group(std::vector<std::exception_ptr> errors);

  const char* what() const noexcept override { return summary_.c_str(); }
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return errors_; }
  std::size_t size() const noexcept { return errors_.size(); }

  // True when some member (searching nested groups too) is an E.
  template <class E>
  bool contains() const noexcept {
    for (const auto& e : errors_) {
      try {
        std::rethrow_exception(e);
      } catch (const E&) {
        return true;
      } catch (const exception_group& g) {
        if (g.contains<E>()) return true;
      } catch (...) {
      }
    }
    return false;
  }

  // Rethrows the only member when there is exactly one; otherwise throws *this.
  [[noreturn]] void rethrow_if_single() const;

 private:
  std::vector<std::exception_ptr> errors_;
  std::string summary_;
};

// "what()" of any exception_ptr, for reports ("unknown exception" otherwise).
std::string describe_exception(const std::exception_ptr& e);

}  // namespace grove
