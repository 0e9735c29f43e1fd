#include "framepress/HwDevice.h"

extern "C" {
#include <libavfilter/avfilter.h>
}

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "framepress/Encoder.h"
#include "framepress/FramePrep.h"
#include "framepress/error.h"

namespace fp {

namespace {

// Intentionally never freed: a static's destructor would release the CUDA context at exit, after
// the driver may already have unloaded (and while a detached thread might still use it). The OS
// reclaims the context with the process.
AVBufferRef* g_cuda = nullptr;
std::mutex g_nvenc_mu;
int g_nvenc_in_use = 0;
HwCapabilities g_caps;
std::once_flag g_once;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// What NVDEC decodes of each codec (NVIDIA's decode support matrix, as far as FFmpeg's NVDEC
// hwaccels reach): 4:2:2 never; 4:4:4 only in HEVC (Turing and later); AV1 only from Ampere on.
// Chip generations are not told apart here: FFmpeg asks the driver when the decoder opens, and
// HwDevice::confirm reports what it answered.
struct NvdecSupport {
  const char* codec;
  int max_depth;                            // luma bits
  bool yuv444;                              // 4:4:4 as well as 4:2:0
  const char* decodes;                      // for messages
  std::vector<std::string> refused_profiles;  // whatever their pixel format
};

const NvdecSupport kNvdec[] = {
    {"h264", 8, false, "8-bit 4:2:0 only",
     {"High 10", "High 10 Intra", "High 4:2:2", "High 4:2:2 Intra", "High 4:4:4", "High 4:4:4 Predictive",
      "High 4:4:4 Intra", "CAVLC 4:4:4"}},
    {"hevc", 12, true, "8- to 12-bit 4:2:0 and 4:4:4", {}},
    {"vp9", 12, false, "8- to 12-bit 4:2:0 (profiles 0 and 2)", {"Profile 1", "Profile 3"}},
    {"av1", 10, false, "8- and 10-bit 4:2:0 (Main profile)", {"High", "Professional"}},
    {"mpeg2video", 8, false, "8-bit 4:2:0", {"4:2:2"}},
};

bool nvdec_supports(const AVCodec* dec) {
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* cfg = avcodec_get_hw_config(dec, i);
    if (!cfg) return false;
    if (cfg->device_type == AV_HWDEVICE_TYPE_CUDA && (cfg->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX))
      return true;
  }
}

// An NVENC encoder counts only if it opens: datacenter GPUs such as the H100 have none.
bool nvenc_opens(const char* name) {
  const AVCodec* codec = avcodec_find_encoder_by_name(name);
  if (!codec) return false;
  UniqueCodecContext ctx(avcodec_alloc_context3(codec));
  if (!ctx) return false;
  ctx->width = 256;
  ctx->height = 256;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->time_base = AVRational{1, 25};
  return avcodec_open2(ctx.get(), codec, nullptr) >= 0;
}

void probe() {
  // Every GPU path scales with scale_cuda; an FFmpeg built without CUDA filters has none.
  g_caps.scale_cuda = avfilter_get_by_name("scale_cuda") != nullptr;
  AVBufferRef* dev = nullptr;
  int ret = av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_CUDA, nullptr, nullptr, 0);
  if (ret < 0) {
    g_caps.cuda_error = "no CUDA device: " + ffmpeg_error_text(ret);
    return;
  }
  g_cuda = dev;
  g_caps.cuda = true;
  for (AVCodecID id : {AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1, AV_CODEC_ID_VP9, AV_CODEC_ID_MPEG2VIDEO}) {
    const AVCodec* dec = avcodec_find_decoder(id);
    if (dec && nvdec_supports(dec)) g_caps.nvdec_codecs.push_back(avcodec_get_name(id));
  }
  for (const char* name : {"h264_nvenc", "hevc_nvenc", "av1_nvenc"})
    if (nvenc_opens(name)) g_caps.nvenc_encoders.push_back(name);
  take_ffmpeg_log();  // an encoder that did not open is an answer, not an error
}

// A planar YUV (or gray) format's name from its bit depth and chroma format (0 gray, 1 4:2:0,
// 2 4:2:2, 3 4:4:4), as FFmpeg names it; "" for what the records cannot hold.
std::string pix_fmt_name(int depth, int chroma) {
  static const char* const base[] = {"gray", "yuv420p", "yuv422p", "yuv444p"};
  if (chroma < 0 || chroma > 3 || depth < 8) return "";
  std::string name = std::string(base[chroma]) + (depth == 8 ? "" : std::to_string(depth) + "le");
  return av_get_pix_fmt(name.c_str()) == AV_PIX_FMT_NONE ? "" : name;
}

