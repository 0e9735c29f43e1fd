// Writes encoded packets into one output: an MP4 file or an HLS fMP4 playlist with segments.
#pragma once

#include <map>
#include <string>

#include "framepress/ffmpeg.h"

namespace fp {

class Muxer {
 public:
  // `format`: "mp4" or "hls"; `options` are the muxer's private options.
  Muxer(const std::string& path, const char* format, const std::map<std::string, std::string>& options);
  ~Muxer();
  Muxer(const Muxer&) = delete;
  Muxer& operator=(const Muxer&) = delete;

  // Adds a stream carrying `enc`'s output; `display_matrix` (9 int32) keeps rotation metadata.
  int add_stream(const AVCodecContext* enc, const uint8_t* display_matrix = nullptr);
  // Tags a stream's language (ISO 639-2, as the source had it); nothing for an empty tag.
  void set_language(int stream, const std::string& language);
  void write_header();
  // Takes a reference to `pkt` (in `src_tb`) and writes it interleaved.
  void write(const AVPacket* pkt, int stream, AVRational src_tb);
  void finish();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  UniqueFormatOutput format_;
  std::map<std::string, std::string> options_;
  UniquePacket scratch_;
  bool header_written_ = false;
};

}  // namespace fp
