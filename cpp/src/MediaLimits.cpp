#include "framepress/MediaLimits.h"

#include <algorithm>
#include <iterator>
#include <mutex>

namespace fp {

namespace {

constexpr AVCodecID kVideoCodecs[] = {
    AV_CODEC_ID_H264,       AV_CODEC_ID_HEVC,       AV_CODEC_ID_VP8,    AV_CODEC_ID_VP9,    AV_CODEC_ID_AV1,
    AV_CODEC_ID_MPEG1VIDEO, AV_CODEC_ID_MPEG2VIDEO, AV_CODEC_ID_MPEG4,  AV_CODEC_ID_H263,   AV_CODEC_ID_FLV1,
    AV_CODEC_ID_VC1,        AV_CODEC_ID_WMV3,       AV_CODEC_ID_THEORA, AV_CODEC_ID_MJPEG,  AV_CODEC_ID_PRORES,
    AV_CODEC_ID_DNXHD,      AV_CODEC_ID_FFV1,       AV_CODEC_ID_PNG,    AV_CODEC_ID_RAWVIDEO,
};

// Every PCM variant is a trivial decoder; the rest are the audio of the containers above.
constexpr AVCodecID kAudioCodecs[] = {
    AV_CODEC_ID_AAC,  AV_CODEC_ID_AAC_LATM, AV_CODEC_ID_MP3,  AV_CODEC_ID_MP2,    AV_CODEC_ID_MP1,
    AV_CODEC_ID_AC3,  AV_CODEC_ID_EAC3,     AV_CODEC_ID_OPUS, AV_CODEC_ID_VORBIS, AV_CODEC_ID_FLAC,
    AV_CODEC_ID_ALAC, AV_CODEC_ID_WMAV2,    AV_CODEC_ID_DTS,
};

template <size_t N>
bool listed(const AVCodecID (&list)[N], AVCodecID id) {
  return std::find(std::begin(list), std::end(list), id) != std::end(list);
}

}  // namespace

bool accepted_video_codec(AVCodecID id) { return listed(kVideoCodecs, id); }

bool accepted_audio_codec(AVCodecID id) {
  const bool pcm = id >= AV_CODEC_ID_FIRST_AUDIO && id < AV_CODEC_ID_ADPCM_IMA_QT;  // the PCM block of ids
  return pcm || listed(kAudioCodecs, id);
}

void limit_ffmpeg_allocations() {
  static std::once_flag once;
  std::call_once(once, [] { av_max_alloc(kMaxAllocation); });
}

bool accepted_frame_size(int width, int height) {
  return width > 0 && height > 0 && width <= kMaxFrameSide && height <= kMaxFrameSide &&
         int64_t{width} * height <= kMaxFramePixels;
}

}  // namespace fp
