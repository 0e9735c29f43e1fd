// Copies a source whose container has no sample index (MPEG-TS, Matroska) into an MP4, which has
// one, so that a worker can read just the bytes of a time range from the copy (SourceSpan). Packets
// are copied, not encoded, with the timestamps the source has (less the jumps of a broadcast clock,
// as the engine's Timeline removes them), so a time range of the copy selects the frames it selects
// in the source. The copy holds the video stream and the audio streams the
// ladder's policy keeps; the other streams (subtitles, data, other video) are left out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framepress/options.h"

namespace fp {

struct RemuxResult {
  int64_t video_packets = 0;
  int audio_streams = 0;
  std::vector<std::string> left_out;  // a sentence per source stream not in the copy, and why
};

class SourceRemux {
 public:
  // An InputError when the source has no video, when MP4 cannot hold its video or an audio stream
  // the policy keeps, or when the muxer refuses its packets (the caller then transcodes it whole).
  static RemuxResult to_mp4(const std::string& source, const std::string& out, const AudioPolicy& policy);
};

}  // namespace fp
