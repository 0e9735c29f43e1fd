#include "framepress/Encoder.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "framepress/error.h"

namespace fp {

namespace {

// x264/x265 preset names mapped onto SVT-AV1's numeric presets (higher is faster).
int svt_preset(const std::string& preset) {
  static const std::map<std::string, int> presets = {
      {"ultrafast", 12}, {"superfast", 11}, {"veryfast", 10}, {"faster", 9}, {"fast", 8},
      {"medium", 7},     {"slow", 6},       {"slower", 5},     {"veryslow", 4}, {"placebo", 2}};
  auto it = presets.find(preset);
  if (it != presets.end()) return it->second;
  try {
    return std::stoi(preset);
  } catch (...) {
    throw Error(ErrorKind::Encode, "open encoder", "unknown av1 preset " + preset);
  }
}

// AV1 sequence header fields for the av01 string: (profile, level index, tier), or level -1.
struct Av1Level {
  int profile = 0, level = -1, tier = 0;
};

Av1Level av1_level(const uint8_t* d, int size) {
  Av1Level out;
  if (!d || size < 4) return out;
  if (d[0] & 0x80) {  // an av1C box payload
    out.profile = d[1] >> 5;
    out.level = d[1] & 0x1f;
    out.tier = d[2] >> 7;
    return out;
  }
  // A raw sequence header OBU: header byte, optional LEB128 size, then the header's bits.
  if (((d[0] >> 3) & 0xf) != 1) return out;
  int pos = 1;
  if (d[0] & 0x02)
    while (pos < size && (d[pos++] & 0x80)) {
    }
  uint64_t bits = 0;
  int have = 0;
  for (int i = pos; i < size && have <= 56; ++i, have += 8) bits = (bits << 8) | d[i];
  auto take = [&](int n) {
    have -= n;
    return have >= 0 ? static_cast<int>((bits >> have) & ((1u << n) - 1)) : 0;
  };
  out.profile = take(3);
  take(1);                          // still_picture
  if (take(1)) {                    // reduced_still_picture_header
    out.level = take(5);
    return out;
  }
  if (take(1)) return out;          // timing info present: not needed for our encoders' output
  if (take(1)) return out;          // initial display delay present
  take(5);                          // operating_points_cnt_minus_1
  take(12);                         // operating_point_idc[0]
  out.level = take(5);
  if (out.level > 7) out.tier = take(1);
  return out;
}

// Every rung's keyframes are forced on the transcoder's timestamp grid; an encoder's own keyframe
// interval is only a backstop. With a variable frame rate a grid interval can hold many more
// frames than gop_seconds at the average rate, so the backstop is sized for frames a millisecond
// apart: no encoder puts a keyframe of its own off the grid in real video.
constexpr double kBackstopFps = 1000;

// The rate cap's buffer, as a fraction full, at the start of a later part of a split source.
constexpr const char* kMidStreamVbv = ":vbv-init=0.5";

// libx265 and libsvtav1 ignore thread_count and size their own pools from the machine's cores, so
// every HEVC/AV1 rung would start a full pool and defeat the balancing of rungs over workers.
// x265: a pool of `threads`; wavefront rows keep a small pool busy, and frame threads, which
// cost quality, only from five threads on.
std::string x265_threads(int threads) {
  const int frame_threads = threads >= 16 ? 4 : threads >= 8 ? 3 : threads > 4 ? 2 : 1;
  return ":pools=" + std::to_string(threads) + ":frame-threads=" + std::to_string(frame_threads);
}

void set_private(AVCodecContext* ctx, const char* key, const std::string& value) {
  check(av_opt_set(ctx->priv_data, key, value.c_str(), 0), ErrorKind::Encode, "open encoder",
        std::string("invalid encoder option ") + key + "=" + value);
}

}  // namespace

std::map<std::string, std::string> Encoder::nvenc_options(const RungOptions& rung) {
  static const std::map<std::string, std::string> presets = {
      {"ultrafast", "p1"}, {"superfast", "p1"}, {"veryfast", "p2"}, {"faster", "p3"}, {"fast", "p4"},
      {"medium", "p5"},    {"slow", "p6"},      {"slower", "p7"},   {"veryslow", "p7"}, {"placebo", "p7"}};
  std::map<std::string, std::string> o;
  auto it = presets.find(rung.preset);
  o["preset"] = it != presets.end() ? it->second : (rung.preset.size() == 2 && rung.preset[0] == 'p' ? rung.preset : "p4");
  o["tune"] = "hq";
  o["rc"] = "vbr";
  if (rung.crf >= 0) o["cq"] = std::to_string(std::min(51, rung.crf));
  o["forced-idr"] = "1";
  o["no-scenecut"] = "1";
  o["strict_gop"] = "1";
  if (!rung.profile.empty()) o["profile"] = rung.profile;
  return o;
}

const char* Encoder::encoder_name(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::H264: return "libx264";
    case VideoCodec::Hevc: return "libx265";
    case VideoCodec::Av1: return "libsvtav1";
  }
  throw Error(ErrorKind::Encode, "open encoder", "unsupported codec");
}

