// Everything on the CPU: software decoding, zimg/swscale scaling, CPU encoders.
#pragma once

#include "framepress/DeviceBackend.h"

namespace fp {

class CpuBackend : public DeviceBackend {
 public:
  DeviceMode mode() const override { return DeviceMode::Cpu; }
  AVBufferRef* decoder_device() const override { return nullptr; }
  std::unique_ptr<FrameScaler> rung_scaler(int width, int height, AVRational time_base) const override;
  AVBufferRef* encoder_frames(const AVFrame*) const override { return nullptr; }
};

}  // namespace fp
