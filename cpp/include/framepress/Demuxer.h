// Opens untrusted media with only the protocols and demuxers the engine means to use.
#pragma once

#include <string>

#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class Demuxer {
 public:
  Demuxer(const std::string& path, CancelFlagPtr cancel = nullptr);

  // Next packet of any stream; false at end of file. Throws InputError on read errors.
  bool read(AVPacket* pkt);

  AVFormatContext* ctx() const { return ctx_.get(); }
  int video_index() const { return video_index_; }
  int audio_index() const { return audio_index_; }
  AVStream* video_stream() const { return video_index_ >= 0 ? ctx_->streams[video_index_] : nullptr; }
  AVStream* audio_stream() const { return audio_index_ >= 0 ? ctx_->streams[audio_index_] : nullptr; }
  double duration_seconds() const;
  MediaInfo info() const;

  // Display rotation in degrees (counter-clockwise, as FFmpeg reports it), 0 when none.
  static double rotation(const AVStream* st);

 private:
  static int interrupted(void* opaque);
  UniqueFormatInput ctx_;
  CancelFlagPtr cancel_;
  int video_index_ = -1;
  int audio_index_ = -1;
};

}  // namespace fp
