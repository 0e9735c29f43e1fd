// A source's audio encoded once, alone, for outputs whose video is made in parts: the tracks the
// ladder's audio policy keeps, as a whole source's transcode keeps them (AudioTracks), all in one
// MP4 (`audio.mp4`) and each in the HLS rendition of its own a whole source's outputs have
// (`hls/audio_<n>.m3u8`), on the timeline the video's parts use (zero at the first video frame).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framepress/options.h"

namespace fp {

struct StandaloneAudioResult {
  AudioResult audio;                                   // as TranscodeResult::audio says it
  std::vector<AudioRenditionResult> audio_renditions;  // one per track kept, in source order
};

class StandaloneAudio {
 public:
  // Writes the files under `out_dir`; an audio index of -1 (and no files) when the source has no
  // audio stream the outputs can carry.
  static StandaloneAudioResult write(const std::string& source, const std::string& out_dir, int64_t bitrate,
                                     double segment_seconds, const AudioPolicy& policy);
};

}  // namespace fp
