#include "framepress/SourceRemux.h"

#include <algorithm>

#include "framepress/AudioTracks.h"
#include "framepress/CopiedStream.h"
#include "framepress/Demuxer.h"
#include "framepress/error.h"
#include "framepress/Timeline.h"
#include "framepress/ffmpeg.h"

namespace fp {

namespace {

std::string describe(const AVStream* st) {
  const char* type = av_get_media_type_string(st->codecpar->codec_type);
  return "stream " + std::to_string(st->index) + " (" + (type ? type : "unknown") + ", " +
         avcodec_get_name(st->codecpar->codec_id) + ")";
}

}  // namespace

RemuxResult SourceRemux::to_mp4(const std::string& source, const std::string& out, const AudioPolicy& policy) {
  Demuxer demuxer(source);
  if (!demuxer.video_stream()) throw Error(ErrorKind::Input, "remux", source + " has no video stream to copy");

  AVFormatContext* raw = nullptr;
  check(avformat_alloc_output_context2(&raw, nullptr, "mp4", out.c_str()), ErrorKind::Output, "remux",
        "cannot create " + out);
  UniqueFormatOutput format(raw);

  RemuxResult result;
  std::vector<std::string> policy_notes;
  const std::vector<int> kept_audio =
      AudioTracks::select(demuxer.audio_streams(), demuxer.audio_index(), policy, policy_notes);
  // By source stream index: its output stream, nullptr for one left out (and then not read).
  std::vector<AVStream*> to(demuxer.stream_count(), nullptr);
  for (int i = 0; i < demuxer.stream_count(); ++i) {
    AVStream* in = demuxer.stream(i);
    const bool is_video = i == demuxer.video_index();
    const bool is_kept_audio = std::count(kept_audio.begin(), kept_audio.end(), i) > 0;
    const bool holds = avformat_query_codec(format->oformat, in->codecpar->codec_id, FF_COMPLIANCE_NORMAL) == 1;
    if ((is_video || is_kept_audio) && !holds)
      throw Error(ErrorKind::Input, "remux", "MP4 cannot hold the source's " + describe(in));
    if (is_video || is_kept_audio) {
      to[i] = add_copied_stream(format.get(), in, "remux");
      result.audio_streams += is_kept_audio;
    } else {
      in->discard = AVDISCARD_ALL;
      result.left_out.push_back(describe(in) + (in->codecpar->codec_type == AVMEDIA_TYPE_AUDIO
                                                    ? ": the audio policy does not keep it"
                                                    : ": not video or audio the ladder uses"));
    }
  }

  check(avio_open(&format->pb, out.c_str(), AVIO_FLAG_WRITE), ErrorKind::Output, "remux", "cannot write " + out);
  // What the muxer refuses of the source's streams or packets is the source's: an InputError, and
  // the caller transcodes it whole, as the engine can.
  check(avformat_write_header(format.get(), nullptr), ErrorKind::Input, "remux", "cannot copy the streams of " + source);
  // The timestamps the engine's timeline sees: the source's own, less any jump of a broadcast
  // clock (which an MP4 cannot hold), so a time range selects the same frames in the copy.
  Timeline timeline(demuxer.clock_may_jump(), demuxer.video_index());
  UniquePacket pkt = make_packet();
  while (demuxer.read(pkt.get())) {
    AVStream* dest = pkt->stream_index < static_cast<int>(to.size()) ? to[pkt->stream_index] : nullptr;
    if (!dest) {  // a stream left out, or one that appeared after the header was read
      av_packet_unref(pkt.get());
      continue;
    }
    result.video_packets += pkt->stream_index == demuxer.video_index();
    timeline.remove_jumps(pkt.get(), demuxer.stream(pkt->stream_index)->time_base);
    // The muxer may have changed the stream's time base in its header.
    av_packet_rescale_ts(pkt.get(), demuxer.stream(pkt->stream_index)->time_base, dest->time_base);
    pkt->stream_index = dest->index;
    pkt->pos = -1;
    check(av_interleaved_write_frame(format.get(), pkt.get()), ErrorKind::Input, "remux",
          "cannot copy a packet of " + source + " into " + out);
  }
  check(av_write_trailer(format.get()), ErrorKind::Output, "remux", "cannot finish " + out);
  check(avio_closep(&format->pb), ErrorKind::Output, "remux", "cannot close " + out);
  if (result.video_packets == 0) throw Error(ErrorKind::Input, "remux", source + " has no video packets to copy");
  return result;
}

}  // namespace fp
