#include "framepress/CpuBackend.h"

#include "framepress/Scaler.h"

namespace fp {

std::unique_ptr<FrameScaler> CpuBackend::rung_scaler(int width, int height, AVRational) const {
  return std::make_unique<Scaler>(width, height, AV_PIX_FMT_YUV420P);
}

}  // namespace fp
