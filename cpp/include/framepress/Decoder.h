// Decodes one stream with frame and slice threads; optionally on a hardware device (NVDEC).
#pragma once

#include <functional>
#include <string>

#include "framepress/error.h"
#include "framepress/ffmpeg.h"

namespace fp {

class Decoder {
 public:
  // `hw_device`: a CUDA device context for NVDEC, or nullptr for software decoding. Throws
  // InputError for a codec or a picture size the engine does not accept (MediaLimits.h).
  Decoder(const AVStream* stream, int threads, AVBufferRef* hw_device = nullptr);

  // Feeds one packet (nullptr: end of stream, flushes) and hands every frame it completes to
  // `on_frame` (the frame is unreferenced after the call). Packets the decoder rejects (whatever
  // error a corrupt packet makes it return) are counted, not thrown; the caller decides when a
  // source is unusable.
  void decode(const AVPacket* pkt, const std::function<void(AVFrame*)>& on_frame);

  AVCodecContext* ctx() const { return ctx_.get(); }
  bool on_hardware() const { return hw_; }
  int64_t corrupt_packets() const { return corrupt_; }
  // FFmpeg's word on the last rejected packet; empty while none was.
  const std::string& last_error() const { return last_error_; }

 private:
  // Hands on every frame ready now.
  void receive_all(const std::function<void(AVFrame*)>& on_frame);
  // Counts a packet the decoder refused; throws where that is not the packet's fault.
  void rejected(int ret, const char* what);
  // A failure on the GPU is worth a retry on the CPU, which then judges the input.
  ErrorKind failure_kind() const { return hw_ ? ErrorKind::Gpu : ErrorKind::Input; }
  const char* failure_step() const { return hw_ ? "gpu decode" : "decode"; }
  static AVPixelFormat pick_hw_format(AVCodecContext* ctx, const AVPixelFormat* formats);
  UniqueCodecContext ctx_;
  UniqueFrame frame_;
  bool hw_ = false;
  int64_t corrupt_ = 0;
  std::string last_error_;
};

}  // namespace fp
