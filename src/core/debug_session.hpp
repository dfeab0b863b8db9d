// The loop's side of debug mode (src/core/debug.cpp): private to the core.
#pragma once

#include <cstdint>
#include <grove/debug.hpp>
#include <memory>

namespace grove::detail {

// Starts a session for the loop now running on this thread (its times count
// from now); nullptr when `o` asks for nothing.
debug_session_ptr start_debug_session(const debug_options& o);
trace_sink& sink_of(debug_session& s) noexcept;
// Whether callbacks must be timed, and the calls around one.
bool times_callbacks(const debug_session& s) noexcept;
void before_callback(debug_session& s) noexcept;
void after_callback(debug_session& s, std::int64_t ns) noexcept;

}  // namespace grove::detail
