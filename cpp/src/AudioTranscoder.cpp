#include "framepress/AudioTranscoder.h"

#include "framepress/error.h"

namespace fp {

AudioTranscoder::AudioTranscoder(const AVStream* stream, int64_t bitrate)
    : decoded_(make_frame()), chunk_(make_frame()), packet_(make_packet()), in_tb_(stream->time_base) {
  dec_ = std::make_unique<Decoder>(stream, 1);
  const AVCodec* aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
  if (!aac) throw Error(ErrorKind::Encode, "open audio encoder", "no AAC encoder");
  enc_.reset(avcodec_alloc_context3(aac));
  AVCodecContext* e = enc_.get();
  const AVCodecContext* d = dec_->ctx();
  e->sample_rate = d->sample_rate > 0 ? d->sample_rate : 48000;
  // More than two channels are kept; a missing layout becomes the default for its channel count.
  int channels = d->ch_layout.nb_channels > 0 ? d->ch_layout.nb_channels : 2;
  av_channel_layout_default(&e->ch_layout, channels);
  e->sample_fmt = AV_SAMPLE_FMT_FLTP;
  e->bit_rate = bitrate;
  e->time_base = AVRational{1, e->sample_rate};
  e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  check(avcodec_open2(e, aac, nullptr), ErrorKind::Encode, "open audio encoder", "cannot open AAC encoder");
  fifo_.reset(av_audio_fifo_alloc(e->sample_fmt, channels, e->frame_size * 4));
}

void AudioTranscoder::push(const AVPacket* pkt, const PacketSink& sink) {
  dec_->send(pkt);
  while (dec_->receive(decoded_.get())) {
    AVFrame* f = decoded_.get();
    if (!swr_) {
      SwrContext* raw = nullptr;
      AVChannelLayout in_layout;
      if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels == 0)
        av_channel_layout_default(&in_layout, f->ch_layout.nb_channels ? f->ch_layout.nb_channels : 2);
      else
        av_channel_layout_copy(&in_layout, &f->ch_layout);
      int ret = swr_alloc_set_opts2(&raw, &enc_->ch_layout, enc_->sample_fmt, enc_->sample_rate, &in_layout,
                                    static_cast<AVSampleFormat>(f->format), f->sample_rate, 0, nullptr);
      av_channel_layout_uninit(&in_layout);
      swr_.reset(raw);
      check(ret, ErrorKind::Encode, "resample audio", "cannot set up resampler");
      check(swr_init(swr_.get()), ErrorKind::Encode, "resample audio", "cannot set up resampler");
    }
    if (next_pts_ == AV_NOPTS_VALUE) {
      // Audio keeps its place on the source timeline, so it stays in sync with the video.
      int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ? f->best_effort_timestamp : 0;
      next_pts_ = av_rescale_q(pts, in_tb_, enc_->time_base);
    }
    int out_samples = swr_get_out_samples(swr_.get(), f->nb_samples);
    UniqueFrame converted = make_frame();
    converted->nb_samples = out_samples;
    converted->format = enc_->sample_fmt;
    converted->sample_rate = enc_->sample_rate;
    av_channel_layout_copy(&converted->ch_layout, &enc_->ch_layout);
    check(av_frame_get_buffer(converted.get(), 0), ErrorKind::Encode, "resample audio", "out of memory");
    int got = swr_convert(swr_.get(), converted->data, out_samples, const_cast<const uint8_t**>(f->extended_data),
                          f->nb_samples);
    check(got, ErrorKind::Input, "resample audio", "cannot convert audio");
    if (got > 0) av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(converted->data), got);
    av_frame_unref(f);
    encode_from_fifo(false, sink);
  }
  if (!pkt) {
    encode_from_fifo(true, sink);
    check(avcodec_send_frame(enc_.get(), nullptr), ErrorKind::Encode, "encode audio", "cannot flush AAC");
    drain_encoder(sink);
  }
}

void AudioTranscoder::encode_from_fifo(bool flush, const PacketSink& sink) {
  const int frame_size = enc_->frame_size;
  while (av_audio_fifo_size(fifo_.get()) >= frame_size || (flush && av_audio_fifo_size(fifo_.get()) > 0)) {
    int n = std::min(frame_size, av_audio_fifo_size(fifo_.get()));
    av_frame_unref(chunk_.get());
    chunk_->nb_samples = n;
    chunk_->format = enc_->sample_fmt;
    chunk_->sample_rate = enc_->sample_rate;
    av_channel_layout_copy(&chunk_->ch_layout, &enc_->ch_layout);
    check(av_frame_get_buffer(chunk_.get(), 0), ErrorKind::Encode, "encode audio", "out of memory");
    av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(chunk_->data), n);
    chunk_->pts = next_pts_;
    next_pts_ += n;
    check(avcodec_send_frame(enc_.get(), chunk_.get()), ErrorKind::Encode, "encode audio", "AAC encoder failed");
    drain_encoder(sink);
  }
}

void AudioTranscoder::drain_encoder(const PacketSink& sink) {
  while (true) {
    int ret = avcodec_receive_packet(enc_.get(), packet_.get());
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
    check(ret, ErrorKind::Encode, "encode audio", "AAC encoder failed");
    sink(packet_.get());
    av_packet_unref(packet_.get());
  }
}

}  // namespace fp
