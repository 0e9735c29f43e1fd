// One audio track in CMAF segments of its own (an HLS fMP4 playlist, which the DASH manifest also
// lists), so a player fetches the audio once whatever video rung it plays, and can pick a language.
#pragma once

#include <memory>
#include <string>

#include "framepress/Muxer.h"
#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class AudioRendition {
 public:
  // Writes `hls_dir/<name>.m3u8` with `<name>_init.mp4` and `<name>_NNNNN.m4s`, from `enc`'s packets.
  AudioRendition(const std::string& hls_dir, std::string name, const AVCodecContext* enc, double segment_seconds,
                 AudioRenditionResult description);

  void write(const AVPacket* pkt);
  void finish();
  const AudioRenditionResult& result() const { return result_; }

 private:
  const AVCodecContext* enc_;
  std::unique_ptr<Muxer> hls_;
  int stream_ = 0;
  AudioRenditionResult result_;
};

}  // namespace fp
