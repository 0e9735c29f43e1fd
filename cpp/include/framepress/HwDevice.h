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
  bool scale_cuda = false;                 // FFmpeg has the scale_cuda filter every GPU path scales with
  std::vector<std::string> nvdec_codecs;   // source codecs FFmpeg can decode with NVDEC
  std::vector<std::string> nvenc_encoders; // NVENC encoders that opened on this GPU
};

// What the selection needs to know of the source's video stream; "" where the header does not say.
struct SourceVideo {
  std::string codec;    // FFmpeg's codec name: h264, hevc, vp9, av1, ...
  std::string profile;  // FFmpeg's profile name: "High 10", "Main 10", "Rext", ...
  std::string pix_fmt;  // the decoded pixel format: yuv420p, yuv420p10le, yuv422p, ...
  // What FramePrep does on the CPU for every frame: tone mapping (PQ or HLG transfer) and
  // deinterlacing (a field order); as far as the header says.
  bool hdr = false;
  bool interlaced = false;
};

struct HwChoice {
  DeviceMode mode = DeviceMode::Cpu;
  std::string reason;
  int nvenc_sessions = 0;  // NVENC encoders the task opens: one per planned rung in Cuda mode
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

  // The selection's view of a stream, from its codec parameters (and an MP4's configuration
  // record where FFmpeg has not filled them in without decoding).
  static SourceVideo describe(const AVCodecParameters* par);

  // Why NVDEC cannot decode this stream, from the profiles, bit depths and chroma formats NVDEC
  // decodes per codec; "" when it can (or nothing known of the stream rules it out).
  static std::string nvdec_refusal(const SourceVideo& source);

  // Pure selection: requested mode, what the hardware can do, the source and the codecs of the
  // rungs the task will encode (after the plan skipped those above the source). A source that
  // FramePrep tone-maps or deinterlaces (on the CPU: FFmpeg has no CUDA filters for it) is decoded
  // by NVDEC and then prepared, scaled and encoded on the CPU: hybrid, never cuda.
  // Throws HardwareError when cuda is requested and cannot be honoured.
  static HwChoice choose(HwRequest requested, const HwCapabilities& caps, const SourceVideo& source,
                         const std::vector<VideoCodec>& planned_codecs);
  // choose() on this process's hardware, with the NVENC sessions a cuda task needs taken into
  // `lease` (hybrid when the limit is reached).
  static HwChoice select(HwRequest requested, const SourceVideo& source, const std::vector<VideoCodec>& planned_codecs,
                         NvencLease& lease);

  // The choice once the decoder's first frame is out, in `decoded` format. FFmpeg decodes in
  // software whatever NVDEC refuses at run time (a chip without AV1 or 4:4:4, a size over its
  // limits, a profile the header did not name); the task then runs on the CPU and says so
  // (HardwareError when cuda was requested). `first`: the source as its first frame shows it
  // (as_decoded): a frame FramePrep must prepare where the header did not say so makes it hybrid.
  static HwChoice confirm(const HwChoice& chosen, HwRequest requested, const SourceVideo& first,
                          AVPixelFormat decoded);
  // `source` with what its first decoded frame adds: flagged interlaced, or an HDR transfer.
  static SourceVideo as_decoded(const SourceVideo& source, const AVFrame* first);
};

}  // namespace fp
