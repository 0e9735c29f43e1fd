#include "framepress/StandaloneAudio.h"

#include <filesystem>
#include <map>
#include <memory>

#include "framepress/AudioTracks.h"
#include "framepress/Demuxer.h"
#include "framepress/Muxer.h"
#include "framepress/Timeline.h"
#include "framepress/error.h"

namespace fp {

StandaloneAudioResult StandaloneAudio::write(const std::string& source, const std::string& out_dir, int64_t bitrate,
                                             double segment_seconds, const AudioPolicy& policy) {
  Demuxer demuxer(source, nullptr, /*probe=*/false);
  StandaloneAudioResult result;
  const AVStream* video = demuxer.video_stream();
  if (!video) throw Error(ErrorKind::Input, "open", source + " has no video stream");
  if (!demuxer.audio_stream()) return result;
  // Zero where the video's parts put it: the first video frame.
  Timeline timeline(demuxer.clock_may_jump(), demuxer.video_index());
  timeline.start_at(demuxer.video_start(), video->time_base);
  AudioTracks tracks(demuxer, policy, bitrate, timeline, result.audio);
  if (tracks.empty()) return result;

  std::error_code ec;
  if (!std::filesystem::create_directories(out_dir + "/hls", ec) && ec)
    throw Error(ErrorKind::Output, "prepare output", "cannot create " + out_dir + "/hls: " + ec.message());
  // The tracks as a whole source's MP4s carry them (see Rung), and their renditions as its HLS has them.
  Muxer mp4(out_dir + "/audio.mp4", "mp4", {{"movflags", "+faststart"}});
  const std::vector<const AVCodecContext*> encoders = tracks.encoders();
  const std::vector<std::string> languages = tracks.languages();
  std::vector<int> mp4_streams;
  for (size_t t = 0; t < encoders.size(); ++t) {
    mp4_streams.push_back(mp4.add_stream(encoders[t]));
    mp4.set_language(mp4_streams.back(), languages[t]);
  }
  mp4.write_header();
  tracks.open_renditions(out_dir + "/hls", segment_seconds);
  auto sink = [&](int track, const AVPacket* aac) {
    mp4.write(aac, mp4_streams[track], encoders[track]->time_base);
    tracks.write_rendition(track, aac);
  };
  auto push = [&](int track, const AVPacket* pkt) {
    try {
      tracks.push(track, pkt, sink);
    } catch (const Error& e) {
      if (e.kind != ErrorKind::Input) throw;  // a corrupt audio packet is skipped, as in a ladder
    }
  };

  UniquePacket pkt = make_packet();
  while (demuxer.read(pkt.get())) {
    // Video packets only move the timeline on (a clock that jumps is judged on every stream).
    timeline.remove_jumps(pkt.get(), demuxer.stream(pkt->stream_index)->time_base);
    if (const int track = tracks.track_of(pkt->stream_index); track >= 0) push(track, pkt.get());
    av_packet_unref(pkt.get());
  }
  for (int track = 0; track < static_cast<int>(encoders.size()); ++track) push(track, nullptr);
  mp4.finish();
  result.audio_renditions = tracks.finish_renditions();
  result.audio = tracks.report();
  return result;
}

}  // namespace fp
