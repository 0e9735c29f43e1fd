// Joins the video of a rendition made in consecutive parts (each an MP4 on the source's timeline,
// from the same encoder settings) and the audio encoded once for the whole source (every track of
// it, with its language and default flag) into one faststart MP4, copying packets: nothing is
// encoded again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fp {

class PartJoiner {
 public:
  // `audio` may be empty (no audio). Returns the number of video packets written. Parts that
  // overlap or come out of order (decode timestamps that do not rise) are an OutputError.
  static int64_t join(const std::vector<std::string>& video_parts, const std::string& audio, const std::string& out);
};

}  // namespace fp
