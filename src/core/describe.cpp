#include <cxxabi.h>

#include <cstdlib>
#include <grove/errors.hpp>
#include <grove/task.hpp>
#include <grove/time.hpp>
#include <memory>
#include <string>

namespace grove {

namespace detail {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> s(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                           std::free);
  return status == 0 && s ? std::string(s.get()) : std::string(name);
}

void indent(std::string& out, int depth) {
  out.append(static_cast<std::size_t>(depth) * 2, ' ');
}

void describe_sleep(std::string& out, int depth, time_point deadline) {
  indent(out, depth);
  out += "sleep until " + std::to_string(deadline.time_since_epoch().count() / 1000) +
         " us on the loop clock\n";
}

}  // namespace detail

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return detail::demangle(typeid(x).name()) + ": " + x.what();
  } catch (...) {
    auto* t = abi::__cxa_current_exception_type();
    return t != nullptr ? detail::demangle(t->name()) : std::string("unknown exception");
  }
}

exception_group::exception_group(std::vector<std::exception_ptr> errors)
    : errors_(std::move(errors)) {
  summary_ = std::to_string(errors_.size()) + (errors_.size() == 1 ? " error" : " errors");
  const char* sep = ": ";
  for (const auto& e : errors_) {
    summary_ += sep;
    summary_ += describe_exception(e);
    sep = "; ";
  }
}

void exception_group::rethrow_if_single() const {
  if (errors_.size() == 1) std::rethrow_exception(errors_.front());
  throw *this;
}

}  // namespace grove
