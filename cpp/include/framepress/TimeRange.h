// The video frames of a time range of a source: those presenting in [start, end), in the video's
// time base, and the point in demux order after which no packet can matter to them. Adjacent
// ranges share their edge, so they partition the frames, none lost or doubled.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "framepress/ffmpeg.h"

namespace fp {

class TimeRange {
 public:
  static constexpr int64_t kOpenEnd = std::numeric_limits<int64_t>::max();

  TimeRange(int64_t start, int64_t end) : start_(start), end_(end) {}
  // [start, end) in seconds from `origin` (the first video frame), in `time_base`; end <= start:
  // to the end of the source. Both edges round the same way, so adjacent ranges share them.
  static TimeRange of_seconds(int64_t origin, AVRational time_base, double start, double end) {
    auto at = [&](double seconds) {
      return origin + av_rescale_q(static_cast<int64_t>(std::llround(seconds * AV_TIME_BASE)), AV_TIME_BASE_Q, time_base);
    };
    return TimeRange(at(start), end > start ? at(end) : kOpenEnd);
  }

  int64_t start() const { return start_; }
  int64_t end() const { return end_; }
  bool contains(int64_t pts) const { return pts != AV_NOPTS_VALUE && pts >= start_ && pts < end_; }

  // For every video packet in demux order: whether it and all after it are past the range. That is
  // from the first packet presenting after the first keyframe at or past the end: frames that
  // present before that keyframe (an open GOP's leading pictures) follow it in decode order and
  // need it, so it and they are still read.
  bool past_end(const AVPacket* pkt) {
    if (end_ == kOpenEnd || pkt->pts == AV_NOPTS_VALUE) return false;
    if (closing_key_ == AV_NOPTS_VALUE) {
      if ((pkt->flags & AV_PKT_FLAG_KEY) && pkt->pts >= end_) closing_key_ = pkt->pts;
      return false;
    }
    return pkt->pts > closing_key_;
  }

 private:
  int64_t start_, end_;
  int64_t closing_key_ = AV_NOPTS_VALUE;
};

}  // namespace fp
