#include "framepress/CudaScaler.h"

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
}

#include <string>

#include "framepress/error.h"

namespace fp {

CudaScaler::CudaScaler(int width, int height, AVRational time_base, bool download)
    : width_(width), height_(height), time_base_(time_base), download_(download) {}

std::string CudaScaler::chain(int width, int height, bool download) {
  std::string size = "w=" + std::to_string(width) + ":h=" + std::to_string(height);
  if (download) return "scale_cuda=" + size + ":interp_algo=bicubic:format=yuv420p,hwdownload,format=yuv420p";
  return "scale_cuda=" + size + ":interp_algo=bicubic:format=nv12";
}

bool CudaScaler::input_changed(const AVFrame* src) const {
  const auto* frames = reinterpret_cast<const AVHWFramesContext*>(src->hw_frames_ctx->data);
  return src->width != in_width_ || src->height != in_height_ || frames->sw_format != in_format_ ||
         frames != in_frames_;
}

void CudaScaler::build(const AVFrame* first) {
  in_frames_ = nullptr;  // until the new graph is configured
  graph_.reset(avfilter_graph_alloc());
  if (!graph_) throw Error(ErrorKind::Gpu, "gpu scale", "out of memory");
  check(avfilter_graph_create_filter(&source_, avfilter_get_by_name("buffer"), "in",
                                     ("video_size=" + std::to_string(first->width) + "x" +
                                      std::to_string(first->height) + ":pix_fmt=" +
                                      std::to_string(static_cast<int>(AV_PIX_FMT_CUDA)) + ":time_base=" +
                                      std::to_string(time_base_.num) + "/" + std::to_string(time_base_.den))
                                         .c_str(),
                                     nullptr, graph_.get()),
        ErrorKind::Gpu, "gpu scale", "cannot create the frame source");
  AVBufferSrcParameters* params = av_buffersrc_parameters_alloc();
  if (!params) throw Error(ErrorKind::Gpu, "gpu scale", "out of memory");
  params->hw_frames_ctx = first->hw_frames_ctx;  // borrowed: the call takes its own reference
  int ret = av_buffersrc_parameters_set(source_, params);
  av_free(params);
  check(ret, ErrorKind::Gpu, "gpu scale", "cannot attach the GPU frames context");
  check(avfilter_graph_create_filter(&sink_, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr,
                                     graph_.get()),
        ErrorKind::Gpu, "gpu scale", "cannot create the frame sink");

  UniqueFilterInOut outputs(avfilter_inout_alloc()), inputs(avfilter_inout_alloc());
  if (!outputs || !inputs) throw Error(ErrorKind::Gpu, "gpu scale", "out of memory");
  outputs->name = av_strdup("in");
  outputs->filter_ctx = source_;
  inputs->name = av_strdup("out");
  inputs->filter_ctx = sink_;
  if (!outputs->name || !inputs->name) throw Error(ErrorKind::Gpu, "gpu scale", "out of memory");
  AVFilterInOut* in_list = inputs.release();
  AVFilterInOut* out_list = outputs.release();
  ret = avfilter_graph_parse_ptr(graph_.get(), chain(width_, height_, download_).c_str(), &in_list, &out_list, nullptr);
  inputs.reset(in_list);  // whatever the parser left unlinked
  outputs.reset(out_list);
  check(ret, ErrorKind::Gpu, "gpu scale", "cannot build " + chain(width_, height_, download_));
  check(avfilter_graph_config(graph_.get(), nullptr), ErrorKind::Gpu, "gpu scale", "cannot configure the GPU scaler");
  const auto* frames = reinterpret_cast<const AVHWFramesContext*>(first->hw_frames_ctx->data);
  in_width_ = first->width;
  in_height_ = first->height;
  in_format_ = frames->sw_format;
  in_frames_ = frames;
}

UniqueFrame CudaScaler::scale(const AVFrame* src) {
  if (!src->hw_frames_ctx) throw Error(ErrorKind::Gpu, "gpu scale", "a GPU frame without a frames context");
  if (!graph_ || input_changed(src)) build(src);
  UniqueFrame in = ref_frame(src);
  check(av_buffersrc_add_frame_flags(source_, in.get(), AV_BUFFERSRC_FLAG_KEEP_REF), ErrorKind::Gpu, "gpu scale",
        "cannot feed the GPU scaler");
  UniqueFrame out = make_frame();
  if (!out) throw Error(ErrorKind::Gpu, "gpu scale", "out of memory");
  check(av_buffersink_get_frame(sink_, out.get()), ErrorKind::Gpu, "gpu scale", "the GPU scaler returned no frame");
  out->pts = src->pts;
  return out;
}

}  // namespace fp
