#include "framepress/AudioTranscoder.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "framepress/error.h"

namespace fp {

namespace {

// What players expect of AAC; a higher rate spends the bitrate on sounds nobody hears.
constexpr int kMaxOutputRate = 48000;

// Layouts the AAC encoder writes without a program config element, which many players ignore.
constexpr uint64_t kAacLayouts[] = {AV_CH_LAYOUT_MONO,         AV_CH_LAYOUT_STEREO,       AV_CH_LAYOUT_SURROUND,
                                    AV_CH_LAYOUT_4POINT0,      AV_CH_LAYOUT_5POINT0_BACK, AV_CH_LAYOUT_5POINT1_BACK,
                                    AV_CH_LAYOUT_7POINT1};

// Timestamps may wander this far (1/50 s) from the count of samples before audio is cut or padded
// (clicks), well under a video frame.
constexpr int kSyncToleranceDivisor = 50;
// Audio timestamps further than this from the count of samples are not believed (the count goes
// on, and later timestamps are read relative to it): no recording pauses its sound for so long, and
// filling a garbage leap of years with silence would never end.
constexpr int64_t kMaxGapSeconds = 600;

// swresample mixes at most this many channels (SWR_CH_MAX, which its headers do not export).
constexpr int kMaxMixChannels = 64;

// Setting up a conversion fails the same way every time, except for want of memory.
ErrorKind setup_error_kind(int ret) { return ret == AVERROR(ENOMEM) ? ErrorKind::Encode : ErrorKind::Input; }

// The source's rate when the encoder takes it (up to kMaxOutputRate), else the nearest rate above
// it, else the highest one allowed.
int output_rate(const AVCodec* aac, int source_rate) {
  if (source_rate <= 0) return kMaxOutputRate;
  if (!aac->supported_samplerates) return std::min(source_rate, kMaxOutputRate);
  int above = 0, highest = 0;
  for (const int* r = aac->supported_samplerates; *r; ++r) {
    if (*r > kMaxOutputRate) continue;
    if (*r == source_rate) return *r;
    if (*r > source_rate && (!above || *r < above)) above = *r;
    highest = std::max(highest, *r);
  }
  return above ? above : highest ? highest : kMaxOutputRate;
}

// `src` with named channels: its own names, or the usual layout for its channel count (which has
// no names either for counts without one).
int named_layout(const AVChannelLayout& src, ChannelLayout& out) {
  if (src.order == AV_CHANNEL_ORDER_NATIVE) return out.assign(src);
  AVChannelLayout usual{};
  av_channel_layout_default(&usual, src.nb_channels);
  return out.assign(usual);
}

// The AAC layout for a source layout: the largest whose every channel the source has (side
// surrounds standing in for back ones), so that no channel is made up; by channel count when the
// source's channels have no names.
uint64_t output_layout(const AVChannelLayout& named) {
  uint64_t mask = named.order == AV_CHANNEL_ORDER_NATIVE ? named.u.mask : 0;
  const uint64_t side = AV_CH_SIDE_LEFT | AV_CH_SIDE_RIGHT, back = AV_CH_BACK_LEFT | AV_CH_BACK_RIGHT;
  if ((mask & side) == side && !(mask & back)) mask = (mask & ~side) | back;
  uint64_t best = 0;
  for (uint64_t layout : kAacLayouts)
    if ((layout & mask) == layout && av_popcount64(layout) > av_popcount64(best)) best = layout;
  if (best) return best;
  return named.nb_channels == 1 ? AV_CH_LAYOUT_MONO : AV_CH_LAYOUT_STEREO;
}

std::string layout_name(const AVChannelLayout& layout) {
  char buf[128];
  if (av_channel_layout_describe(&layout, buf, sizeof(buf)) < 0) return std::to_string(layout.nb_channels) + " channels";
  return buf;
}

std::string seconds_text(int64_t samples, int rate) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(samples) / rate);
  return buf;
}

std::string format_name(int format, int rate, const AVChannelLayout& layout) {
  const char* fmt = av_get_sample_fmt_name(static_cast<AVSampleFormat>(format));
  return layout_name(layout) + ", " + std::to_string(rate) + " Hz, " + (fmt ? fmt : "unknown format");
}

}  // namespace

