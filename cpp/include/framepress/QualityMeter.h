// PSNR and SSIM of one rendition against the source at the rendition's size, measured while the
// rung encodes: each packet is decoded again and compared with the frame the encoder was given
// (the source scaled for this rung), so nothing is read back from disk or decoded twice from the
// source. Numbers as FFmpeg's psnr and ssim filters compute them (all planes, weighted by size).
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
  void receive();
  void compare(const AVFrame* reference, const AVFrame* decoded);

  UniqueCodecContext dec_;
  UniqueFrame frame_;
  std::map<int64_t, UniqueFrame> pending_;  // by pts
  double squared_error_ = 0;   // summed over every pixel of every plane
  double samples_ = 0;
  double ssim_sum_ = 0;
  int64_t frames_ = 0;
  double seconds_ = 0;
};

}  // namespace fp