std::string Encoder::nvenc_encoder_name(VideoCodec codec) { return std::string(name_of(codec)) + "_nvenc"; }

Encoder::Encoder(const RungOptions& rung, const EncoderSetup& s) : codec_(rung.codec) {
  const std::string nvenc_name = nvenc_encoder_name(rung.codec);
  const char* name = s.nvenc_frames ? nvenc_name.c_str() : encoder_name(rung.codec);
  const AVCodec* codec = avcodec_find_encoder_by_name(name);
  if (!codec) throw Error(ErrorKind::Encode, "open encoder", std::string("encoder ") + name + " is not available");
  ctx_.reset(avcodec_alloc_context3(codec));
  if (!ctx_) throw std::bad_alloc();
  AVCodecContext* c = ctx_.get();
  c->width = s.width;
  c->height = s.height;
  c->pix_fmt = s.nvenc_frames ? AV_PIX_FMT_CUDA : AV_PIX_FMT_YUV420P;
  if (s.nvenc_frames && !(c->hw_frames_ctx = av_buffer_ref(s.nvenc_frames))) throw std::bad_alloc();
  c->sample_aspect_ratio = s.sample_aspect;
  c->field_order = AV_FIELD_PROGRESSIVE;  // interlaced sources are deinterlaced before the rungs
  c->time_base = s.time_base;
  c->framerate = s.frame_rate;
  c->thread_count = s.threads;
  if (s.global_header) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  // Signalled as the rung's own frames are: the scalers and the frame preparation tag what they
  // make (limited range, SDR after tone mapping), so the tags describe the encoded pixels.
  if (s.color_from) {
    c->color_range = s.color_from->color_range;
    c->color_primaries = s.color_from->color_primaries;
    c->color_trc = s.color_from->color_trc;
    c->colorspace = s.color_from->colorspace;
    c->chroma_sample_location = s.color_from->chroma_location;
  }
  // A fixed GOP of gop_seconds: every rung gets its keyframes on the same frames (forced by the
  // transcoder), and no encoder adds its own (no scene cuts, no open GOPs, the encoders' own
  // interval only a backstop beyond any grid interval).
  double fps = s.frame_rate.num && s.frame_rate.den ? av_q2d(s.frame_rate) : 25.0;
  const int gop = std::max(1, static_cast<int>(std::lround(s.gop_seconds * fps)));
  const int backstop = std::max(gop, static_cast<int>(std::lround(s.gop_seconds * kBackstopFps)));
  c->gop_size = backstop;
  c->keyint_min = gop;
  if (rung.crf < 0) {
    c->bit_rate = rung.bitrate;
    c->rc_max_rate = rung.maxrate > 0 ? rung.maxrate : rung.bitrate;
    c->rc_buffer_size = static_cast<int>(rung.bufsize > 0 ? rung.bufsize : 2 * rung.bitrate);
  }
  if (!rung.profile.empty() && !s.nvenc_frames) set_private(c, "profile", rung.profile);

  if (s.nvenc_frames) {
    for (const auto& [key, value] : nvenc_options(rung)) set_private(c, key.c_str(), value);
  } else if (rung.codec == VideoCodec::H264) {
    set_private(c, "preset", rung.preset);
    set_private(c, "forced-idr", "1");
    // A few threads split each frame into slices rather than encode frames in parallel: x264's
    // frame threads cost 0.2-0.6 dB at these rate caps (measured on the reference clip); slices
    // cost next to nothing and add no latency.
    const bool sliced = s.threads >= 2 && s.threads <= 4;
    set_private(c, "x264-params", std::string("scenecut=0:open-gop=0") + (sliced ? ":sliced-threads=1" : "") +
                                      (s.measure_quality ? ":psnr=1:ssim=1" : "") + (s.mid_stream ? kMidStreamVbv : ""));
    if (rung.crf >= 0) set_private(c, "crf", std::to_string(rung.crf));
  } else if (rung.codec == VideoCodec::Hevc) {
    set_private(c, "preset", rung.preset);
    set_private(c, "forced-idr", "1");
    std::string params = "scenecut=0:open-gop=0:log-level=error:keyint=" + std::to_string(backstop) +
                         ":min-keyint=" + std::to_string(gop);
    if (s.threads > 0) params += x265_threads(s.threads);
    if (s.mid_stream) params += kMidStreamVbv;
    set_private(c, "x265-params", params);
    if (rung.crf >= 0) set_private(c, "crf", std::to_string(rung.crf));
  } else {  // av1
    set_private(c, "preset", std::to_string(svt_preset(rung.preset)));
    // lp: the logical processors SVT-AV1 sizes its many thread pools for (0: all of them).
    std::string params = "scd=0" + (s.threads > 0 ? ":lp=" + std::to_string(s.threads) : "");
    if (rung.crf >= 0) {
      set_private(c, "crf", std::to_string(rung.crf));
      // SVT-AV1 1.4 (FFmpeg 5.1's wrapper) ignores frames forced as keyframes unless told to,
      // and takes them only in CRF mode.
      params += ":enable-force-key-frames=1";
    } else {
      // In VBR it cannot force them: its own interval at the average rate puts the keyframes on
      // the grid for constant frame rates only.
      c->gop_size = gop;
    }
    set_private(c, "svtav1-params", params);
    c->rc_max_rate = 0;  // SVT-AV1 takes VBR with a target; capped CRF is not in this version
    c->rc_buffer_size = 0;
  }
  failure_kind_ = s.nvenc_frames ? ErrorKind::Gpu : ErrorKind::Encode;
  check(avcodec_open2(c, codec, nullptr), failure_kind_, s.nvenc_frames ? "gpu open encoder" : "open encoder",
        std::string("cannot open encoder ") + name);
  step_ = s.nvenc_frames ? "gpu encode" : "encode";
}

