#include "framepress/Transcoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <numeric>
#include <thread>

#include "framepress/AudioRendition.h"
#include "framepress/AudioTranscoder.h"
#include "framepress/Decoder.h"
#include "framepress/Demuxer.h"
#include "framepress/FramePrep.h"
#include "framepress/HwDevice.h"
#include "framepress/KeyframeGrid.h"
#include "framepress/RungWorker.h"
#include "framepress/ThumbnailSink.h"
#include "framepress/Timeline.h"
#include "framepress/error.h"

namespace fp {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int even(double v) { return std::max(2, static_cast<int>(std::lround(v / 2.0)) * 2); }

// CPUs this process may run on (affinity-aware, unlike hardware_concurrency).
int cores() { return std::max(1, av_cpu_count()); }

// Encoder threads for a rung with a worker thread of its own: the share of the cores its pixels
// are of the ladder's, at least one. Rungs that share a worker get one each. A single x264 thread
// does the least work per frame; several split a frame into slices or (beyond four) encode frames
// in parallel. FRAMEPRESS_ENCODER_THREADS overrides it.
int encoder_threads(int total, double pixel_share, bool own_worker) {
  if (const char* env = std::getenv("FRAMEPRESS_ENCODER_THREADS")) return std::max(0, std::atoi(env));
  return own_worker ? std::max(1, static_cast<int>(std::lround(total * pixel_share))) : 1;
}

// Decoding shares the cores with every encoder but feeds them all. Two frame threads at least:
// a source's first frames can be many times the average size, and one thread decoding them
// alone leaves every encoder waiting. Half the cores at most.
int decoder_threads(int total) { return total <= 1 ? 1 : std::max(2, total / 2); }

// Audio packets held back until the first video frame fixes output zero: they end before it or
// soon after. Past this many (a video stream that never decodes), the oldest go.
constexpr size_t kMaxHeldAudioPackets = 4096;

// Too many undecodable packets and the source is not worth a rendition.
bool mostly_corrupt(int64_t corrupt, int64_t decoded) { return corrupt > 0 && corrupt * 4 > decoded + 4; }

// The source's pixel format as decoded (the header alone may not say; for GPU frames, the format
// behind them).
void note_pixel_format(MediaInfo& source, int video_index, const AVFrame* frame) {
  auto format = static_cast<AVPixelFormat>(frame->format);
  if (frame->hw_frames_ctx) format = reinterpret_cast<const AVHWFramesContext*>(frame->hw_frames_ctx->data)->sw_format;
  const char* name = av_get_pix_fmt_name(format);
  for (auto& s : source.streams)
    if (s.index == video_index && s.pix_fmt.empty() && name) s.pix_fmt = name;
}

// The audio track in segments of its own, beside the video rungs' HLS.
std::unique_ptr<AudioRendition> open_audio_rendition(const std::string& hls_dir, const AudioTranscoder& audio,
                                                     const AudioResult& source, const TranscodeOptions& options) {
  AudioRenditionResult track;
  track.index = source.index;
  track.language = source.language;
  track.is_default = true;
  track.sample_rate = audio.encoder()->sample_rate;
  track.channels = audio.encoder()->ch_layout.nb_channels;
  return std::make_unique<AudioRendition>(hls_dir, "audio_0", audio.encoder(), options.segment_seconds, track);
}

}  // namespace

// A worker thread per rung while there are cores for them. With more rungs than cores, rungs share
// workers, packed so that every worker has about the same number of pixels to encode (largest
// first, each onto the lightest worker so far); a worker encodes its rungs one after another,
// frame by frame. On two cores the default ladder becomes 1080p on one worker and 720p, 480p and
// 360p on the other: two single-threaded encoders with about equal work keep both cores busy,
// without priorities between threads and without x264's frame threads, which cost quality.
std::vector<std::vector<size_t>> Transcoder::rung_groups(const std::vector<Plan>& plans, int cores) {
  std::vector<size_t> order(plans.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return plans[a].pixels() > plans[b].pixels(); });
  std::vector<std::vector<size_t>> groups(std::min(plans.size(), static_cast<size_t>(std::max(1, cores))));
  std::vector<double> load(groups.size(), 0);
  for (size_t i : order) {
    size_t lightest = std::min_element(load.begin(), load.end()) - load.begin();
    groups[lightest].push_back(i);
    load[lightest] += plans[i].pixels();
  }
  return groups;
}

