// One rung's video encoder (libx264, libx265, libsvtav1) with ABR-aligned keyframes.
#pragma once

#include <string>

#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

struct EncoderSetup {
  int width = 0, height = 0;
  AVRational sample_aspect{0, 1};
  AVRational time_base{1, 25};
  AVRational frame_rate{25, 1};
  int threads = 0;
  double gop_seconds = 2.0;
  bool global_header = true;
  const AVFrame* color_from = nullptr;  // colour properties to signal, from the first frame
};

class Encoder {
 public:
  Encoder(const RungOptions& rung, const EncoderSetup& setup);

  // Feeds one frame (nullptr flushes). Throws EncodeError.
  void send(const AVFrame* frame);
  // Next packet into `pkt`; false when more input is needed or the stream ended.
  bool receive(AVPacket* pkt);

  AVCodecContext* ctx() const { return ctx_.get(); }
  // RFC 6381 codec string for HLS CODECS, e.g. "avc1.64001f".
  std::string codec_string() const;

  static const char* encoder_name(const std::string& codec);

 private:
  UniqueCodecContext ctx_;
  std::string codec_;
};

}  // namespace fp
