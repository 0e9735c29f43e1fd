#include "framepress/Decoder.h"

#include <cstring>

#include "framepress/MediaLimits.h"
#include "framepress/error.h"

namespace fp {

namespace {

// `tag` when it names one of `count` values, else `unspecified`. Read as an int: a C++ enum may
// not even hold a value outside its range.
template <typename Enum>
void keep_if_known(Enum& tag, int count, Enum unspecified) {
  const int value = enum_value(tag);
  if (value < 0 || value >= count) tag = unspecified;
}

// Some decoders pass colour tags through from the bitstream unchecked (an MPEG-2 sequence display
// extension may say transfer 255): what names nothing is unspecified, rather than copied to every
// encoder and muxer.
void drop_unknown_colour_tags(AVFrame* f) {
  keep_if_known(f->color_primaries, AVCOL_PRI_NB, AVCOL_PRI_UNSPECIFIED);
  keep_if_known(f->color_trc, AVCOL_TRC_NB, AVCOL_TRC_UNSPECIFIED);
  keep_if_known(f->colorspace, AVCOL_SPC_NB, AVCOL_SPC_UNSPECIFIED);
  keep_if_known(f->color_range, AVCOL_RANGE_NB, AVCOL_RANGE_UNSPECIFIED);
  keep_if_known(f->chroma_location, AVCHROMA_LOC_NB, AVCHROMA_LOC_UNSPECIFIED);
}

}  // namespace

AVPixelFormat Decoder::pick_hw_format(AVCodecContext*, const AVPixelFormat* formats) {
  for (const AVPixelFormat* p = formats; *p != AV_PIX_FMT_NONE; ++p)
    if (*p == AV_PIX_FMT_CUDA) return *p;
  // No NVDEC for this stream (FFmpeg leaves CUDA out, or drops it when NVDEC refused the stream at
  // open): software decoding, in the first format that is not another hardware API's.
  for (const AVPixelFormat* p = formats; *p != AV_PIX_FMT_NONE; ++p) {
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(*p);
    if (desc && !(desc->flags & AV_PIX_FMT_FLAG_HWACCEL)) return *p;
  }
  return formats[0];
}

Decoder::Decoder(const AVStream* stream, int threads, AVBufferRef* hw_device) : frame_(make_frame()) {
  const AVCodecID id = stream->codecpar->codec_id;
  const bool video = stream->codecpar->codec_type == AVMEDIA_TYPE_VIDEO;
  const AVCodec* codec = avcodec_find_decoder(id);
  if (!codec)
    throw Error(ErrorKind::Input, "open decoder", std::string("unsupported codec ") + avcodec_get_name(id));
  if (video ? !accepted_video_codec(id) : !accepted_audio_codec(id))
    throw Error(ErrorKind::Input, "open decoder",
                std::string(video ? "video" : "audio") + " codec " + avcodec_get_name(id) + " is not accepted");
  const int width = stream->codecpar->width, height = stream->codecpar->height;
  if (video && !accepted_frame_size(width, height))
    throw Error(ErrorKind::Input, "open decoder",
                "a " + std::to_string(width) + "x" + std::to_string(height) + " picture is larger than the accepted " +
                    std::to_string(kMaxFrameSide) + " pixels a side and " + std::to_string(kMaxFramePixels) +
                    " pixels in all");
  ctx_.reset(avcodec_alloc_context3(codec));
  if (!ctx_) throw std::bad_alloc();
  check(avcodec_parameters_to_context(ctx_.get(), stream->codecpar), ErrorKind::Input, "open decoder",
        "bad codec parameters");
  ctx_->pkt_timebase = stream->time_base;
  ctx_->thread_count = threads;
  ctx_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  // The decoder itself refuses larger pictures, whatever size the container declared.
  ctx_->max_pixels = kMaxFramePixels;
  if (hw_device) {
    ctx_->hw_device_ctx = av_buffer_ref(hw_device);
    if (!ctx_->hw_device_ctx) throw std::bad_alloc();
    ctx_->get_format = &Decoder::pick_hw_format;
    hw_ = true;
  }
  check(avcodec_open2(ctx_.get(), codec, nullptr), ErrorKind::Input, "open decoder",
        std::string("cannot open decoder ") + codec->name);
}

void Decoder::decode(const AVPacket* pkt, const std::function<void(AVFrame*)>& on_frame) {
  while (true) {
    const int ret = avcodec_send_packet(ctx_.get(), pkt);
    if (ret == AVERROR(EAGAIN)) {
      // Output is pending: take it, then the decoder accepts the packet (FFmpeg guarantees it
      // once receiving says EAGAIN).
      receive_all(on_frame);
      continue;
    }
    if (ret < 0 && ret != AVERROR_EOF) rejected(ret, "cannot decode packet");
    break;
  }
  receive_all(on_frame);
}

void Decoder::rejected(int ret, const char* what) {
  // Out of memory is no fault of the packet; on the GPU, the CPU retries and judges the input.
  if (ret == AVERROR(ENOMEM) || hw_) check(ret, failure_kind(), failure_step(), what);
  ++corrupt_;
  last_error_ = ffmpeg_error_text(ret);
}

void Decoder::receive_all(const std::function<void(AVFrame*)>& on_frame) {
  while (true) {
    const int ret = avcodec_receive_frame(ctx_.get(), frame_.get());
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
    if (ret < 0) {
      // One packet failed (frame threads report it here); the frames after it are still good.
      rejected(ret, "cannot decode frame");
      continue;
    }
    struct Unref {
      AVFrame* f;
      ~Unref() { av_frame_unref(f); }
    } unref{frame_.get()};
    drop_unknown_colour_tags(frame_.get());
    on_frame(frame_.get());
  }
}

}  // namespace fp
