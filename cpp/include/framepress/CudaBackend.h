// NVDEC decoding and scale_cuda scaling on the process's CUDA device; the scaled frames stay on
// the GPU for NVENC (Cuda mode) or come down once, at rung size, for CPU encoders (Hybrid mode).
// Frames FramePrep prepared on the CPU are scaled there, for CPU encoders only: NVENC opens on
// the GPU frames context of a rung's first frame.
#pragma once

#include "framepress/DeviceBackend.h"

namespace fp {

class CudaBackend : public DeviceBackend {
 public:
  // `nvenc`: the rungs encode with NVENC from GPU memory (Cuda mode); else with CPU encoders.
  explicit CudaBackend(bool nvenc) : nvenc_(nvenc) {}

  DeviceMode mode() const override { return nvenc_ ? DeviceMode::Cuda : DeviceMode::Hybrid; }
  AVBufferRef* decoder_device() const override;
  std::unique_ptr<FrameScaler> rung_scaler(int width, int height, AVRational time_base) const override;
  AVBufferRef* encoder_frames(const AVFrame* first_scaled) const override;

 private:
  bool nvenc_;
};

}  // namespace fp
