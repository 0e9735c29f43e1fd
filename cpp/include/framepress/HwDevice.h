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

// NVENC sessions held by one task, returned when it ends. Empty when the limit was reached.
class NvencLease {
 public:
  NvencLease() = default;
  explicit NvencLease(int sessions) : sessions_(sessions) {}
  NvencLease(NvencLease&& other) noexcept : sessions_(other.sessions_) { other.sessions_ = 0; }
  NvencLease& operator=(NvencLease&& other) noexcept;
  NvencLease(const NvencLease&) = delete;
  NvencLease& operator=(const NvencLease&) = delete;
  ~NvencLease();
  explicit operator bool() const { return sessions_ > 0; }

 private:
  void release();
  int sessions_ = 0;
};

class HwDevice {
 public:
  // Probed on first use and cached for the life of the process.
  static const HwCapabilities& capabilities();
  // The process-wide CUDA device, reused across tasks; nullptr without one.
  static AVBufferRef* cuda();

  // Takes `sessions` NVENC sessions under the process-wide limit (FRAMEPRESS_NVENC_SESSIONS,
  // default 16; consumer GPUs allow fewer), or an empty lease when they would exceed it.
  static NvencLease lease_nvenc(int sessions);
  static int nvenc_limit();

  // Pure selection: requested mode, what the hardware can do, the source codec and rung codecs.
  // Throws HardwareError when "cuda" is requested and cannot be honoured.
  static HwChoice choose(const std::string& requested, const HwCapabilities& caps, const std::string& source_codec,
                         const std::vector<std::string>& rung_codecs);
};

}  // namespace fp