std::unique_ptr<AudioTranscoder> AudioTranscoder::open(const AVStream* stream, int64_t bitrate,
                                                       const Timeline& timeline, AudioResult& report) {
  report = AudioResult{};
  const std::string codec = avcodec_get_name(stream->codecpar->codec_id);
  std::unique_ptr<Decoder> dec;
  try {
    dec = std::make_unique<Decoder>(stream, 1);
  } catch (const Error& e) {
    if (e.kind != ErrorKind::Input) throw;
    // Audio nothing here can decode: a video without sound beats no video.
    report.warnings.push_back("audio stream " + std::to_string(stream->index) + " (" + codec +
                              ") dropped: " + e.what());
    return nullptr;
  }
  report.index = stream->index;
  report.codec = codec;
  if (const AVDictionaryEntry* lang = av_dict_get(stream->metadata, "language", nullptr, 0)) report.language = lang->value;
  return std::unique_ptr<AudioTranscoder>(
      new AudioTranscoder(std::move(dec), stream, bitrate, timeline, std::move(report)));
}

AudioTranscoder::AudioTranscoder(std::unique_ptr<Decoder> dec, const AVStream* stream, int64_t bitrate,
                                 const Timeline& timeline, AudioResult report)
    : timeline_(timeline), dec_(std::move(dec)), converted_(make_frame()), chunk_(make_frame()),
      packet_(make_packet()), in_tb_(stream->time_base), report_(std::move(report)) {
  const AVCodec* aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
  if (!aac) throw Error(ErrorKind::Encode, "open audio encoder", "no AAC encoder");
  enc_.reset(avcodec_alloc_context3(aac));
  if (!enc_) throw Error(ErrorKind::Encode, "open audio encoder", "out of memory");
  AVCodecContext* e = enc_.get();
  const AVCodecContext* d = dec_->ctx();

  // The output format, from the header; a header without a layout counts as stereo.
  AVChannelLayout stereo{};
  av_channel_layout_default(&stereo, 2);
  ChannelLayout source_layout;
  check(named_layout(d->ch_layout.nb_channels > 0 ? d->ch_layout : stereo, source_layout), ErrorKind::Encode,
        "open audio", "out of memory");
  e->sample_rate = output_rate(aac, d->sample_rate);
  av_channel_layout_from_mask(&e->ch_layout, output_layout(source_layout.get()));
  e->sample_fmt = AV_SAMPLE_FMT_FLTP;
  e->bit_rate = bitrate;
  e->time_base = AVRational{1, e->sample_rate};
  e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int ret = avcodec_open2(e, aac, nullptr);
  check(ret, setup_error_kind(ret), "open audio encoder", "cannot open AAC encoder");
  fifo_.reset(av_audio_fifo_alloc(e->sample_fmt, e->ch_layout.nb_channels, e->frame_size * 4));
  if (!fifo_) throw Error(ErrorKind::Encode, "open audio", "out of memory");

  report_.sample_rate = e->sample_rate;
  report_.channels = e->ch_layout.nb_channels;
  report_.channel_layout = layout_name(e->ch_layout);
  if (d->sample_rate > 0 && d->sample_rate != e->sample_rate)
    report_.warnings.push_back("audio resampled from " + std::to_string(d->sample_rate) + " Hz to " +
                               std::to_string(e->sample_rate) + " Hz");
  if (source_layout.get().nb_channels > e->ch_layout.nb_channels)
    report_.warnings.push_back("audio downmixed from " + layout_name(source_layout.get()) + " to " +
                               report_.channel_layout);

  // A resampler for the header's format now, so that audio that cannot be converted fails the task
  // before any work is done (the first frame usually finds it ready).
  if (d->sample_rate > 0 && d->ch_layout.nb_channels > 0)
    open_resampler(d->sample_fmt != AV_SAMPLE_FMT_NONE ? d->sample_fmt : AV_SAMPLE_FMT_FLTP, d->sample_rate,
                   d->ch_layout);
}

bool AudioTranscoder::resampler_takes(const AVFrame* f) const {
  return swr_ && f->format == in_format_ && f->sample_rate == in_rate_ &&
         av_channel_layout_compare(&f->ch_layout, &in_layout_.get()) == 0;
}

