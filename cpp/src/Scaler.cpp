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
  dst->buf[0] = av_buffer_pool_get(pool_.get());
  if (!dst->buf[0]) throw Error(ErrorKind::Encode, "scale", "out of memory");
  for (int i = 0; i < 4 && linesize_[i]; ++i) {
    dst->data[i] = dst->buf[0]->data + offsets_[i];
    dst->linesize[i] = linesize_[i];
  }
  dst->width = width_;
  dst->height = height_;
  dst->format = format_;
  return dst;
}

bool Scaler::full_range(const AVFrame* frame) {
  switch (frame->format) {
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
    case AV_PIX_FMT_YUVJ440P:
    case AV_PIX_FMT_YUVJ411P:
      return true;
    default:
      return frame->color_range == AVCOL_RANGE_JPEG;
  }
}

UniqueFrame Scaler::scale(const AVFrame* src) {
  const bool full = full_range(src);
  if (src->width == width_ && src->height == height_ && src->format == format_ && !full) return ref_frame(src);
  UniqueFrame dst = pooled_frame();
  check(av_frame_copy_props(dst.get(), src), ErrorKind::Encode, "scale", "cannot copy frame properties");
  dst->color_range = AVCOL_RANGE_MPEG;  // both scalers convert full range to limited, as encoders expect
  if (ZimgScaler::supports(src, dst.get())) {
    if (!zimg_ || !zimg_->built_for(src, full))
      zimg_ = std::make_unique<ZimgScaler>(src->width, src->height, full, width_, height_);
    zimg_->scale(src, dst.get());
    return dst;
  }
  const SwsInput input{src->width, src->height, src->format, full};
  if (!sws_ || !(input == sws_input_)) {
    sws_ = make_sws(input);
    sws_input_ = input;
  }
  sws_scale(sws_.get(), src->data, src->linesize, 0, src->height, dst->data, dst->linesize);
  if (rgb_input(src->format)) dst->colorspace = AVCOL_SPC_BT709;  // the matrix make_sws chose
  return dst;
}

bool Scaler::rgb_input(int format) {
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(format));
  return desc && (desc->flags & AV_PIX_FMT_FLAG_RGB);
}

// The range is set before the context is initialised: set afterwards, swscale ignores it for
// sources deeper than 8 bits, and a same-size conversion would take a plain copy path.
UniqueSws Scaler::make_sws(const SwsInput& in) const {
  UniqueSws sws(sws_alloc_context());
  if (!sws) throw Error(ErrorKind::Encode, "scale", "out of memory");
  SwsContext* c = sws.get();
  av_opt_set_int(c, "srcw", in.width, 0);
  av_opt_set_int(c, "srch", in.height, 0);
  av_opt_set_int(c, "src_format", in.format, 0);
  av_opt_set_int(c, "src_range", in.full_range, 0);
  av_opt_set_int(c, "dstw", width_, 0);
  av_opt_set_int(c, "dsth", height_, 0);
  av_opt_set_int(c, "dst_format", format_, 0);
  av_opt_set_int(c, "dst_range", 0, 0);
  av_opt_set_int(c, "sws_flags", SWS_BICUBIC, 0);
  const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(in.format));
  check(sws_init_context(c, nullptr, nullptr), ErrorKind::Encode, "scale",
        std::string("cannot convert from ") + (name ? name : "an unknown pixel format"));
  if (rgb_input(in.format)) {
    // RGB sources (PNG, FFV1, x264rgb) get HD's BT.709 matrix rather than swscale's BT.601 default.
    const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
    sws_setColorspaceDetails(c, sws_getCoefficients(SWS_CS_DEFAULT), 1, bt709, 0, 0, 1 << 16, 1 << 16);
  }
  return sws;
}

}  // namespace fp
