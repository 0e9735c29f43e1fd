// Which bytes of a source a time range reads: a worker given only those (and the container's
// header) transcodes the range exactly as from the whole file.
#pragma once

#include <cstdint>
#include <string>

namespace fp {

struct ByteSpan {
  int64_t first = 0;   // offset of the first byte read
  int64_t end = 0;     // one past the last byte read
  int64_t packets = 0; // video packets in it
};

class SourceSpan {
 public:
  // The video packets a transcode of [start, end) seconds reads, from the keyframe before start
  // on (see Transcoder's range): their first and last bytes in the file. Needs the whole file.
  static ByteSpan of_range(const std::string& path, double start, double end);
};

}  // namespace fp
