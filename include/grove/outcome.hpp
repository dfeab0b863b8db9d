// outcome<T>: how a task ended — a value, an error, or cancelled.
#pragma once

#include <exception>
#include <grove/errors.hpp>
#include <optional>
#include <utility>

namespace grove {

template <class T = void>
class outcome {
 public:
  outcome() noexcept = default;  // cancelled
  static outcome from_value(T v) {
    outcome o;
    o.value_.emplace(std::move(v));
    return o;
  }
  static outcome from_error(std::exception_ptr e) noexcept {
    outcome o;
    o.error_ = std::move(e);
    return o;
  }

  bool has_value() const noexcept { return value_.has_value(); }
  bool has_error() const noexcept { return error_ != nullptr; }
  bool cancelled() const noexcept { return !has_value() && !has_error(); }

  // The value; rethrows the error; throws cancelled_error when cancelled.
  T& value() & {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  std::exception_ptr error() const noexcept { return error_; }

 private:
  void check() const {
    if (error_) std::rethrow_exception(error_);
    if (!value_) throw cancelled_error();
  }
  std::optional<T> value_;
  std::exception_ptr error_;
};

template <>
class outcome<void> {
 public:
  outcome() noexcept = default;  // cancelled
  static outcome from_value() noexcept {
    outcome o;
    o.done_ = true;
    return o;
  }
  static outcome from_error(std::exception_ptr e) noexcept {
    outcome o;
    o.error_ = std::move(e);
    return o;
  }

  bool has_value() const noexcept { return done_; }
  bool has_error() const noexcept { return error_ != nullptr; }
  bool cancelled() const noexcept { return !done_ && !error_; }

  // Returns when the task completed; rethrows its error; throws cancelled_error.
  void value() const {
    if (error_) std::rethrow_exception(error_);
    if (!done_) throw cancelled_error();
  }
  std::exception_ptr error() const noexcept { return error_; }

 private:
  bool done_ = false;
  std::exception_ptr error_;
};

}  // namespace grove
