// The cancellation context a frame runs in: a chain of nodes from the
// innermost cancel scope out to the root. Checked at every suspension point.
#pragma once

namespace grove::detail {

// True while the running loop is in forced shutdown: shields no longer hold.
bool loop_forced() noexcept;

struct cancel_node {
  cancel_node* parent = nullptr;
  bool cancelled = false;
  bool shield = false;

  // A shield holds, except in forced shutdown.
  bool shield_holds() const noexcept { return shield && !loop_forced(); }
};

// Level-triggered: a frame is cancelled when any enclosing node up to the
// nearest shield is cancelled (forced shutdown sees through shields).
inline bool effectively_cancelled(const cancel_node* n) noexcept {
  for (; n != nullptr; n = n->parent) {
    if (n->cancelled) return true;
    if (n->shield_holds()) return false;
  }
  return false;
}

}  // namespace grove::detail
