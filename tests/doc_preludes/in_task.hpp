// Doc prelude `in_task`: the block is the body of a grove::task<void>
// coroutine (statements that may co_await), with the stand-ins of
// namespace_scope.hpp in scope.
#pragma once

#include "namespace_scope.hpp"

// clang-format off
#define DOC_BODY_BEGIN grove::task<void> doc_fragment() {
#define DOC_BODY_END co_return; }
// clang-format on