void AudioTranscoder::open_resampler(AVSampleFormat format, int rate, const AVChannelLayout& layout) {
  swr_.reset();
  const std::string what = "cannot convert audio (" + format_name(format, rate, layout) + ") to AAC";
  if (layout.nb_channels > kMaxMixChannels) throw Error(ErrorKind::Input, "resample audio", what + ": too many channels");
  ChannelLayout in;
  check(named_layout(layout, in), ErrorKind::Encode, "resample audio", "out of memory");
  SwrContext* raw = nullptr;
  // FFmpeg 5.1 takes the layouts by non-const pointer; it only reads them.
  int ret = swr_alloc_set_opts2(&raw, &enc_->ch_layout, enc_->sample_fmt, enc_->sample_rate,
                                const_cast<AVChannelLayout*>(&in.get()), format, rate, 0, nullptr);
  UniqueSwr swr(raw);
  if (ret >= 0 && in.get().order != AV_CHANNEL_ORDER_NATIVE) {
    // Channels without names cannot be mixed by position: the first ones are kept as they are.
    const int ins = in.get().nb_channels, outs = enc_->ch_layout.nb_channels;
    std::vector<double> matrix(static_cast<size_t>(std::max(ins, 0)) * outs, 0.0);
    for (int i = 0; i < std::min(ins, outs); ++i) matrix[static_cast<size_t>(i) * ins + i] = 1.0;
    ret = swr_set_matrix(swr.get(), matrix.data(), ins);
  }
  if (ret >= 0) ret = swr_init(swr.get());
  check(ret, setup_error_kind(ret), "resample audio", what);
  check(in_layout_.assign(layout), ErrorKind::Encode, "resample audio", "out of memory");
  in_format_ = format;
  in_rate_ = rate;
  swr_ = std::move(swr);
}

void AudioTranscoder::note_format_change(const AVFrame* f) {
  if (format_changes_++ > 0) return;
  char at[32];
  const int64_t pts = f->best_effort_timestamp;
  std::snprintf(at, sizeof(at), "%.3f s", pts == AV_NOPTS_VALUE ? 0.0 : pts * av_q2d(in_tb_));
  first_change_ = std::string("first at ") + at + ", from " + format_name(in_format_, in_rate_, in_layout_.get()) +
                  " to " + format_name(f->format, f->sample_rate, f->ch_layout);
}

AudioResult AudioTranscoder::report() const {
  AudioResult r = report_;
  if (format_changes_ > 0)
    r.warnings.push_back("audio format changed " + std::to_string(format_changes_) + " time(s) mid-stream (" +
                         first_change_ + "); converted to " + r.channel_layout + ", " +
                         std::to_string(r.sample_rate) + " Hz");
  const int rate = enc_->sample_rate;
  if (holes_.count > 0)
    r.warnings.push_back("audio had " + std::to_string(holes_.count) + " hole(s), filled with " +
                         seconds_text(holes_.samples, rate) + " of silence (first at " +
                         seconds_text(holes_.first_at, rate) + ")");
  if (leaps_.count > 0)
    r.warnings.push_back("audio timestamps leapt " + std::to_string(leaps_.count) + " time(s) by more than " +
                         std::to_string(kMaxGapSeconds) + " s (first at " + seconds_text(leaps_.first_at, rate) +
                         "): not believed, the audio runs on");
  return r;
}

// Audio goes where its timestamps put it on the output timeline, not where the count of samples so
// far would: a gap in the source before `f` is filled with silence here, and an overlap (or audio
// before the first video frame) is the number of `f`'s samples to cut. So a hole in the audio never
// shifts what follows it.
int64_t AudioTranscoder::samples_to_cut(const AVFrame* f, const PacketSink& sink) {
  if (f->best_effort_timestamp == AV_NOPTS_VALUE) return 0;
  int64_t at = av_rescale_q(timeline_.to_output(f->best_effort_timestamp, in_tb_), in_tb_, enc_->time_base) +
               unbelieved_;
  // Where its first sample would land: after the FIFO and what the resampler still holds.
  const int64_t lands =
      next_pts_ + av_audio_fifo_size(fifo_.get()) + (swr_ ? swr_get_delay(swr_.get(), enc_->sample_rate) : 0);
  const int64_t tolerance = enc_->sample_rate / kSyncToleranceDivisor;
  const int64_t max_gap = kMaxGapSeconds * enc_->sample_rate;
  if (at - lands > max_gap || lands - at > max_gap) {
    leaps_.add(lands, 0);
    unbelieved_ += lands - at;
    at = lands;
  }
  if (at - lands > tolerance) {
    if (lands > 0) holes_.add(lands, at - lands);  // not the audio starting after the video
    write_silence(at - lands, sink);
  }
  return lands - at > tolerance || (cutting_ && lands > at) ? lands - at : 0;
}

