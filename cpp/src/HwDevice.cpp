#include "framepress/HwDevice.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "framepress/error.h"

namespace fp {

namespace {

UniqueBufferRef g_cuda;
std::mutex g_nvenc_mu;
int g_nvenc_in_use = 0;
HwCapabilities g_caps;
std::once_flag g_once;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

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
  ctx->width = 256;
  ctx->height = 256;
  ctx->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx->time_base = AVRational{1, 25};
  return avcodec_open2(ctx.get(), codec, nullptr) >= 0;
}

void probe() {
  AVBufferRef* dev = nullptr;
  int ret = av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_CUDA, nullptr, nullptr, 0);
  if (ret < 0) {
    g_caps.cuda_error = "no CUDA device: " + ffmpeg_error_text(ret);
    return;
  }
  g_cuda.reset(dev);
  g_caps.cuda = true;
  for (AVCodecID id : {AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_AV1, AV_CODEC_ID_VP9, AV_CODEC_ID_MPEG2VIDEO}) {
    const AVCodec* dec = avcodec_find_decoder(id);
    if (dec && nvdec_supports(dec)) g_caps.nvdec_codecs.push_back(avcodec_get_name(id));
  }
  for (const char* name : {"h264_nvenc", "hevc_nvenc", "av1_nvenc"})
    if (nvenc_opens(name)) g_caps.nvenc_encoders.push_back(name);
  take_ffmpeg_log();  // an encoder that did not open is an answer, not an error
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
  return g_cuda.get();
}

HwChoice HwDevice::choose(const std::string& requested, const HwCapabilities& caps, const std::string& source_codec,
                          const std::vector<std::string>& rung_codecs) {
  if (requested == "cpu") return {"cpu", "cpu requested"};
  if (requested != "auto" && requested != "cuda")
    throw Error(ErrorKind::Hardware, "select hardware", "hwaccel must be auto, cpu or cuda, not " + requested);
  std::string why;
  if (!caps.cuda)
    why = caps.cuda_error.empty() ? "no CUDA device" : caps.cuda_error;
  else if (!contains(caps.nvdec_codecs, source_codec))
    why = "NVDEC cannot decode " + source_codec;
  if (!why.empty()) {
    if (requested == "cuda") throw Error(ErrorKind::Hardware, "select hardware", "hwaccel=cuda unavailable: " + why);
    return {"cpu", why};
  }
  bool all_nvenc = !rung_codecs.empty() && std::all_of(rung_codecs.begin(), rung_codecs.end(), [&](const std::string& c) {
    return contains(caps.nvenc_encoders, c + "_nvenc");
  });
  if (all_nvenc) return {"cuda", "NVDEC decode, scale_cuda, NVENC encode"};
  return {"hybrid", "NVDEC decode and scale_cuda, CPU encoders (no NVENC for the ladder's codecs on this GPU)"};
}

}  // namespace fp
