// One rung's video encoder (libx264, libx265, libsvtav1) with ABR-aligned keyframes.
#pragma once

#include <map>
#include <string>

#include "framepress/error.h"
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
  const AVFrame* color_from = nullptr;  // colour properties to signal: the rung's first scaled frame
  AVBufferRef* nvenc_frames = nullptr;  // GPU frames context: encode with NVENC from GPU memory
  // libx264 measures PSNR and SSIM of its own reconstruction (logged when it closes; the
  // bitstream is the same) where self_measures() says it can.
  bool measure_quality = false;
  // The encode picks up a stream mid-way (a later part of a split source). x264's rate cap plans to
  // keep its buffer at least half full, so a whole encode capped at its average rate runs about
  // half full once past its start; a part starting at x264's default of 90 % full spent the
  // difference again (1080p at 3 Mb/s over a 30 s part: +2.4 % bits; starting half full: +0.02 %).
  bool mid_stream = false;
};

class Encoder {
 public:
  Encoder(const RungOptions& rung, const EncoderSetup& setup);

  // Feeds one frame (nullptr flushes). Throws EncodeError.
  void send(const AVFrame* frame);
  // Next packet into `pkt`; false when more input is needed or the stream ended.
  bool receive(AVPacket* pkt);

  AVCodecContext* ctx() const { return ctx_.get(); }
  // Whether this encoder measures its own quality (libx264 on the CPU): see EncoderLogStats.
  static bool self_measures(VideoCodec codec, bool nvenc) { return codec == VideoCodec::H264 && !nvenc; }
  // RFC 6381 codec string for HLS CODECS, e.g. "avc1.64001f".
  std::string codec_string() const;

  // The CPU encoder (libx264, libx265, libsvtav1) and the NVENC one for a codec.
  static const char* encoder_name(VideoCodec codec);
  static std::string nvenc_encoder_name(VideoCodec codec);
  // NVENC private options for a rung: x264-style presets mapped onto p1..p7, VBR with the rung's
  // rate cap (or constant quality), fixed closed GOPs without scene cuts.
  static std::map<std::string, std::string> nvenc_options(const RungOptions& rung);

 private:
  UniqueCodecContext ctx_;
  VideoCodec codec_;
  std::string step_ = "encode";  // "gpu encode" on NVENC
  ErrorKind failure_kind_ = ErrorKind::Encode;  // Gpu on NVENC: retried on the CPU
};

}  // namespace fp
