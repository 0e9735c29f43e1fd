// Scales NVDEC frames on the GPU (scale_cuda); hands them on in GPU memory for NVENC, or downloads
// them once at rung size for the CPU encoders (the hybrid path of GPUs without NVENC).
#pragma once

#include "framepress/ffmpeg.h"

namespace fp {

class CudaScaler {
 public:
  // `download`: true for CPU encoders (yuv420p in system memory), false for NVENC (nv12 on GPU).
  CudaScaler(int width, int height, AVRational time_base, bool download);

  // One scaled frame per CUDA frame in. The graph is built on the first frame, from its frames
  // context, and again whenever the input's size, format or frames context changes mid-stream.
  UniqueFrame scale(const AVFrame* src);

  // The filter chain this scaler runs, for logs and tests.
  static std::string chain(int width, int height, bool download);

 private:
  void build(const AVFrame* first);
  // Whether `src` differs from what the graph was built for.
  bool input_changed(const AVFrame* src) const;

  int width_, height_;
  AVRational time_base_;
  bool download_;
  UniqueFilterGraph graph_;
  AVFilterContext* source_ = nullptr;  // owned by graph_
  AVFilterContext* sink_ = nullptr;    // owned by graph_
  // The input the graph was built for.
  int in_width_ = 0, in_height_ = 0;
  AVPixelFormat in_format_ = AV_PIX_FMT_NONE;  // the format behind the GPU frames
  const void* in_frames_ = nullptr;             // the frames context, by identity
};

}  // namespace fp
