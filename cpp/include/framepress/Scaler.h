// Scales decoded frames to one rung's size and pixel format (bicubic, like FFmpeg's scale filter):
// with zimg where it takes the frames (8-bit 4:2:0, the common case, at half the cost), with
// swscale for everything else.
#pragma once

#include <memory>

#include "framepress/ZimgScaler.h"
#include "framepress/ffmpeg.h"

namespace fp {

class Scaler {
 public:
  Scaler(int width, int height, AVPixelFormat format);

  // A frame of the target size and format; the source itself (a new reference, no copy) when it
  // already matches. Timestamps and colour properties are carried over.
  UniqueFrame scale(const AVFrame* src);

 private:
  UniqueFrame pooled_frame();

  int width_, height_;
  AVPixelFormat format_;
  // Output frames come from a pool (freed once the encoder and the pool both let go): a fresh
  // megabyte-sized allocation per frame costs page faults and zeroing every time.
  UniqueBufferPool pool_;
  int linesize_[4] = {0};
  size_t offsets_[4] = {0};
  std::unique_ptr<ZimgScaler> zimg_;
  SwsContext* sws_ = nullptr;  // owned through holder_; sws_getCachedContext may replace it
  UniqueSws holder_;
};

}  // namespace fp
