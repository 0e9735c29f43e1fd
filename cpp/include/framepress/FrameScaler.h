// Scales decoded (or prepared) frames to one rung's size, in the memory and format the rung's
// encoder reads. A DeviceBackend makes one per rung.
#pragma once

#include "framepress/ffmpeg.h"

namespace fp {

class FrameScaler {
 public:
  virtual ~FrameScaler() = default;
  // A frame of the rung's size; timestamps and colour properties carried over. Throws fp::Error.
  virtual UniqueFrame scale(const AVFrame* src) = 0;
};

}  // namespace fp
