// Where every rung puts its keyframes: on a fixed grid of gop_seconds from the first frame, each
// grid point's keyframe being the first frame at or after it, whatever the frame rate does. One
// grid decides for all rungs, so their GOPs (and HLS segments) start on the same timestamps.
//
// At or after, never the frame nearest: FFmpeg's HLS muxer cuts a segment at the first keyframe
// whose pts, counted from the first packet, reaches the next multiple of hls_time, compared
// exactly in integer timestamps (an audio packet written first, before zero, only moves that point
// earlier). A keyframe even a tick before a grid point may get no cut there, its segment running on
// to the next keyframe (4 s where 2 s was asked). The grid compares the same way: integer pts
// against grid points in microseconds, as the muxer holds hls_time.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

extern "C" {
#include <libavutil/avutil.h>
#include <libavutil/mathematics.h>
}

namespace fp {

class KeyframeGrid {
 public:
  explicit KeyframeGrid(double gop_seconds)
      : gop_us_(std::max<int64_t>(1, std::llround(gop_seconds * AV_TIME_BASE))) {}

  // Anchors the grid at `pts` before any frame: a part of a source keeps the whole source's grid.
  void anchor_at(int64_t pts) {
    anchor_ = pts;
    next_us_ = 0;
  }

  // Moves the grid on to the frame at `pts` (rising from call to call) and says whether that frame
  // starts a GOP. The first frame always does and anchors the grid, at any timestamp.
  bool advance_to(int64_t pts, AVRational time_base) {
    if (!anchor_) {
      anchor_ = pts;
      next_us_ = gop_us_;
      return true;
    }
    if (!reached(pts, time_base)) return false;
    // A gap in the frames skips grid points: jump close in one step (a timestamp leap of years would
    // otherwise step one GOP at a time for minutes), then settle with the exact comparison.
    const int64_t elapsed_us = av_rescale_q_rnd(pts - *anchor_, time_base, AV_TIME_BASE_Q, AV_ROUND_DOWN);
    next_us_ = std::max(next_us_, (elapsed_us / gop_us_ - 1) * gop_us_);
    while (reached(pts, time_base)) next_us_ += gop_us_;
    return true;
  }

 private:
  bool reached(int64_t pts, AVRational time_base) const {
    return av_compare_ts(pts - *anchor_, time_base, next_us_, AV_TIME_BASE_Q) >= 0;
  }

  int64_t gop_us_;
  int64_t next_us_ = 0;          // the next grid point, from the anchor
  std::optional<int64_t> anchor_;  // the first frame's pts; none before it
};

}  // namespace fp
