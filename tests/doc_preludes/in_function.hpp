// Doc prelude `in_function`: the block is the body of an ordinary function
// (statements that run a loop, as a test does), with the stand-ins of
// namespace_scope.hpp in scope.
#pragma once

#include "namespace_scope.hpp"

#define DOC_BODY_BEGIN void doc_fragment() {
#define DOC_BODY_END }
