#include "framepress/SourceSpan.h"

#include <algorithm>

#include "framepress/Demuxer.h"
#include "framepress/TimeRange.h"
#include "framepress/error.h"

namespace fp {

ByteSpan SourceSpan::of_range(const std::string& path, double start, double end) {
  Demuxer demuxer(path, nullptr, /*probe=*/false);
  const AVStream* video = demuxer.video_stream();
  if (!video) throw Error(ErrorKind::Input, "open", path + " has no video stream");
  demuxer.drop_audio();
  TimeRange range = TimeRange::of_seconds(demuxer.video_start(), video->time_base, start, end);
  demuxer.seek_video(range.start());
  ByteSpan span{-1, 0, 0};
  UniquePacket pkt = make_packet();
  while (demuxer.read(pkt.get())) {
    const bool video_packet = pkt->stream_index == demuxer.video_index();
    const bool past = video_packet && range.past_end(pkt.get());
    if (video_packet && !past && pkt->pos >= 0) {
      span.first = span.first < 0 ? pkt->pos : std::min(span.first, pkt->pos);
      span.end = std::max(span.end, pkt->pos + pkt->size);
      ++span.packets;
    }
    av_packet_unref(pkt.get());
    if (past) break;
  }
  if (span.first < 0) span.first = 0;
  return span;
}

}  // namespace fp
