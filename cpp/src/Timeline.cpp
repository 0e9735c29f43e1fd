#include "framepress/Timeline.h"

#include <algorithm>

namespace fp {

namespace {
// As FFmpeg's -dts_delta_threshold: a stream whose next timestamp is this much later than its
// last frame says has either paused or had its clock leap.
constexpr int64_t kForwardJumpUs = 10LL * AV_TIME_BASE;
// In containers whose clock does not jump, a gap is real (a paused screen recording, say), up to
// this: a leap of days is a broken muxer or a hostile file, and no output container can hold it.
constexpr int64_t kImplausibleGapUs = 3600LL * AV_TIME_BASE;
// It paused (a hole in the audio, say) when it comes back this close to where the other streams
// are: they went on, so the clock did not leap. Interleaving keeps streams far closer than this.
constexpr int64_t kStreamsApartUs = kForwardJumpUs / 2;
// A step back of more than this is the clock going back (a splice, a wrap); smaller ones are left
// to the decoder and the encoders' rising-timestamp guard.
constexpr int64_t kBackwardJumpUs = AV_TIME_BASE / 10;
// Timestamps beyond this (about 36,000 years) are garbage, and arithmetic on them could overflow.
constexpr int64_t kLimitUs = 1LL << 60;
}  // namespace

void Timeline::remove_jumps(AVPacket* pkt, AVRational tb) {
  for (int64_t* ts : {&pkt->pts, &pkt->dts}) {
    const int64_t us = *ts != AV_NOPTS_VALUE ? av_rescale_q(*ts, tb, AV_TIME_BASE_Q) : 0;
    if (us > kLimitUs || us < -kLimitUs) *ts = AV_NOPTS_VALUE;
  }
  const int64_t raw = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
  if (raw == AV_NOPTS_VALUE) return;

  int64_t dts = av_rescale_q(raw, tb, AV_TIME_BASE_Q) + shift_us_;
  auto known = clocks_.find(pkt->stream_index);
  if (known != clocks_.end()) {
    const StreamClock& clock = known->second;
    const int64_t delta = dts - clock.next_dts;
    // No stream goes back by itself, but one may pause while the others go on.
    const bool back = clock_may_jump_ && dts + kBackwardJumpUs < clock.last_dts;
    // Elsewhere only the video's own clock is judged: audio that leaps alone is the audio
    // transcoder's to handle (it runs on, with a warning).
    const bool judged = clock_may_jump_ || pkt->stream_index == video_stream_;
    const int64_t leap_us = clock_may_jump_ ? kForwardJumpUs : kImplausibleGapUs;
    const bool leap = judged && delta > leap_us && !near_other_streams(pkt->stream_index, dts);
    if (back || leap) {
      // The clock jumped: this packet goes where its stream would have gone on, and every stream
      // after it moves with it.
      shift_us_ -= delta;
      dts -= delta;
    }
  }
  const int64_t shift = av_rescale_q(shift_us_, AV_TIME_BASE_Q, tb);
  if (pkt->pts != AV_NOPTS_VALUE) pkt->pts += shift;
  if (pkt->dts != AV_NOPTS_VALUE) pkt->dts += shift;

  StreamClock& clock = clocks_[pkt->stream_index];
  // Without a duration the step from the last packet stands in for it. No packet lasts longer
  // than a jump (which also keeps the sums here far from overflowing).
  int64_t duration = pkt->duration > 0 ? av_rescale_q(pkt->duration, tb, AV_TIME_BASE_Q) : 0;
  if (duration <= 0 && known != clocks_.end())
    duration = dts > clock.last_dts ? dts - clock.last_dts : clock.next_dts - clock.last_dts;
  clock.last_dts = dts;
  clock.next_dts = dts + std::clamp<int64_t>(duration, 0, kForwardJumpUs);
}

bool Timeline::near_other_streams(int stream, int64_t dts) const {
  bool others = false;
  int64_t latest = 0;
  for (const auto& [index, clock] : clocks_) {
    if (index == stream) continue;
    latest = others ? std::max(latest, clock.last_dts) : clock.last_dts;
    others = true;
  }
  return others && dts - latest < kStreamsApartUs && latest - dts < kStreamsApartUs;
}

void Timeline::start_at(int64_t ts, AVRational tb) {
  origin_ = ts;
  origin_tb_ = tb;
  started_ = true;
}

int64_t Timeline::to_output(int64_t ts, AVRational tb) const {
  return ts - av_rescale_q(origin_, origin_tb_, tb);
}

}  // namespace fp
