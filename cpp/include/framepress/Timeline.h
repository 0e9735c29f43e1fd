// One output timeline for every stream of a source. Output timestamps start at zero on the first
// video frame and run on without the jumps of broadcast formats: a TS that starts at 10 h, a splice
// whose clock goes back, a clock that leaps forward. Video and audio go through the same mapping,
// so whatever the source's clock does, they stay in sync.
#pragma once

#include <cstdint>
#include <map>

#include "framepress/ffmpeg.h"

namespace fp {

class Timeline {
 public:
  // `clock_may_jump`: the container's timestamps may jump (AVFMT_TS_DISCONT: MPEG-TS, MPEG-PS,
  // Ogg), so jumps are detected and removed. Elsewhere a gap in the timestamps is a real gap and
  // stays, unless the video's clock leaps by more than an hour (`video_stream`: its index).
  Timeline(bool clock_may_jump, int video_stream) : clock_may_jump_(clock_may_jump), video_stream_(video_stream) {}

  // Demux stage, for every packet in file order: shifts its timestamps (in `tb`) by the jumps
  // removed so far, after checking whether the clock jumps at this packet.
  void remove_jumps(AVPacket* pkt, AVRational tb);

  // The (jump-free) timestamp of the first video frame, which becomes output zero.
  void start_at(int64_t ts, AVRational tb);
  bool started() const { return started_; }

  // A jump-free source timestamp as an output timestamp, both in `tb`. Only once started.
  int64_t to_output(int64_t ts, AVRational tb) const;

 private:
  // What a stream's next packet should say, from the last one (AV_TIME_BASE units, jump-free).
  struct StreamClock {
    int64_t last_dts = 0;
    int64_t next_dts = 0;
  };

  // Whether `dts` (jump-free) is where the streams other than `stream` have got to.
  bool near_other_streams(int stream, int64_t dts) const;

  bool clock_may_jump_;
  int video_stream_;
  int64_t shift_us_ = 0;  // added to source timestamps to remove the jumps so far
  bool started_ = false;
  int64_t origin_ = 0;  // in origin_tb_, so that frames in the video's own time base map exactly
  AVRational origin_tb_{1, 1};
  std::map<int, StreamClock> clocks_;  // by stream index
};

}  // namespace fp
