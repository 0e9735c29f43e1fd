// PSNR and SSIM of one rendition against the source at the rendition's size, measured while the
// rung encodes, for encoders that do not measure themselves (x264 does: EncoderLogStats): each
// packet is decoded again and compared with the frame the encoder was given (the source scaled for
// this rung), so nothing is read back from disk or decoded twice from the source. The comparison is FFmpeg's own psnr and ssim filters (their SIMD code, one thread, on
// the rung's thread), so the figures are theirs: all planes, weighted by size.
#pragma once

#include <cstdint>
#include <map>

#include "framepress/ffmpeg.h"

namespace fp {

class QualityMeter {
 public:
  // `encoder`: the rung's open encoder, whose packets `encoded` gets.
  explicit QualityMeter(const AVCodecContext* encoder);

  // A frame as it goes into the encoder (kept, by reference, until its decoded twin comes back).
  void reference(const AVFrame* frame);
  void encoded(const AVPacket* pkt);
  // No more packets: decodes what the decoder still holds.
  void finish();

  double psnr() const;       // dB over the whole rendition (from the mean squared error), 0 if none
  double ssim() const;       // mean of the frames' SSIM, 0 if none
  int64_t frames() const { return frames_; }
  double seconds() const { return seconds_; }

 private:
  void build_filters(int width, int height);
  void receive();
  // Hands a decoded frame and the reference it matches to the filters (both references move).
  void compare(AVFrame* reference, AVFrame* decoded);
  void collect();

  UniqueCodecContext dec_;
  UniqueFrame frame_, measured_;
  std::map<int64_t, UniqueFrame> pending_;  // by pts
  UniqueFilterGraph graph_;                 // [decoded][reference] -> psnr -> ssim -> measured
  AVFilterContext* decoded_in_ = nullptr;
  AVFilterContext* reference_in_ = nullptr;
  AVFilterContext* measured_out_ = nullptr;
  int64_t pairs_ = 0;          // frames handed to the filters (their timestamps)
  double mse_sum_ = 0;         // of the frames' mean squared error over all planes
  double ssim_sum_ = 0;
  int64_t frames_ = 0;
  double seconds_ = 0;
};

}  // namespace fp
