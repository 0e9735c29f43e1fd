#include "framepress/StandaloneAudio.h"

#include <filesystem>
#include <map>
#include <memory>

#include "framepress/AudioRendition.h"
#include "framepress/AudioTranscoder.h"
#include "framepress/Demuxer.h"
#include "framepress/Muxer.h"
#include "framepress/Timeline.h"
#include "framepress/error.h"

namespace fp {

AudioResult StandaloneAudio::write(const std::string& source, const std::string& out_dir, int64_t bitrate,
                                  double segment_seconds) {
  Demuxer demuxer(source, nullptr, /*probe=*/false);
  AudioResult report;
  const AVStream* video = demuxer.video_stream();
  if (!video) throw Error(ErrorKind::Input, "open", source + " has no video stream");
  if (!demuxer.audio_stream()) return report;
  // Zero where the video's parts put it: the first video frame.
  Timeline timeline(demuxer.clock_may_jump(), demuxer.video_index());
  timeline.start_at(demuxer.video_start(), video->time_base);
  auto audio = AudioTranscoder::open(demuxer.audio_stream(), bitrate, timeline, report);
  if (!audio) return report;

  std::error_code ec;
  if (!std::filesystem::create_directories(out_dir + "/hls", ec) && ec)
    throw Error(ErrorKind::Output, "prepare output", "cannot create " + out_dir + "/hls: " + ec.message());
  Muxer mp4(out_dir + "/audio.mp4", "mp4", {{"movflags", "+faststart"}});
  const int mp4_stream = mp4.add_stream(audio->encoder());
  mp4.write_header();
  // The same track a whole source's HLS has (see Transcoder), so the same playlists name it.
  AudioRenditionResult track;
  track.index = report.index;
  track.language = report.language;
  track.is_default = true;
  track.sample_rate = audio->encoder()->sample_rate;
  track.channels = audio->encoder()->ch_layout.nb_channels;
  AudioRendition hls(out_dir + "/hls", "audio_0", audio->encoder(), segment_seconds, track);
  const AVRational tb = audio->encoder()->time_base;
  auto sink = [&](const AVPacket* aac) {
    mp4.write(aac, mp4_stream, tb);
    hls.write(aac);
  };

  UniquePacket pkt = make_packet();
  while (demuxer.read(pkt.get())) {
    // Video packets only move the timeline on (a clock that jumps is judged on every stream).
    const AVStream* st = demuxer.stream(pkt->stream_index);
    timeline.remove_jumps(pkt.get(), st->time_base);
    if (pkt->stream_index == demuxer.audio_index()) {
      try {
        audio->push(pkt.get(), sink);
      } catch (const Error& e) {
        if (e.kind != ErrorKind::Input) throw;  // a corrupt audio packet is skipped, as in a ladder
      }
    }
    av_packet_unref(pkt.get());
  }
  audio->push(nullptr, sink);
  mp4.finish();
  hls.finish();
  AudioResult result = audio->report();
  // A split task's parts share one audio track: the best stream, as the policy "first" keeps.
  if (const size_t streams = demuxer.audio_streams().size(); streams > 1)
    result.warnings.insert(result.warnings.begin(), "the source has " + std::to_string(streams) +
                                                        " audio streams; only stream " +
                                                        std::to_string(result.index) + " is kept");
  return result;
}

}  // namespace fp
