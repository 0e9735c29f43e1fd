#include "framepress/CudaBackend.h"

#include "framepress/CudaScaler.h"
#include "framepress/HwDevice.h"
#include "framepress/Scaler.h"
#include "framepress/error.h"

namespace fp {

namespace {

// A rung's scaler on the CUDA backend: NVDEC frames through scale_cuda; frames FramePrep brought
// to system memory (deinterlaced or tone-mapped there) through the CPU scaler, for CPU encoders.
class GpuRungScaler : public FrameScaler {
 public:
  GpuRungScaler(int width, int height, AVRational time_base, bool nvenc)
      : gpu_(width, height, time_base, /*download=*/!nvenc), cpu_(width, height, AV_PIX_FMT_YUV420P), nvenc_(nvenc) {}

  UniqueFrame scale(const AVFrame* src) override {
    if (src->format == AV_PIX_FMT_CUDA) return gpu_.scale(src);
    // The selection sends sources that need preparing to CPU encoders; one that starts needing it
    // mid-stream fails the GPU path (under auto the task reruns on the CPU).
    if (nvenc_)
      throw Error(ErrorKind::Gpu, "gpu scale",
                  "a frame prepared on the CPU mid-stream (deinterlaced or tone-mapped) cannot reach NVENC");
    return cpu_.scale(src);
  }

 private:
  CudaScaler gpu_;
  Scaler cpu_;
  bool nvenc_;
};

}  // namespace

AVBufferRef* CudaBackend::decoder_device() const { return HwDevice::cuda(); }

std::unique_ptr<FrameScaler> CudaBackend::rung_scaler(int width, int height, AVRational time_base) const {
  return std::make_unique<GpuRungScaler>(width, height, time_base, nvenc_);
}

AVBufferRef* CudaBackend::encoder_frames(const AVFrame* first_scaled) const {
  return nvenc_ ? first_scaled->hw_frames_ctx : nullptr;  // GpuRungScaler gives NVENC rungs GPU frames only
}

}  // namespace fp
