// Decodes the source's audio once and encodes it once to AAC; every rung muxes the same packets.
#pragma once

#include <functional>
#include <memory>

#include "framepress/Decoder.h"
#include "framepress/ffmpeg.h"

namespace fp {

class AudioTranscoder {
 public:
  using PacketSink = std::function<void(const AVPacket*)>;

  AudioTranscoder(const AVStream* stream, int64_t bitrate);

  // Decodes `pkt` (nullptr: end of stream, flushes everything) and hands AAC packets to `sink`.
  void push(const AVPacket* pkt, const PacketSink& sink);

  const AVCodecContext* encoder() const { return enc_.get(); }

 private:
  void encode_from_fifo(bool flush, const PacketSink& sink);
  void drain_encoder(const PacketSink& sink);

  std::unique_ptr<Decoder> dec_;
  UniqueCodecContext enc_;
  UniqueSwr swr_;
  UniqueAudioFifo fifo_;
  UniqueFrame decoded_, chunk_;
  UniquePacket packet_;
  AVRational in_tb_;
  int64_t next_pts_ = AV_NOPTS_VALUE;  // in 1/sample_rate
};

}  // namespace fp
