// Where every rung puts its keyframes: on a fixed grid of gop_seconds from the first frame (output
// zero), to the nearest frame, whatever the frame rate does. One grid decides for all rungs, so
// their GOPs (and HLS segments) start on the same timestamps.
#pragma once

#include <optional>

namespace fp {

class KeyframeGrid {
 public:
  KeyframeGrid(double gop_seconds, double fps) : gop_(gop_seconds), half_frame_(fps > 0 ? 0.5 / fps : 0.02) {}

  // Moves the grid on to the frame at `t` seconds (rising from call to call) and says whether that
  // frame starts a GOP. The first frame always does and anchors the grid, at any timestamp.
  bool advance_to(double t) {
    if (next_ && t < *next_ - half_frame_) return false;
    if (!next_) next_ = t;
    while (*next_ <= t + half_frame_) *next_ += gop_;
    return true;
  }

 private:
  double gop_;
  double half_frame_;
  std::optional<double> next_;  // where the next GOP starts; none before the first frame
};

}  // namespace fp