void Encoder::send(const AVFrame* frame) {
  int ret = avcodec_send_frame(ctx_.get(), frame);
  if (ret == AVERROR_EOF) return;
  check(ret, failure_kind_, step_, std::string("encoder ") + ctx_->codec->name + " failed");
}

bool Encoder::receive(AVPacket* pkt) {
  int ret = avcodec_receive_packet(ctx_.get(), pkt);
  if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return false;
  check(ret, failure_kind_, step_, std::string("encoder ") + ctx_->codec->name + " failed");
  return true;
}

std::string Encoder::codec_string() const {
  const AVCodecContext* c = ctx_.get();
  char buf[64];
  if (codec_ == VideoCodec::H264) {
    // Profile, constraint flags and level straight from the SPS in the Annex B extradata.
    const uint8_t* d = c->extradata;
    for (int i = 0; d && i + 7 < c->extradata_size; ++i) {
      if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && (d[i + 3] & 0x1f) == 7) {
        std::snprintf(buf, sizeof(buf), "avc1.%02x%02x%02x", d[i + 4], d[i + 5], d[i + 6]);
        return buf;
      }
    }
    return "avc1.640028";
  }
  if (codec_ == VideoCodec::Hevc) {
    // profile_tier_level from the SPS (NAL type 33): ISO/IEC 14496-15 Annex E's hvc1 string.
    const uint8_t* d = c->extradata;
    for (int i = 0; d && i + 5 < c->extradata_size; ++i) {
      if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && ((d[i + 3] >> 1) & 0x3f) == 33) {
        // The SPS payload without emulation-prevention bytes (00 00 03 -> 00 00).
        uint8_t rbsp[16] = {0};
        int n = 0, zeros = 0;
        for (int j = i + 5; j < c->extradata_size && n < 16; ++j) {
          if (zeros >= 2 && d[j] == 3) {
            zeros = 0;
            continue;
          }
          zeros = d[j] == 0 ? zeros + 1 : 0;
          rbsp[n++] = d[j];
        }
        const uint8_t* ptl = rbsp + 1;  // after the byte of SPS ids
        const int space = ptl[0] >> 6, tier = (ptl[0] >> 5) & 1, profile = ptl[0] & 0x1f;
        uint32_t compat = (uint32_t(ptl[1]) << 24) | (uint32_t(ptl[2]) << 16) | (uint32_t(ptl[3]) << 8) | ptl[4];
        uint32_t reversed = 0;
        for (int b = 0; b < 32; ++b) reversed |= ((compat >> b) & 1u) << (31 - b);
        std::string out = "hvc1.";
        if (space) out += static_cast<char>('A' + space - 1);
        std::snprintf(buf, sizeof(buf), "%d.%X.%c%d", profile, reversed, tier ? 'H' : 'L', ptl[11]);
        out += buf;
        int last = 10;  // constraint bytes ptl[5..10], trailing zero bytes left out
        while (last >= 5 && ptl[last] == 0) --last;
        for (int b = 5; b <= last; ++b) {
          std::snprintf(buf, sizeof(buf), ".%X", ptl[b]);
          out += buf;
        }
        return out;
      }
    }
    return "hvc1.1.6.L120.90";
  }
  Av1Level av1 = av1_level(c->extradata, c->extradata_size);
  if (av1.level < 0) av1.level = c->level > 0 ? c->level : 8;
  std::snprintf(buf, sizeof(buf), "av01.%d.%02d%c.08", av1.profile, av1.level, av1.tier ? 'H' : 'M');
  return buf;
}

}  // namespace fp
