// Decodes one source audio stream once and encodes it once to AAC; every rung muxes the same packets.
//
// The AAC format is chosen once, from the stream's header and what the encoder takes (a layout
// players know, 48 kHz at most), and holds for the whole task: encoder and muxers cannot take a
// change. Decoded audio whose layout, sample format or rate differs from the frame before gets a
// resampler of its own, once the previous one has handed over the samples it still holds.
#pragma once

#include <functional>
#include <memory>

#include "framepress/Decoder.h"
#include "framepress/Timeline.h"
#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class AudioTranscoder {
 public:
  using PacketSink = std::function<void(const AVPacket*)>;

  // The transcoder for `stream`, or nullptr when no decoder can read it: the outputs go without
  // audio and `report` says why. Throws InputError when the audio cannot be converted to AAC
  // (a retry would meet the same audio). Frames are placed by their timestamps on `timeline`,
  // which must have started before the first push.
  static std::unique_ptr<AudioTranscoder> open(const AVStream* stream, int64_t bitrate, const Timeline& timeline,
                                               AudioResult& report);

  // Decodes `pkt` (nullptr: end of stream, flushes everything) and hands AAC packets to `sink`.
  void push(const AVPacket* pkt, const PacketSink& sink);

  const AVCodecContext* encoder() const { return enc_.get(); }
  // The stream used, the output format and the conversions made so far.
  AudioResult report() const;

 private:
  AudioTranscoder(std::unique_ptr<Decoder> dec, const AVStream* stream, int64_t bitrate, const Timeline& timeline,
                  AudioResult report);
  bool resampler_takes(const AVFrame* f) const;
  void open_resampler(AVSampleFormat format, int rate, const AVChannelLayout& layout);
  void note_format_change(const AVFrame* f);
  int64_t samples_to_cut(const AVFrame* f, const PacketSink& sink);
  int resample(const AVFrame* f, int64_t cut = 0);
  void write_fifo(const AVFrame* samples, int from, int count);
  void write_silence(int64_t samples, const PacketSink& sink);
  void encode_from_fifo(bool flush, const PacketSink& sink);
  void drain_encoder(const PacketSink& sink);

  const Timeline& timeline_;
  std::unique_ptr<Decoder> dec_;
  UniqueCodecContext enc_;
  UniqueSwr swr_;
  // The input swr_ was set up for: a frame that differs needs a new one.
  int in_format_ = AV_SAMPLE_FMT_NONE, in_rate_ = 0;
  ChannelLayout in_layout_;
  UniqueAudioFifo fifo_;
  UniqueFrame converted_, chunk_;
  UniquePacket packet_;
  AVRational in_tb_;
  int64_t next_pts_ = 0;               // output position of the FIFO's first sample, in 1/sample_rate
  bool cutting_ = false;               // the last frame was cut whole: the overlap goes on
  int64_t unbelieved_ = 0;             // added to timestamps after leaps not believed, in 1/sample_rate
  // Where the audio was mended, for the report (in 1/sample_rate).
  struct Mends {
    int64_t count = 0, samples = 0, first_at = 0;
    void add(int64_t at, int64_t n) {
      if (count++ == 0) first_at = at;
      samples += n;
    }
  } holes_, leaps_;
  int64_t frames_ = 0;                 // decoded frames so far
  AudioResult report_;
  int64_t format_changes_ = 0;
  std::string first_change_;           // where and how the audio first changed mid-stream
};

}  // namespace fp
