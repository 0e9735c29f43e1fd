#include "framepress/AudioRendition.h"

#include <cstdio>

namespace fp {

AudioRendition::AudioRendition(const std::string& hls_dir, std::string name, const AVCodecContext* enc,
                               double segment_seconds, AudioRenditionResult description)
    : enc_(enc), result_(std::move(description)) {
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%g", segment_seconds);
  result_.name = name;
  result_.playlist = hls_dir + "/" + name + ".m3u8";
  hls_ = std::make_unique<Muxer>(result_.playlist, "hls",
                                 std::map<std::string, std::string>{
                                     {"hls_time", seconds},
                                     {"hls_playlist_type", "vod"},
                                     {"hls_segment_type", "fmp4"},
                                     {"hls_fmp4_init_filename", name + "_init.mp4"},
                                     {"hls_segment_filename", hls_dir + "/" + name + "_%05d.m4s"},
                                     {"hls_flags", "independent_segments"}});
  stream_ = hls_->add_stream(enc);
  hls_->set_language(stream_, result_.language);
  hls_->write_header();
}

void AudioRendition::write(const AVPacket* pkt) { hls_->write(pkt, stream_, enc_->time_base); }

void AudioRendition::finish() { hls_->finish(); }

}  // namespace fp