// Profile, bit depth and chroma format from the decoder configuration record an MP4 sample entry
// carries (avcC, hvcC, av1C): the engine reads MP4 headers without decoding a frame, and FFmpeg
// leaves the codec parameters' profile and format unset then.
void read_config_record(AVCodecID id, const uint8_t* d, int size, SourceVideo& s) {
  int profile = FF_PROFILE_UNKNOWN, depth = 0, chroma = -1;
  if (id == AV_CODEC_ID_H264 && size >= 7 && d[0] == 1) {
    // profile_idc, with FFmpeg's constrained and intra variants from the constraint flags.
    const int idc = d[1];
    profile = idc;
    if (idc == 66 && (d[2] & 0x40)) profile |= FF_PROFILE_H264_CONSTRAINED;
    if ((idc == 110 || idc == 122 || idc == 244) && (d[2] & 0x10)) profile |= FF_PROFILE_H264_INTRA;
    // Past the parameter sets, the High profiles' extension gives chroma format and bit depth.
    int pos = 6;
    for (int n = d[5] & 0x1f; n > 0 && pos + 2 <= size; --n) pos += 2 + (d[pos] << 8 | d[pos + 1]);
    if (pos < size)
      for (int n = d[pos++]; n > 0 && pos + 2 <= size; --n) pos += 2 + (d[pos] << 8 | d[pos + 1]);
    if (idc == 100 || idc == 110 || idc == 122 || idc == 144 || idc == 244) {
      if (pos + 2 <= size) {
        chroma = d[pos] & 3;
        depth = (d[pos + 1] & 7) + 8;
      }
    } else if (idc == 66 || idc == 77 || idc == 88) {
      chroma = 1;  // Baseline, Main and Extended are 8-bit 4:2:0
      depth = 8;
    }
  } else if (id == AV_CODEC_ID_HEVC && size >= 23 && d[0] == 1) {
    profile = d[1] & 0x1f;
    chroma = d[16] & 3;
    depth = (d[17] & 7) + 8;
  } else if (id == AV_CODEC_ID_AV1 && size >= 4 && d[0] == 0x81) {
    profile = d[1] >> 5;
    const bool high = d[2] & 0x40, twelve = d[2] & 0x20, mono = d[2] & 0x10, ssx = d[2] & 0x08, ssy = d[2] & 0x04;
    depth = high ? (twelve ? 12 : 10) : 8;
    chroma = mono ? 0 : ssx && ssy ? 1 : ssx ? 2 : 3;
  }
  if (s.profile.empty() && profile != FF_PROFILE_UNKNOWN)
    if (const char* name = avcodec_profile_name(id, profile)) s.profile = name;
  if (s.pix_fmt.empty()) s.pix_fmt = pix_fmt_name(depth, chroma);
}

// What FramePrep does to this source on the CPU, for reasons; "" when nothing.
std::string cpu_preparation(const SourceVideo& s) {
  if (s.hdr && s.interlaced) return "deinterlacing and HDR tone mapping";
  if (s.hdr) return "HDR tone mapping";
  if (s.interlaced) return "deinterlacing";
  return "";
}

HwChoice prepared_on_cpu(const SourceVideo& s) {
  return {DeviceMode::Hybrid, "NVDEC decode; " + cpu_preparation(s) +
                                  " on the CPU (FFmpeg has no CUDA filter for it), and so scaling and CPU encoders"};
}

std::string describe_stream(const SourceVideo& s) {
  std::string what = s.codec;
  if (!s.profile.empty()) what += " " + s.profile;
  if (!s.pix_fmt.empty()) what += " " + s.pix_fmt;
  return what;
}

}  // namespace

const HwCapabilities& HwDevice::capabilities() {
  std::call_once(g_once, probe);
  return g_caps;
}

int HwDevice::nvenc_limit() {
  const char* env = std::getenv("FRAMEPRESS_NVENC_SESSIONS");
  int limit = env ? std::atoi(env) : 16;
  return limit > 0 ? limit : 16;
}

NvencLease HwDevice::lease_nvenc(int sessions) {
  std::lock_guard<std::mutex> lock(g_nvenc_mu);
  if (sessions <= 0 || g_nvenc_in_use + sessions > nvenc_limit()) return NvencLease();
  g_nvenc_in_use += sessions;
  return NvencLease(sessions);
}

NvencLease& NvencLease::operator=(NvencLease&& other) noexcept {
  if (this != &other) {
    release();
    sessions_ = other.sessions_;
    other.sessions_ = 0;
  }
  return *this;
}

NvencLease::~NvencLease() { release(); }

void NvencLease::release() {
  if (sessions_ <= 0) return;
  std::lock_guard<std::mutex> lock(g_nvenc_mu);
  g_nvenc_in_use -= sessions_;
  sessions_ = 0;
}

AVBufferRef* HwDevice::cuda() {
  capabilities();
  return g_cuda;
}

