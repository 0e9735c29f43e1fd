// Opens untrusted media with only the protocols and demuxers the engine means to use.
#pragma once

#include <string>

#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class Demuxer {
 public:
  // `probe` reads into the streams (decoding a frame or more) to fill in what the header leaves
  // out, like the pixel format. Without it that happens only where the header does not describe
  // every stream well enough to decode it: an MP4's first keyframe can cost tens of milliseconds.
  explicit Demuxer(const std::string& path, CancelFlagPtr cancel = nullptr, bool probe = true);

  // Next packet of any stream; false at end of file. Throws InputError on read errors.
  bool read(AVPacket* pkt);

  AVFormatContext* ctx() const { return ctx_.get(); }
  int video_index() const { return video_index_; }
  int audio_index() const { return audio_index_; }
  AVStream* video_stream() const { return video_index_ >= 0 ? ctx_->streams[video_index_] : nullptr; }
  AVStream* audio_stream() const { return audio_index_ >= 0 ? ctx_->streams[audio_index_] : nullptr; }
  double duration_seconds() const;
  // Whether the container's clock may jump (MPEG-TS and PS, Ogg).
  bool clock_may_jump() const { return ctx_->iformat->flags & AVFMT_TS_DISCONT; }
  MediaInfo info() const;

  // The stream's display matrix (9 int32: 3x3, 16.16 fixed point), nullptr when it has none.
  static const uint8_t* display_matrix(const AVStream* st);
  // Display rotation in degrees (counter-clockwise, as FFmpeg reports it), 0 when none.
  static double rotation(const AVStream* st);

 private:
  static int interrupted(void* opaque);
  bool header_describes_streams() const;
  UniqueFormatInput ctx_;
  CancelFlagPtr cancel_;
  int video_index_ = -1;
  int audio_index_ = -1;
};

}  // namespace fp
