// One rendition of the ladder: scales decoded frames to its size, encodes them, and muxes them
// with the shared audio into MP4, and alone into HLS. It has no thread of its own: a RungWorker drives it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "framepress/DeviceBackend.h"
#include "framepress/Encoder.h"
#include "framepress/EncoderLogStats.h"
#include "framepress/FrameScaler.h"
#include "framepress/Muxer.h"
#include "framepress/QualityMeter.h"
#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

// What the rungs of one task share, and the threads each rung's encoder gets.
struct RungSetup {
  std::string out_dir;
  bool hls = false;
  // A part of a source after its start, continuing the parts before it: HLS segments carry the
  // source's times themselves (not an offset in the init segment's edit list), so the parts'
  // segments play on under any one part's init segment; the encoder's rate control picks up
  // mid-stream (EncoderSetup::mid_stream).
  bool later_part = false;
  double gop_seconds = 2.0;
  double segment_seconds = 4.0;
  int encoder_threads = 0;
  AVRational time_base{1, 25};
  AVRational frame_rate{25, 1};
  AVRational sample_aspect{0, 1};
  const uint8_t* display_matrix = nullptr;
  std::vector<const AVCodecContext*> audio;  // AAC encoders (one per track) whose packets every rung muxes
  std::vector<std::string> audio_languages;   // by track, "" where the source has no tag
  const DeviceBackend* device = nullptr;   // where the rung scales and what its encoder takes
  bool quality = false;                    // measure PSNR and SSIM (QualityMeter)
};

class Rung {
 public:
  Rung(RungOptions rung, int width, int height, const RungSetup& setup);

  // `keyframe` marks the frames on which every rung starts a closed GOP.
  void encode(const AVFrame* frame, bool keyframe);
  void write_audio(const AVPacket* pkt);  // its stream_index is the track
  // No more input: flushes the encoder and finishes the files.
  void finish();

  RenditionResult result() const;
  // Why the rendition has no quality figures though they were asked for ("" when it has them).
  std::string quality_warning() const;
  double scale_seconds() const { return scale_s_; }
  double encode_seconds() const { return encode_s_; }
  double mux_seconds() const { return mux_s_; }
  double quality_seconds() const { return quality_ ? quality_->seconds() : 0; }

 private:
  void open(const AVFrame* first_scaled);
  void drain();

  RungOptions rung_;
  int width_, height_;
  RungSetup setup_;

  std::unique_ptr<FrameScaler> scaler_;
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Muxer> mp4_, hls_;
  std::unique_ptr<QualityMeter> quality_;           // quality of other encoders: decoded again
  std::unique_ptr<EncoderLogStats> encoder_stats_;  // libx264's own figures
  int mp4_video_ = 0, hls_video_ = 0;
  std::vector<int> mp4_audio_;  // by track  // HLS audio has playlists of its own
  std::vector<UniquePacket> pending_audio_;  // audio that arrived before the first frame
  UniquePacket packet_;

  int64_t frames_ = 0;
  int64_t first_pts_ = AV_NOPTS_VALUE, last_pts_ = AV_NOPTS_VALUE;
  double scale_s_ = 0, encode_s_ = 0, mux_s_ = 0;
  std::string codec_string_;
};

}  // namespace fp