SourceVideo HwDevice::describe(const AVCodecParameters* par) {
  SourceVideo s;
  s.codec = avcodec_get_name(par->codec_id);
  if (const char* profile = avcodec_profile_name(par->codec_id, par->profile)) s.profile = profile;
  if (const char* fmt = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format))) s.pix_fmt = fmt;
  if (s.profile.empty() || s.pix_fmt.empty()) read_config_record(par->codec_id, par->extradata, par->extradata_size, s);
  s.hdr = FramePrep::hdr_transfer(enum_value(par->color_trc));
  s.interlaced = FramePrep::interlaced_order(enum_value(par->field_order));
  return s;
}

SourceVideo HwDevice::as_decoded(const SourceVideo& source, const AVFrame* first) {
  SourceVideo s = source;
  s.hdr = s.hdr || FramePrep::hdr_transfer(enum_value(first->color_trc));
  s.interlaced = s.interlaced || first->interlaced_frame;
  return s;
}

std::string HwDevice::nvdec_refusal(const SourceVideo& source) {
  const auto* support = std::find_if(std::begin(kNvdec), std::end(kNvdec),
                                     [&](const NvdecSupport& n) { return source.codec == n.codec; });
  if (support == std::end(kNvdec)) return "NVDEC cannot decode " + source.codec;
  const std::string refused = "NVDEC cannot decode " + describe_stream(source) + " (" + source.codec + ": " +
                              support->decodes + ")";
  if (contains(support->refused_profiles, source.profile)) return refused;
  if (!source.pix_fmt.empty()) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(av_get_pix_fmt(source.pix_fmt.c_str()));
    if (!d || d->nb_components < 3 || (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL))) return refused;
    const bool yuv420 = d->log2_chroma_w == 1 && d->log2_chroma_h == 1;
    const bool yuv444 = d->log2_chroma_w == 0 && d->log2_chroma_h == 0;
    if (d->comp[0].depth > support->max_depth || !(yuv420 || (yuv444 && support->yuv444))) return refused;
  }
  return "";
}

HwChoice HwDevice::choose(HwRequest requested, const HwCapabilities& caps, const SourceVideo& source,
                          const std::vector<VideoCodec>& planned_codecs) {
  if (requested == HwRequest::Cpu) return {DeviceMode::Cpu, "cpu requested"};
  std::string why;
  if (!caps.cuda)
    why = caps.cuda_error.empty() ? "no CUDA device" : caps.cuda_error;
  else if (!contains(caps.nvdec_codecs, source.codec))
    why = "NVDEC cannot decode " + source.codec;
  else if (!caps.scale_cuda)
    why = "this FFmpeg has no scale_cuda filter (built without CUDA filters)";
  else
    why = nvdec_refusal(source);
  if (!why.empty()) {
    if (requested == HwRequest::Cuda)
      throw Error(ErrorKind::Hardware, "select hardware", "hwaccel=cuda unavailable: " + why);
    return {DeviceMode::Cpu, why};
  }
  if (!cpu_preparation(source).empty()) return prepared_on_cpu(source);
  bool all_nvenc = !planned_codecs.empty() &&
                   std::all_of(planned_codecs.begin(), planned_codecs.end(), [&](VideoCodec c) {
                     return contains(caps.nvenc_encoders, Encoder::nvenc_encoder_name(c));
                   });
  if (all_nvenc)
    return {DeviceMode::Cuda, "NVDEC decode, scale_cuda, NVENC encode", static_cast<int>(planned_codecs.size())};
  return {DeviceMode::Hybrid,
          "NVDEC decode and scale_cuda, CPU encoders (no NVENC for the ladder's codecs on this GPU)"};
}

HwChoice HwDevice::select(HwRequest requested, const SourceVideo& source, const std::vector<VideoCodec>& planned_codecs,
                          NvencLease& lease) {
  HwChoice hw =
      choose(requested, requested == HwRequest::Cpu ? HwCapabilities{} : capabilities(), source, planned_codecs);
  if (hw.mode == DeviceMode::Cuda && !(lease = lease_nvenc(hw.nvenc_sessions)))
    hw = {DeviceMode::Hybrid, "NVENC session limit (" + std::to_string(nvenc_limit()) + ") reached: CPU encoders"};
  return hw;
}

HwChoice HwDevice::confirm(const HwChoice& chosen, HwRequest requested, const SourceVideo& first,
                           AVPixelFormat decoded) {
  if (chosen.mode == DeviceMode::Cpu) return chosen;
  if (decoded != AV_PIX_FMT_CUDA) {
    SourceVideo as_decoded = first;
    if (const char* fmt = av_get_pix_fmt_name(decoded)) as_decoded.pix_fmt = fmt;
    const std::string what = "NVDEC did not take this " + describe_stream(as_decoded) + " stream";
    if (requested == HwRequest::Cuda)
      throw Error(ErrorKind::Hardware, "gpu decode", "hwaccel=cuda unavailable: " + what);
    return {DeviceMode::Cpu, what + ": decoded and encoded on the CPU"};
  }
  // Frames FramePrep prepares come to system memory, and the rungs scale and encode them there.
  if (!cpu_preparation(first).empty()) return prepared_on_cpu(first);
  return chosen;
}

}  // namespace fp
