// Scales decoded frames to one rung's size and pixel format (bicubic, like FFmpeg's scale filter):
// with zimg where it takes the frames (8-bit 4:2:0, the common case, at half the cost), with
// swscale for everything else. Output is always limited range: full-range sources (yuvj formats,
// or any format tagged full) are converted, never passed through or mislabelled.
#pragma once

#include <memory>

#include "framepress/FrameScaler.h"
#include "framepress/ZimgScaler.h"
#include "framepress/ffmpeg.h"

namespace fp {

class Scaler : public FrameScaler {
 public:
  Scaler(int width, int height, AVPixelFormat format);

  // A frame of the target size and format in limited range; the source itself (a new reference,
  // no copy) when it already matches. Timestamps and colour properties are carried over, the range
  // (and an RGB source's matrix) set to what the pixels now are.
  UniqueFrame scale(const AVFrame* src) override;

  static bool full_range(const AVFrame* frame);

 private:
  // What a swscale context was made for.
  struct SwsInput {
    int width = 0, height = 0, format = AV_PIX_FMT_NONE;
    bool full_range = false;
    bool operator==(const SwsInput& o) const {
      return width == o.width && height == o.height && format == o.format && full_range == o.full_range;
    }
  };

  UniqueFrame pooled_frame();
  UniqueSws make_sws(const SwsInput& in) const;
  static bool rgb_input(int format);

  int width_, height_;
  AVPixelFormat format_;
  // Output frames come from a pool (freed once the encoder and the pool both let go): a fresh
  // megabyte-sized allocation per frame costs page faults and zeroing every time.
  UniqueBufferPool pool_;
  int linesize_[4] = {0};
  size_t offsets_[4] = {0};
  std::unique_ptr<ZimgScaler> zimg_;
  UniqueSws sws_;  // re-made only if the source's size, format or range changes mid-stream
  SwsInput sws_input_;
};

}  // namespace fp
