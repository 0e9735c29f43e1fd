#include "framepress/ZimgScaler.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "framepress/error.h"

namespace fp {

namespace {
constexpr uintptr_t kZimgAlign = 64;  // 64-byte mode (AVX-512 where the CPU has it)

std::string zimg_error() {
  char text[256] = {0};
  zimg_get_last_error(text, sizeof(text));
  return text;
}

zimg_image_format yuv420(int width, int height, bool full_range) {
  zimg_image_format f;
  zimg_image_format_default(&f, ZIMG_API_VERSION);
  f.width = static_cast<unsigned>(width);
  f.height = static_cast<unsigned>(height);
  f.pixel_type = ZIMG_PIXEL_BYTE;
  f.subsample_w = 1;
  f.subsample_h = 1;
  f.color_family = ZIMG_COLOR_YUV;
  f.depth = 8;
  f.pixel_range = full_range ? ZIMG_RANGE_FULL : ZIMG_RANGE_LIMITED;
  f.chroma_location = ZIMG_CHROMA_CENTER;
  return f;
}

bool aligned(const AVFrame* f) {
  for (int p = 0; p < 3; ++p)
    if (reinterpret_cast<uintptr_t>(f->data[p]) % kZimgAlign || f->linesize[p] % static_cast<int>(kZimgAlign))
      return false;
  return true;
}
}  // namespace

ZimgScaler::ZimgScaler(int src_width, int src_height, bool src_full_range, int dst_width, int dst_height)
    : src_width_(src_width), src_height_(src_height), src_full_range_(src_full_range) {
  const zimg_image_format src = yuv420(src_width, src_height, src_full_range),
                          dst = yuv420(dst_width, dst_height, false);
  zimg_graph_builder_params params;
  zimg_graph_builder_params_default(&params, ZIMG_API_VERSION);
  params.resample_filter = params.resample_filter_uv = ZIMG_RESIZE_BICUBIC;
  params.filter_param_a = params.filter_param_a_uv = 0.0;  // swscale's SWS_BICUBIC: B = 0, C = 0.6
  params.filter_param_b = params.filter_param_b_uv = 0.6;
  params.cpu_type = ZIMG_CPU_AUTO_64B;
  graph_.reset(zimg_filter_graph_build(&src, &dst, &params));
  if (!graph_) throw Error(ErrorKind::Encode, "scale", "cannot build zimg resize: " + zimg_error());
  size_t tmp_size = 0;
  if (zimg_filter_graph_get_tmp_size(graph_.get(), &tmp_size))
    throw Error(ErrorKind::Encode, "scale", "zimg: " + zimg_error());
  void* tmp = nullptr;
  if (posix_memalign(&tmp, kZimgAlign, std::max<size_t>(tmp_size, 1)))
    throw Error(ErrorKind::Encode, "scale", "cannot allocate zimg working memory");
  tmp_.reset(tmp);
}

bool ZimgScaler::supports(const AVFrame* src, const AVFrame* dst) {
  // zimg takes 4:2:0 only in whole chroma samples: odd sizes (a VP9 source can have them) go to swscale.
  const bool even = src->width % 2 == 0 && src->height % 2 == 0 && dst->width % 2 == 0 && dst->height % 2 == 0;
  return (src->format == AV_PIX_FMT_YUV420P || src->format == AV_PIX_FMT_YUVJ420P) &&
         dst->format == AV_PIX_FMT_YUV420P && even && aligned(src) && aligned(dst);
}

void ZimgScaler::scale(const AVFrame* src, AVFrame* dst) {
  zimg_image_buffer_const in;
  zimg_image_buffer out;
  in.version = out.version = ZIMG_API_VERSION;
  for (int p = 0; p < 3; ++p) {
    in.plane[p] = {src->data[p], src->linesize[p], ZIMG_BUFFER_MAX};
    out.plane[p] = {dst->data[p], dst->linesize[p], ZIMG_BUFFER_MAX};
  }
  in.plane[3] = {nullptr, 0, ZIMG_BUFFER_MAX};
  out.plane[3] = {nullptr, 0, ZIMG_BUFFER_MAX};
  if (zimg_filter_graph_process(graph_.get(), &in, &out, tmp_.get(), nullptr, nullptr, nullptr, nullptr))
    throw Error(ErrorKind::Encode, "scale", "zimg resize failed: " + zimg_error());
}

}  // namespace fp
