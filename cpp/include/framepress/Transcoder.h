// The ladder pipeline: one demux and one decode feeding every rung, rungs encoding in parallel.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framepress/HwDevice.h"
#include "framepress/RungWorker.h"
#include "framepress/ffmpeg.h"
#include "framepress/TimeRange.h"
#include "framepress/options.h"

namespace fp {

class AudioTracks;
class Decoder;
class Demuxer;
class DeviceBackend;
class FramePrep;
class KeyframeGrid;
class ThumbnailSink;
class Timeline;

class Transcoder {
 public:
  Transcoder(std::string input, std::string out_dir, TranscodeOptions options, ProgressFn progress,
             CancelFlagPtr cancel);
  Transcoder(MediaSource input, std::string out_dir, TranscodeOptions options, ProgressFn progress,
             CancelFlagPtr cancel);
  ~Transcoder();
  Transcoder(const Transcoder&) = delete;
  Transcoder& operator=(const Transcoder&) = delete;

  // Runs the whole job on the calling thread plus one thread per rung group. Call it once: the
  // job's state lives in the Transcoder. Throws fp::Error.
  TranscodeResult run();

  // Output sizes for a source of `width`x`height`: rungs above the source's short side are skipped;
  // a source smaller than every rung gets one rendition at its own size. Public for tests.
  struct Plan {
    RungOptions rung;
    int width, height;
    double pixels() const { return static_cast<double>(width) * height; }
  };
  static std::vector<Plan> plan(const std::vector<RungOptions>& rungs, int width, int height);
  // The plans (by index) each worker thread encodes, on `cores` cores: one group per thread.
  static std::vector<std::vector<size_t>> rung_groups(const std::vector<Plan>& plans, int cores);

 private:
  using Clock = std::chrono::steady_clock;

  // The steps of run(), in order.
  void open_source();         // the demuxer and its video stream
  void seek_to_range();       // for a time range: video only, from the keyframe before its start
  void choose_device();       // the plans, and the device they run on (HwDevice::select)
  void open_decoding();       // video decoder, frame preparation, audio, output directories
  void demux_and_decode();    // every packet: video to the decoder, audio to the AAC encoder
  void end_of_input();        // flushes the decoder, the frame preparation and the audio
  void check_enough_decoded() const;
  void finish_rungs();        // the rungs flush their encoders and finish their files
  void fill_result();

  // The video path, per packet and per frame.
  void decode_video(const AVPacket* pkt);  // nullptr: end of stream
  void on_decoded(AVFrame* frame);         // the first frame confirms the device and opens the rungs
  void confirm_device(const AVFrame* first);
  void open_rungs();
  void to_rungs(AVFrame* prepared);        // every frame that leaves the frame preparation
  int64_t output_pts(const AVFrame* frame);  // on the output timeline, rising from frame to frame
  void report_progress(int64_t pts);

  // The audio path: held until the first video frame fixes output zero, then encoded once and
  // sent on.
  void on_audio_packet(AVPacket* pkt);
  void release_held_audio();
  void transcode_audio(int track, const AVPacket* pkt);  // nullptr: end of that track's stream
  void send_audio_to_rungs(int track, const AVPacket* aac);  // and to the track's HLS rendition

  // Throws when the job must end early: a cancel, or a rung that failed.
  void check_stop() const;
  // Stops the rung threads at once, finishing no file.
  void stop_rungs();

  // What the job was asked to do.
  MediaSource source_;
  const std::string& input_ = source_.path;  // names the source in messages
  std::string out_dir_;
  TranscodeOptions options_;
  ProgressFn progress_;
  CancelFlagPtr cancel_;

  // The job's state, set up by the steps in order.
  Clock::time_point started_;
  TranscodeResult result_;
  std::unique_ptr<Demuxer> demuxer_;
  AVStream* video_ = nullptr;  // owned by demuxer_
  AVRational frame_rate_{25, 1};  // the video's average (or, failing that, its base) rate
  AVRational sample_aspect_{1, 1};
  int threads_ = 1;
  std::vector<Plan> plans_;
  SourceVideo source_video_;
  HwChoice device_choice_;
  NvencLease nvenc_;
  std::unique_ptr<DeviceBackend> device_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<Timeline> timeline_;
  std::unique_ptr<AudioTracks> audio_;  // null when the outputs have no audio
  std::unique_ptr<ThumbnailSink> thumbnails_;   // poster and sprite sheets, when asked for
  std::unique_ptr<FramePrep> prep_;
  std::unique_ptr<KeyframeGrid> keyframes_;
  std::optional<TimeRange> range_;     // when only a part of the source is transcoded
  std::deque<UniquePacket> held_audio_;  // audio packets (of every track) before the first video frame
  UniquePacket packet_;

  bool rungs_open_ = false;
  int64_t frames_to_rungs_ = 0;
  int64_t last_pts_ = AV_NOPTS_VALUE;  // of the last frame handed to the rungs, output timeline
  double decode_s_ = 0, delivering_s_ = 0, audio_s_ = 0, audio_handoff_s_ = 0, last_report_ = -1;

  // The rungs, opened at the first decoded frame; declared last, so their threads stop and their
  // rungs go before anything they use (device, audio encoder, failure record).
  JobFailure failure_;
  std::vector<const Rung*> renditions_;  // in ladder order, for the result
  std::vector<std::unique_ptr<RungWorker>> rung_workers_;
};

}  // namespace fp
