#include "framepress/Decoder.h"

#include "framepress/error.h"

namespace fp {

AVPixelFormat Decoder::pick_hw_format(AVCodecContext*, const AVPixelFormat* formats) {
  for (const AVPixelFormat* p = formats; *p != AV_PIX_FMT_NONE; ++p)
    if (*p == AV_PIX_FMT_CUDA) return *p;
  return formats[0];  // the decoder falls back to software for this stream
}

Decoder::Decoder(const AVStream* stream, int threads, AVBufferRef* hw_device) {
  const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
  if (!codec)
    throw Error(ErrorKind::Input, "open decoder",
                std::string("unsupported codec ") + avcodec_get_name(stream->codecpar->codec_id));
  ctx_.reset(avcodec_alloc_context3(codec));
  if (!ctx_) throw Error(ErrorKind::Input, "open decoder", "out of memory");
  check(avcodec_parameters_to_context(ctx_.get(), stream->codecpar), ErrorKind::Input, "open decoder",
        "bad codec parameters");
  ctx_->pkt_timebase = stream->time_base;
  ctx_->thread_count = threads;
  ctx_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  if (hw_device) {
    ctx_->hw_device_ctx = av_buffer_ref(hw_device);
    ctx_->get_format = &Decoder::pick_hw_format;
    hw_ = true;
  }
  check(avcodec_open2(ctx_.get(), codec, nullptr), ErrorKind::Input, "open decoder",
        std::string("cannot open decoder ") + codec->name);
}

bool Decoder::send(const AVPacket* pkt) {
  int ret = avcodec_send_packet(ctx_.get(), pkt);
  if (ret == AVERROR_INVALIDDATA || ret == AVERROR(EAGAIN)) {
    ++corrupt_;
    return false;
  }
  if (ret == AVERROR_EOF) return true;
  check(ret, failure_kind(), failure_step(), "cannot decode packet");
  return true;
}

bool Decoder::receive(AVFrame* frame) {
  int ret = avcodec_receive_frame(ctx_.get(), frame);
  if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return false;
  if (ret == AVERROR_INVALIDDATA) {
    ++corrupt_;
    return false;
  }
  check(ret, failure_kind(), failure_step(), "cannot decode frame");
  return true;
}

}  // namespace fp
