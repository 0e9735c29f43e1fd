#include "framepress/Scaler.h"

#include "framepress/error.h"

namespace fp {

namespace {
// Buffer alignment for the widest SIMD (AVX-512); luma rows twice that, so chroma rows get it too.
constexpr int kAlign = 64;
}

Scaler::Scaler(int width, int height, AVPixelFormat format) : width_(width), height_(height), format_(format) {}

UniqueFrame Scaler::pooled_frame() {
  if (!pool_) {
    check(av_image_fill_linesizes(linesize_, format_, FFALIGN(width_, 2 * kAlign)), ErrorKind::Encode, "scale",
          "unsupported output format");
    ptrdiff_t linesizes[4];
    size_t sizes[4];
    for (int i = 0; i < 4; ++i) linesizes[i] = linesize_[i];
    check(av_image_fill_plane_sizes(sizes, format_, height_, linesizes), ErrorKind::Encode, "scale",
          "unsupported output size");
    size_t total = 0;
    for (int i = 0; i < 4; ++i) {
      offsets_[i] = total;
      total += FFALIGN(sizes[i], kAlign);
    }
    pool_.reset(av_buffer_pool_init(total, nullptr));
    if (!pool_) throw Error(ErrorKind::Encode, "scale", "out of memory");
  }
  UniqueFrame dst = make_frame();
  if (dst) dst->buf[0] = av_buffer_pool_get(pool_.get());
  if (!dst || !dst->buf[0]) throw Error(ErrorKind::Encode, "scale", "out of memory");
  for (int i = 0; i < 4 && linesize_[i]; ++i) {
    dst->data[i] = dst->buf[0]->data + offsets_[i];
    dst->linesize[i] = linesize_[i];
  }
  dst->width = width_;
  dst->height = height_;
  dst->format = format_;
  return dst;
}

UniqueFrame Scaler::scale(const AVFrame* src) {
  if (src->width == width_ && src->height == height_ && src->format == format_) return ref_frame(src);
  UniqueFrame dst = pooled_frame();
  check(av_frame_copy_props(dst.get(), src), ErrorKind::Encode, "scale", "cannot copy frame properties");
  if (ZimgScaler::supports(src, dst.get())) {
    if (!zimg_ || !zimg_->built_for(src)) zimg_ = std::make_unique<ZimgScaler>(src->width, src->height, width_, height_);
    zimg_->scale(src, dst.get());
    return dst;
  }
  // Re-created only if the source's size or format changes mid-stream.
  sws_ = sws_getCachedContext(sws_, src->width, src->height, static_cast<AVPixelFormat>(src->format),
                              width_, height_, format_, SWS_BICUBIC, nullptr, nullptr, nullptr);
  holder_.release();
  holder_.reset(sws_);
  if (!sws_) throw Error(ErrorKind::Encode, "scale", "cannot create scaler");
  sws_scale(sws_, src->data, src->linesize, 0, src->height, dst->data, dst->linesize);
  return dst;
}

}  // namespace fp