std::vector<Transcoder::Plan> Transcoder::plan(const std::vector<RungOptions>& rungs, int width, int height) {
  std::vector<Plan> plans;
  const bool portrait = height > width;
  const int short_side = std::min(width, height);
  auto size_for = [&](int target_short) {
    double scale = static_cast<double>(target_short) / short_side;
    int w = portrait ? even(target_short) : even(width * scale);
    int h = portrait ? even(height * scale) : even(target_short);
    if (target_short >= short_side) {  // never upscale: the source size, rounded down to even
      w = std::max(2, width & ~1);
      h = std::max(2, height & ~1);
    }
    return std::pair<int, int>{w, h};
  };
  for (const auto& r : rungs) {
    if (r.height > short_side) continue;
    auto [w, h] = size_for(r.height);
    plans.push_back({r, w, h});
  }
  if (plans.empty() && !rungs.empty()) {
    // Smaller than every rung: one rendition at its own size with the lowest rung's settings.
    auto lowest = *std::min_element(rungs.begin(), rungs.end(),
                                     [](const RungOptions& a, const RungOptions& b) { return a.height < b.height; });
    auto [w, h] = size_for(short_side);
    lowest.name = std::to_string(std::min(w, h)) + "p";
    lowest.height = std::min(w, h);
    plans.push_back({lowest, w, h});
  }
  return plans;
}

Transcoder::Transcoder(std::string input, std::string out_dir, TranscodeOptions options, ProgressFn progress,
                       CancelFlagPtr cancel)
    : Transcoder(MediaSource{std::move(input)}, std::move(out_dir), std::move(options), std::move(progress),
                 std::move(cancel)) {}

Transcoder::Transcoder(MediaSource input, std::string out_dir, TranscodeOptions options, ProgressFn progress,
                       CancelFlagPtr cancel)
    : source_(std::move(input)), out_dir_(std::move(out_dir)), options_(std::move(options)),
      progress_(std::move(progress)), cancel_(cancel ? std::move(cancel) : std::make_shared<CancelFlag>()) {}

Transcoder::~Transcoder() = default;

