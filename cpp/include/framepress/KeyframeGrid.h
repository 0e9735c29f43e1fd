// Where every rung puts its keyframes: on a fixed grid of gop_seconds from the first frame, to the
// nearest frame, whatever the frame rate does. One grid decides for all rungs, so their GOPs (and
// HLS segments) start on the same timestamps.
#pragma once

namespace fp {

class KeyframeGrid {
 public:
  KeyframeGrid(double gop_seconds, double fps) : gop_(gop_seconds), half_frame_(fps > 0 ? 0.5 / fps : 0.02) {}

  // Whether the frame at `t` seconds (rising from call to call) starts a GOP.
  bool is_key(double t) {
    if (next_ >= 0 && t < next_ - half_frame_) return false;
    if (next_ < 0) next_ = t;
    while (next_ <= t + half_frame_) next_ += gop_;
    return true;
  }

 private:
  double gop_;
  double half_frame_;
  double next_ = -1;
};

}  // namespace fp
