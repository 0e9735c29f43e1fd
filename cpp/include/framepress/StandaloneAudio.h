// A source's audio encoded once, alone, for outputs whose video is made in parts: AAC in an MP4
// (`audio.mp4`) and the HLS audio track a whole source's outputs have (`hls/audio_0.m3u8`), on the
// timeline the video's parts use (zero at the first video frame), with the conversions and
// warnings of the ladder's audio.
#pragma once

#include <cstdint>
#include <string>

#include "framepress/options.h"

namespace fp {

class StandaloneAudio {
 public:
  // Writes the files under `out_dir`; an AudioResult with index -1 (and no files) when the source
  // has no audio stream the outputs can carry.
  static AudioResult write(const std::string& source, const std::string& out_dir, int64_t bitrate,
                           double segment_seconds);
};

}  // namespace fp