void AudioTranscoder::write_fifo(const AVFrame* samples, int from, int count) {
  const auto format = static_cast<AVSampleFormat>(samples->format);
  const bool planar = av_sample_fmt_is_planar(format);
  const int planes = planar ? samples->ch_layout.nb_channels : 1;
  const size_t stride =
      static_cast<size_t>(av_get_bytes_per_sample(format)) * (planar ? 1 : samples->ch_layout.nb_channels);
  std::vector<uint8_t*> data(planes);
  for (int i = 0; i < planes; ++i) data[i] = samples->extended_data[i] + from * stride;
  if (av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(data.data()), count) < count)
    throw Error(ErrorKind::Encode, "resample audio", "out of memory");
}

void AudioTranscoder::write_silence(int64_t samples, const PacketSink& sink) {
  UniqueFrame silence = make_frame();
  if (!silence) throw Error(ErrorKind::Encode, "resample audio", "out of memory");
  silence->nb_samples = std::max(enc_->frame_size, 1024);
  silence->format = enc_->sample_fmt;
  silence->sample_rate = enc_->sample_rate;
  check(av_channel_layout_copy(&silence->ch_layout, &enc_->ch_layout), ErrorKind::Encode, "resample audio",
        "out of memory");
  check(av_frame_get_buffer(silence.get(), 0), ErrorKind::Encode, "resample audio", "out of memory");
  av_samples_set_silence(silence->extended_data, 0, silence->nb_samples, silence->ch_layout.nb_channels,
                         enc_->sample_fmt);
  while (samples > 0) {
    const int n = static_cast<int>(std::min<int64_t>(samples, silence->nb_samples));
    write_fifo(silence.get(), 0, n);
    samples -= n;
    encode_from_fifo(false, sink);
  }
}

// Converts `f` into the FIFO but for its first `cut` samples, and says how many it made; nullptr
// drains the samples the resampler still holds (its filter delay), which belong before anything a
// new resampler makes and at the end of the stream.
int AudioTranscoder::resample(const AVFrame* f, int64_t cut) {
  if (!swr_) return 0;
  const uint8_t** in = f ? const_cast<const uint8_t**>(f->extended_data) : nullptr;
  const int in_samples = f ? f->nb_samples : 0;
  while (true) {
    const int room = swr_get_out_samples(swr_.get(), in_samples);
    check(room, ErrorKind::Input, "resample audio", "cannot convert audio");
    if (room == 0) return 0;
    av_frame_unref(converted_.get());
    converted_->nb_samples = room;
    converted_->format = enc_->sample_fmt;
    converted_->sample_rate = enc_->sample_rate;
    check(av_channel_layout_copy(&converted_->ch_layout, &enc_->ch_layout), ErrorKind::Encode, "resample audio",
          "out of memory");
    check(av_frame_get_buffer(converted_.get(), 0), ErrorKind::Encode, "resample audio", "out of memory");
    const int got = swr_convert(swr_.get(), converted_->data, room, in, in_samples);
    check(got, ErrorKind::Input, "resample audio", "cannot convert audio");
    if (got > cut) write_fifo(converted_.get(), static_cast<int>(cut), got - static_cast<int>(cut));
    if (f || got == 0) return got;  // a frame converts in one call: `room` is enough for all of it
  }
}

void AudioTranscoder::push(const AVPacket* pkt, const PacketSink& sink) {
  dec_->decode(pkt, [&](AVFrame* f) {
    if (!resampler_takes(f)) {
      // The first frame may only correct what the header said; later ones really change.
      if (frames_ > 0) note_format_change(f);
      resample(nullptr);
      open_resampler(static_cast<AVSampleFormat>(f->format), f->sample_rate, f->ch_layout);
    }
    ++frames_;
    const int64_t cut = samples_to_cut(f, sink);
    const int got = resample(f, cut);
    cutting_ = got > 0 && cut >= got;  // a cut longer than this frame goes on into the next
    encode_from_fifo(false, sink);
  });
  if (!pkt) {
    resample(nullptr);
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
