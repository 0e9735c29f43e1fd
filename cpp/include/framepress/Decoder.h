// Decodes one stream with frame and slice threads; optionally on a hardware device (NVDEC).
#pragma once

#include "framepress/error.h"
#include "framepress/ffmpeg.h"

namespace fp {

class Decoder {
 public:
  // `hw_device`: a CUDA device context for NVDEC, or nullptr for software decoding.
  Decoder(const AVStream* stream, int threads, AVBufferRef* hw_device = nullptr);

  // Feeds one packet (nullptr flushes). Returns false when the decoder rejected the packet as
  // corrupt; the caller counts those and decides when a source is unusable.
  bool send(const AVPacket* pkt);
  // Next decoded frame into `frame`; false when more input is needed or the stream ended.
  bool receive(AVFrame* frame);

  AVCodecContext* ctx() const { return ctx_.get(); }
  bool on_hardware() const { return hw_; }
  int64_t corrupt_packets() const { return corrupt_; }

 private:
  // A failure on the GPU is worth a retry on the CPU, which then judges the input.
  ErrorKind failure_kind() const { return hw_ ? ErrorKind::Encode : ErrorKind::Input; }
  const char* failure_step() const { return hw_ ? "gpu decode" : "decode"; }
  static AVPixelFormat pick_hw_format(AVCodecContext* ctx, const AVPixelFormat* formats);
  UniqueCodecContext ctx_;
  bool hw_ = false;
  int64_t corrupt_ = 0;
};

}  // namespace fp
