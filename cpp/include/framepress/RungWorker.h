// One rung of the ladder on its own thread: scale, encode, and mux into MP4 (and HLS).
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "framepress/CudaScaler.h"
#include "framepress/Encoder.h"
#include "framepress/FrameQueue.h"
#include "framepress/Muxer.h"
#include "framepress/Scaler.h"
#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

// What the decoding thread hands a rung: a decoded frame (shared, reference-counted) or an AAC
// packet (shared too); `keyframe` marks the frames on which every rung starts a closed GOP.
struct RungItem {
  UniqueFrame frame;
  bool keyframe = false;
  UniquePacket audio;
};

struct RungContext {
  std::string out_dir;
  bool hls = false;
  double gop_seconds = 2.0;
  double segment_seconds = 4.0;
  int encoder_threads = 0;
  AVRational time_base{1, 25};
  AVRational frame_rate{25, 1};
  AVRational sample_aspect{0, 1};
  const uint8_t* display_matrix = nullptr;
  const AVCodecContext* audio = nullptr;   // AAC encoder whose packets every rung muxes
  bool nvenc = false;                      // GPU frames stay on the GPU and NVENC encodes them
  int nice = 0;                            // >0: this rung's threads yield the CPU to the others
};

class RungWorker {
 public:
  RungWorker(RungOptions rung, int width, int height, const RungContext& ctx, std::atomic<bool>& abort);
  ~RungWorker();

  // Blocks while the rung is behind; false once the rung stopped (failure or abort).
  bool push(RungItem item) { return queue_.push(std::move(item)); }
  void start();
  // No more input: the rung flushes its encoder and finishes its files, unless aborted.
  void finish();
  void abort() { queue_.close(true); }
  void join();

  std::exception_ptr error() const { return error_; }
  RenditionResult result() const;
  double scale_seconds() const { return scale_s_; }
  double encode_seconds() const { return encode_s_; }
  double mux_seconds() const { return mux_s_; }

 private:
  void loop();
  UniqueFrame scale(const AVFrame* frame);
  void open(const AVFrame* first_scaled);
  void encode(const AVFrame* frame, bool keyframe);
  void drain();
  void write_audio(const AVPacket* pkt);

  RungOptions rung_;
  int width_, height_;
  RungContext ctx_;
  std::atomic<bool>& abort_;
  BoundedQueue<RungItem> queue_;
  std::thread thread_;
  std::exception_ptr error_;

  Scaler scaler_;
  std::unique_ptr<CudaScaler> cuda_scaler_;  // for NVDEC frames
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Muxer> mp4_, hls_;
  int mp4_video_ = 0, mp4_audio_ = -1, hls_video_ = 0, hls_audio_ = -1;
  std::vector<UniquePacket> pending_audio_;  // audio that arrived before the first frame
  UniquePacket packet_;

  int64_t frames_ = 0;
  int64_t first_pts_ = AV_NOPTS_VALUE, last_pts_ = AV_NOPTS_VALUE;
  double scale_s_ = 0, encode_s_ = 0, mux_s_ = 0;
  std::string codec_string_;
};

}  // namespace fp
