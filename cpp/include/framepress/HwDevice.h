// The hardware seam: what this process's GPU can do (probed once), and which path a task takes.
#pragma once

#include <string>
#include <vector>

#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

struct HwCapabilities {
  bool cuda = false;
  std::string cuda_error;                  // why there is no CUDA device
  std::vector<std::string> nvdec_codecs;   // source codecs FFmpeg can decode with NVDEC
  std::vector<std::string> nvenc_encoders; // NVENC encoders that opened on this GPU
};

struct HwChoice {
  std::string mode;    // "cpu" | "hybrid" (NVDEC, CPU encoders) | "cuda" (NVDEC and NVENC)
  std::string reason;
};

class HwDevice {
 public:
  // Probed on first use and cached for the life of the process.
  static const HwCapabilities& capabilities();
  // The process-wide CUDA device, reused across tasks; nullptr without one.
  static AVBufferRef* cuda();

  // Pure selection: requested mode, what the hardware can do, the source codec and rung codecs.
  // Throws HardwareError when "cuda" is requested and cannot be honoured.
  static HwChoice choose(const std::string& requested, const HwCapabilities& caps, const std::string& source_codec,
                         const std::vector<std::string>& rung_codecs);
};

}  // namespace fp
