// Where a task's video work runs, chosen once per task (HwDevice::select, then ::confirm): the
// CPU backend or the CUDA one. Everything that differs between them is behind this interface: the
// device the decoder decodes on, how a rung scales frames, and the frames its encoder takes.
#pragma once

#include <memory>

#include "framepress/FrameScaler.h"
#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  // The backend for a mode: Cpu on the CPU; Hybrid and Cuda on the process's CUDA device.
  static std::unique_ptr<DeviceBackend> for_mode(DeviceMode mode);

  virtual DeviceMode mode() const = 0;
  // The hardware device the decoder decodes on; nullptr: software decoding.
  virtual AVBufferRef* decoder_device() const = 0;
  // A scaler to `width`x`height` for one rung, whose frames its encoder takes as they are.
  virtual std::unique_ptr<FrameScaler> rung_scaler(int width, int height, AVRational time_base) const = 0;
  // The GPU frames context a rung's encoder encodes from (NVENC), taken from the rung's first
  // scaled frame; nullptr: a CPU encoder from system memory.
  virtual AVBufferRef* encoder_frames(const AVFrame* first_scaled) const = 0;
};

}  // namespace fp
