#include "framepress/Scaler.h"

#include "framepress/error.h"

namespace fp {

Scaler::Scaler(int width, int height, AVPixelFormat format) : width_(width), height_(height), format_(format) {}

UniqueFrame Scaler::scale(const AVFrame* src) {
  if (src->width == width_ && src->height == height_ && src->format == format_) return ref_frame(src);
  // Re-created only if the source's size or format changes mid-stream.
  sws_ = sws_getCachedContext(sws_, src->width, src->height, static_cast<AVPixelFormat>(src->format),
                              width_, height_, format_, SWS_BICUBIC, nullptr, nullptr, nullptr);
  holder_.release();
  holder_.reset(sws_);
  if (!sws_) throw Error(ErrorKind::Encode, "scale", "cannot create scaler");
  UniqueFrame dst = make_frame();
  dst->width = width_;
  dst->height = height_;
  dst->format = format_;
  check(av_frame_get_buffer(dst.get(), 0), ErrorKind::Encode, "scale", "cannot allocate frame");
  check(av_frame_copy_props(dst.get(), src), ErrorKind::Encode, "scale", "cannot copy frame properties");
  sws_scale(sws_, src->data, src->linesize, 0, src->height, dst->data, dst->linesize);
  return dst;
}

}  // namespace fp