TranscodeResult Transcoder::run() {
  const auto started = Clock::now();
  TranscodeResult result;
  Demuxer demuxer(source_, cancel_, /*probe=*/false);
  result.source = demuxer.info();
  AVStream* vst = demuxer.video_stream();
  if (!vst) throw Error(ErrorKind::Input, "open", input_ + " has no video stream");
  if (vst->codecpar->width <= 0 || vst->codecpar->height <= 0)
    throw Error(ErrorKind::Input, "open", input_ + " has a video stream without dimensions");

  // Only the rungs the plan keeps open encoders (and NVENC sessions).
  const auto plans = plan(options_.rungs, vst->codecpar->width, vst->codecpar->height);
  std::vector<std::string> planned_codecs;
  for (const auto& p : plans) planned_codecs.push_back(p.rung.codec);
  const SourceVideo source_video = HwDevice::describe(vst->codecpar);
  NvencLease nvenc;
  HwChoice hw = HwDevice::select(options_.hwaccel, source_video, planned_codecs, nvenc);
  result.hwaccel_used = hw.mode;
  result.hwaccel_reason = hw.reason;

  const int threads = options_.threads > 0 ? options_.threads : cores();
  Decoder decoder(vst, decoder_threads(threads), hw.mode == "cpu" ? nullptr : HwDevice::cuda());
  Timeline timeline(demuxer.clock_may_jump(), demuxer.video_index());
  std::unique_ptr<AudioTranscoder> audio;
  if (demuxer.audio_stream())
    audio = AudioTranscoder::open(demuxer.audio_stream(), options_.audio_bitrate, result.source, timeline,
                                  result.audio);

  for (const std::string& dir : {out_dir_, out_dir_ + "/hls"}) {
    std::error_code ec;
    if ((dir == out_dir_ || options_.hls) && !std::filesystem::create_directories(dir, ec) && ec)
      throw Error(ErrorKind::Output, "prepare output", "cannot create " + dir + ": " + ec.message());
  }

  std::unique_ptr<AudioRendition> audio_hls;
  if (audio && options_.hls) audio_hls = open_audio_rendition(out_dir_ + "/hls", *audio, result.audio, options_);

  AVRational frame_rate = vst->avg_frame_rate.num ? vst->avg_frame_rate : vst->r_frame_rate;
  if (!frame_rate.num || !frame_rate.den) frame_rate = AVRational{25, 1};
  result.fps = av_q2d(frame_rate);
  AVRational sar = vst->sample_aspect_ratio.num ? vst->sample_aspect_ratio : vst->codecpar->sample_aspect_ratio;
  if (!sar.num) sar = AVRational{1, 1};
  std::unique_ptr<ThumbnailSink> thumbnails;  // the poster a tenth of the way in, at most 10 s
  if (options_.thumbnails.interval > 0)
    thumbnails = std::make_unique<ThumbnailSink>(out_dir_ + "/thumbs", options_.thumbnails, sar,
                                                 std::min(10.0, demuxer.duration_seconds() / 10));

  RungContext ctx;
  ctx.out_dir = out_dir_;
  ctx.hls = options_.hls;
  ctx.gop_seconds = options_.gop_seconds;
  ctx.segment_seconds = options_.segment_seconds;
  ctx.time_base = vst->time_base;
  ctx.frame_rate = frame_rate;
  ctx.sample_aspect = sar;
  ctx.display_matrix = Demuxer::display_matrix(vst);
  ctx.audio = audio ? audio->encoder() : nullptr;
  ctx.nvenc = hw.mode == "cuda";

  double ladder_pixels = 0;
  for (const auto& p : plans) ladder_pixels += p.pixels();
  JobFailure failure;
  std::vector<const Rung*> renditions(plans.size());  // in ladder order, for the result
  std::vector<std::unique_ptr<RungWorker>> rung_workers;
  for (const auto& group : rung_groups(plans, threads)) {
    std::vector<std::unique_ptr<Rung>> members;
    for (size_t i : group) {
      const Plan& p = plans[i];
      ctx.encoder_threads = encoder_threads(threads, p.pixels() / ladder_pixels, group.size() == 1);
      members.push_back(std::make_unique<Rung>(p.rung, p.width, p.height, ctx));
      renditions[i] = members.back().get();
    }
    rung_workers.push_back(std::make_unique<RungWorker>(std::move(members), failure));
  }
  for (auto& r : rung_workers) r->start();
  result.seconds["open"] = since(started);

  // Whatever ends the job early (cancel, a decode error, a failed rung), rung threads stop at once,
  // finishing no file, before this frame's objects go away.
  struct StopRungs {
    std::vector<std::unique_ptr<RungWorker>>& workers;
    ~StopRungs() {
      for (auto& r : workers) r->stop();
      for (auto& r : workers) r->join();
    }
  } stop_rungs{rung_workers};

  const double duration = demuxer.duration_seconds();
  KeyframeGrid keyframes(options_.gop_seconds);
  int64_t last_pts = AV_NOPTS_VALUE;
  int64_t decoded = 0;
  double decode_s = 0, audio_s = 0, audio_handoff_s = 0, last_report = -1;
  UniquePacket pkt = make_packet();

  auto check_stop = [&] {
    if (cancel_->cancelled.load()) throw Error(ErrorKind::Cancelled, "transcode", "cancelled");
    if (failure.failed()) std::rethrow_exception(failure.first());
  };

  // NVDEC frames go to the rungs as they are: each scales on the GPU (and downloads at its own,
  // smaller size when it encodes on the CPU).
  auto deliver = [&](AVFrame* src) {
    int64_t pts = src->best_effort_timestamp;
    if (!timeline.started()) timeline.start_at(pts != AV_NOPTS_VALUE ? pts : 0, vst->time_base);
    if (pts != AV_NOPTS_VALUE) pts = timeline.to_output(pts, vst->time_base);
    if (pts == AV_NOPTS_VALUE) pts = last_pts == AV_NOPTS_VALUE ? 0 : last_pts + 1;
    if (last_pts != AV_NOPTS_VALUE && pts <= last_pts) pts = last_pts + 1;  // encoders need rising pts
    last_pts = pts;
    src->pts = pts;
    const double t = pts * av_q2d(vst->time_base);
    const bool key = keyframes.advance_to(pts, vst->time_base);
    if (thumbnails) thumbnails->push(src, t);
    if (++decoded == 1) {
      note_pixel_format(result.source, demuxer.video_index(), src);
      // What the decoder really did: NVDEC may have refused the stream when it opened.
      hw = HwDevice::confirm(hw, options_.hwaccel, source_video, decoder.ctx()->pix_fmt);
      if (hw.mode == "cpu") nvenc = NvencLease();
      result.hwaccel_used = hw.mode;
      result.hwaccel_reason = hw.reason;
    }
    for (auto& r : rung_workers) {
      RungItem item;
      item.frame = ref_frame(src);
      item.keyframe = key;
      if (!r->push(std::move(item))) check_stop();
    }
    check_stop();
    double elapsed = since(started);
    if (progress_ && elapsed - last_report >= 0.1) {
      last_report = elapsed;
      double fraction = duration > 0 ? std::clamp(t / duration, 0.0, 1.0) : 0.0;
      progress_(fraction, decoded, elapsed);
    }
  };

  auto broadcast_audio = [&](const AVPacket* p) {
    if (audio_hls) audio_hls->write(p);
    const auto t0 = Clock::now();
    for (auto& r : rung_workers) {
      RungItem item;
      item.audio = make_packet();
      check(av_packet_ref(item.audio.get(), p), ErrorKind::Output, "mux", "out of memory");
      if (!r->push(std::move(item))) check_stop();
    }
    audio_handoff_s += since(t0);  // waiting on busy workers is not audio work
  };

  auto transcode_audio = [&](const AVPacket* p) {
    auto t0 = Clock::now();
    try {
      audio->push(p, broadcast_audio);
    } catch (const Error& e) {
      if (e.kind != ErrorKind::Input) throw;  // a corrupt audio packet is skipped, not fatal
    }
    audio_s += since(t0);
  };

  // Audio is placed on the output timeline, which starts at the first video frame.
  std::deque<UniquePacket> held_audio;
  auto release_held_audio = [&] {
    for (; !held_audio.empty(); held_audio.pop_front()) transcode_audio(held_audio.front().get());
  };

  // Deinterlacing and tone mapping, once per frame for every rung; nothing for ordinary sources.
  // HDR is tone-mapped no larger than the largest rung (the plans all have the source's aspect).
  const auto largest = std::max_element(plans.begin(), plans.end(),
                                        [](const Plan& a, const Plan& b) { return a.pixels() < b.pixels(); });
  FramePrep prep(vst, largest != plans.end() ? largest->width : 0, largest != plans.end() ? largest->height : 0);
  const FramePrep::Sink to_rungs = deliver;
  auto decode = [&](const AVPacket* p) {
    const auto t0 = Clock::now();
    double delivering = 0;
    decoder.decode(p, [&](AVFrame* f) {
      const auto t1 = Clock::now();
      prep.push(f, to_rungs);
      delivering += since(t1);
    });
    decode_s += since(t0) - delivering;
  };

  while (true) {
    check_stop();
    if (!demuxer.read(pkt.get())) break;
    if (pkt->stream_index == demuxer.video_index()) {
      timeline.remove_jumps(pkt.get(), vst->time_base);
      decode(pkt.get());
      if (timeline.started()) release_held_audio();
    } else if (audio && pkt->stream_index == demuxer.audio_index()) {
      timeline.remove_jumps(pkt.get(), demuxer.audio_stream()->time_base);
      if (timeline.started()) {
        transcode_audio(pkt.get());
      } else {
        UniquePacket held = make_packet();
        av_packet_move_ref(held.get(), pkt.get());
        if (held_audio.size() == kMaxHeldAudioPackets) held_audio.pop_front();
        held_audio.push_back(std::move(held));
      }
    }
    av_packet_unref(pkt.get());
  }
  decode(nullptr);
  prep.flush(to_rungs);
  if (audio) {
    if (timeline.started()) {
      release_held_audio();
      audio->push(nullptr, broadcast_audio);
    }
    result.audio = audio->report();
  }

  if (decoded == 0)
    throw Error(ErrorKind::Input, "decode",
                input_ + ": no video frame could be decoded (corrupt or truncated)" +
                    (decoder.last_error().empty() ? "" : ": " + decoder.last_error()),
                decoder.last_error());
  if (mostly_corrupt(decoder.corrupt_packets(), decoded))
    throw Error(ErrorKind::Input, "decode",
                input_ + ": " + std::to_string(decoder.corrupt_packets()) + " corrupt video packets against " +
                    std::to_string(decoded) + " frames",
                decoder.last_error());

  if (std::string cut = demuxer.truncation(); !cut.empty()) result.warnings.push_back(cut);

  for (auto& r : rung_workers) r->finish_input();
  for (auto& r : rung_workers) r->join();
  check_stop();

  if (thumbnails) result.thumbnails = thumbnails->finish();
  if (audio_hls) {
    audio_hls->finish();
    result.audio_renditions.push_back(audio_hls->result());
  }
  result.decoded_frames = decoded;
  double scale_s = 0, encode_s = 0, mux_s = 0;
  for (const Rung* r : renditions) {
    result.renditions.push_back(r->result());
    scale_s += r->scale_seconds();
    encode_s += r->encode_seconds();
    mux_s += r->mux_seconds();
  }
  result.seconds["decode"] = decode_s;
  result.seconds["prepare"] = prep.seconds();
  result.seconds["audio"] = audio_s - audio_handoff_s;
  result.seconds["scale"] = scale_s;
  result.seconds["encode"] = encode_s;
  result.seconds["mux"] = mux_s;
  result.seconds["total"] = since(started);
  if (progress_) progress_(1.0, decoded, since(started));
  return result;
}

}  // namespace fp
