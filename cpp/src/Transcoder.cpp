#include "framepress/Transcoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <numeric>
#include <thread>

#include "framepress/AudioTracks.h"
#include "framepress/Decoder.h"
#include "framepress/Demuxer.h"
#include "framepress/DeviceBackend.h"
#include "framepress/FramePrep.h"
#include "framepress/KeyframeGrid.h"
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
      progress_(std::move(progress)), cancel_(cancel ? std::move(cancel) : std::make_shared<CancelFlag>()),
      packet_(make_packet()) {}

Transcoder::~Transcoder() = default;

TranscodeResult Transcoder::run() {
  started_ = Clock::now();
  // Whatever ends the job early (cancel, a decode error, a failed rung), rung threads stop at once,
  // finishing no file.
  struct StopRungsOnExit {
    Transcoder& job;
    ~StopRungsOnExit() { job.stop_rungs(); }
  } stop_rungs_on_exit{*this};

  open_source();
  seek_to_range();
  choose_device();
  open_decoding();
  result_.seconds["open"] = since(started_);
  demux_and_decode();
  end_of_input();
  check_enough_decoded();
  finish_rungs();
  fill_result();
  return std::move(result_);
}

void Transcoder::open_source() {
  demuxer_ = std::make_unique<Demuxer>(source_, cancel_, /*probe=*/false);
  result_.source = demuxer_->info();
  video_ = demuxer_->video_stream();
  if (!video_) throw Error(ErrorKind::Input, "open", input_ + " has no video stream");
  if (video_->codecpar->width <= 0 || video_->codecpar->height <= 0)
    throw Error(ErrorKind::Input, "open", input_ + " has a video stream without dimensions");
  frame_rate_ = video_->avg_frame_rate.num ? video_->avg_frame_rate : video_->r_frame_rate;
  if (!frame_rate_.num || !frame_rate_.den) frame_rate_ = AVRational{25, 1};
  result_.fps = av_q2d(frame_rate_);
  sample_aspect_ = video_->sample_aspect_ratio.num ? video_->sample_aspect_ratio : video_->codecpar->sample_aspect_ratio;
  if (!sample_aspect_.num) sample_aspect_ = AVRational{1, 1};
}

// Output zero stays the source's first video frame, and the keyframe grid the source's, so a range's
// outputs continue those of the range before it.
void Transcoder::seek_to_range() {
  if (!options_.ranged) return;
  demuxer_->drop_audio();
  range_ = TimeRange::of_seconds(demuxer_->video_start(), video_->time_base, options_.start, options_.end);
  demuxer_->seek_video(range_->start());
}

// Only the rungs the plan keeps count: they open encoders (and NVENC sessions).
void Transcoder::choose_device() {
  plans_ = plan(options_.rungs, video_->codecpar->width, video_->codecpar->height);
  std::vector<VideoCodec> planned_codecs;
  for (const auto& p : plans_) planned_codecs.push_back(p.rung.codec);
  source_video_ = HwDevice::describe(video_->codecpar);
  device_choice_ = HwDevice::select(options_.hwaccel, source_video_, planned_codecs, nvenc_);
  device_ = DeviceBackend::for_mode(device_choice_.mode);
  result_.hwaccel_used = device_choice_.mode;
  result_.hwaccel_reason = device_choice_.reason;
}

void Transcoder::open_decoding() {
  threads_ = options_.threads > 0 ? options_.threads : cores();
  decoder_ = std::make_unique<Decoder>(video_, decoder_threads(threads_), device_->decoder_device());
  timeline_ = std::make_unique<Timeline>(demuxer_->clock_may_jump(), demuxer_->video_index());
  keyframes_ = std::make_unique<KeyframeGrid>(options_.gop_seconds);
  if (range_) {
    timeline_->start_at(demuxer_->video_start(), video_->time_base);
    keyframes_->anchor_at(0);
  }
  audio_ = std::make_unique<AudioTracks>(*demuxer_, options_.audio, options_.audio_bitrate, *timeline_, result_.audio);
  if (audio_->empty()) audio_.reset();
  // Deinterlacing and tone mapping, once per frame for every rung; nothing for ordinary sources.
  // HDR is tone-mapped no larger than the largest rung (the plans all have the source's aspect).
  const auto largest = std::max_element(plans_.begin(), plans_.end(),
                                        [](const Plan& a, const Plan& b) { return a.pixels() < b.pixels(); });
  prep_ = std::make_unique<FramePrep>(video_, largest != plans_.end() ? largest->width : 0,
                                      largest != plans_.end() ? largest->height : 0);
  for (const std::string& dir : {out_dir_, out_dir_ + "/hls"}) {
    std::error_code ec;
    if ((dir == out_dir_ || options_.hls) && !std::filesystem::create_directories(dir, ec) && ec)
      throw Error(ErrorKind::Output, "prepare output", "cannot create " + dir + ": " + ec.message());
  }
  if (audio_ && options_.hls) audio_->open_renditions(out_dir_ + "/hls", options_.segment_seconds);
  if (options_.thumbnails.interval > 0)  // the poster a tenth of the way in, at most 10 s
    thumbnails_ = std::make_unique<ThumbnailSink>(out_dir_ + "/thumbs", options_.thumbnails, sample_aspect_,
                                                  std::min(10.0, demuxer_->duration_seconds() / 10),
                                                  Demuxer::rotation(video_));
}

void Transcoder::demux_and_decode() {
  AVPacket* pkt = packet_.get();
  while (true) {
    check_stop();
    if (!demuxer_->read(pkt)) break;
    if (pkt->stream_index == demuxer_->video_index()) {
      timeline_->remove_jumps(pkt, video_->time_base);
      if (range_ && range_->past_end(pkt)) break;
      decode_video(pkt);
      if (timeline_->started()) release_held_audio();
    } else if (audio_ && audio_->track_of(pkt->stream_index) >= 0) {
      on_audio_packet(pkt);
    }
    av_packet_unref(pkt);
  }
}

void Transcoder::end_of_input() {
  decode_video(nullptr);
  prep_->flush([this](AVFrame* f) { to_rungs(f); });
  if (!audio_) return;
  if (timeline_->started()) {
    release_held_audio();
    for (int track = 0; track < static_cast<int>(audio_->encoders().size()); ++track) transcode_audio(track, nullptr);
  }
  result_.audio = audio_->report();
}

void Transcoder::check_enough_decoded() const {
  if (range_ && frames_to_rungs_ == 0 && decoder_->corrupt_packets() == 0)
    throw Error(ErrorKind::Input, "decode", input_ + " has no video frame in the range asked for");
  if (frames_to_rungs_ == 0)
    throw Error(ErrorKind::Input, "decode",
                input_ + ": no video frame could be decoded (corrupt or truncated)" +
                    (decoder_->last_error().empty() ? "" : ": " + decoder_->last_error()),
                decoder_->last_error());
  if (mostly_corrupt(decoder_->corrupt_packets(), frames_to_rungs_))
    throw Error(ErrorKind::Input, "decode",
                input_ + ": " + std::to_string(decoder_->corrupt_packets()) + " corrupt video packets against " +
                    std::to_string(frames_to_rungs_) + " frames",
                decoder_->last_error());
}

void Transcoder::finish_rungs() {
  if (std::string cut = demuxer_->truncation(); !cut.empty()) result_.warnings.push_back(cut);
  for (auto& r : rung_workers_) r->finish_input();
  for (auto& r : rung_workers_) r->join();
  check_stop();
  if (thumbnails_) result_.thumbnails = thumbnails_->finish();
  if (audio_) result_.audio_renditions = audio_->finish_renditions();
}

void Transcoder::fill_result() {
  result_.decoded_frames = frames_to_rungs_;
  double scale_s = 0, encode_s = 0, mux_s = 0, quality_s = 0;
  for (const Rung* r : renditions_) {
    result_.renditions.push_back(r->result());
    scale_s += r->scale_seconds();
    encode_s += r->encode_seconds();
    mux_s += r->mux_seconds();
    quality_s += r->quality_seconds();
    if (std::string warning = r->quality_warning(); !warning.empty()) result_.warnings.push_back(warning);
  }
  if (options_.quality) result_.seconds["quality"] = quality_s;
  result_.seconds["decode"] = decode_s_;
  result_.seconds["prepare"] = prep_->seconds();
  result_.seconds["audio"] = audio_s_ - audio_handoff_s_;
  result_.seconds["scale"] = scale_s;
  result_.seconds["encode"] = encode_s;
  result_.seconds["mux"] = mux_s;
  result_.seconds["total"] = since(started_);
  if (progress_) progress_(1.0, frames_to_rungs_, since(started_));
}

// Decoding time leaves out what the frames' delivery (preparation, waiting on the rungs) took.
void Transcoder::decode_video(const AVPacket* pkt) {
  const auto t0 = Clock::now();
  delivering_s_ = 0;
  decoder_->decode(pkt, [this](AVFrame* f) {
    const auto t1 = Clock::now();
    on_decoded(f);
    delivering_s_ += since(t1);
  });
  decode_s_ += since(t0) - delivering_s_;
}

void Transcoder::on_decoded(AVFrame* frame) {
  if (!rungs_open_) {
    confirm_device(frame);
    open_rungs();
  }
  prep_->push(frame, [this](AVFrame* f) { to_rungs(f); });
}

// What the decoder really did, and what the first frame says of the source: NVDEC may have
// refused the stream when it opened, and a frame may need preparing on the CPU that the header
// did not announce. The rungs open after this, on the backend that really runs.
void Transcoder::confirm_device(const AVFrame* first) {
  note_pixel_format(result_.source, demuxer_->video_index(), first);
  const HwChoice confirmed = HwDevice::confirm(device_choice_, options_.hwaccel,
                                               HwDevice::as_decoded(source_video_, first), decoder_->ctx()->pix_fmt);
  if (confirmed.mode != device_choice_.mode) device_ = DeviceBackend::for_mode(confirmed.mode);
  if (confirmed.mode != DeviceMode::Cuda) nvenc_ = NvencLease();
  device_choice_ = confirmed;
  result_.hwaccel_used = confirmed.mode;
  result_.hwaccel_reason = confirmed.reason;
}

void Transcoder::open_rungs() {
  RungSetup setup;
  setup.out_dir = out_dir_;
  setup.hls = options_.hls;
  // A range from the very start is written as a whole source is (its first decode times below
  // zero are shifted to zero there, as they are for the whole), so its segments match the whole's.
  setup.later_part = range_.has_value() && options_.start > 0;
  setup.gop_seconds = options_.gop_seconds;
  setup.segment_seconds = options_.segment_seconds;
  setup.time_base = video_->time_base;
  setup.frame_rate = frame_rate_;
  setup.sample_aspect = sample_aspect_;
  setup.display_matrix = Demuxer::display_matrix(video_);
  if (audio_) {
    setup.audio = audio_->encoders();
    setup.audio_languages = audio_->languages();
  }
  setup.device = device_.get();
  setup.quality = options_.quality;

  double ladder_pixels = 0;
  for (const auto& p : plans_) ladder_pixels += p.pixels();
  renditions_.assign(plans_.size(), nullptr);
  for (const auto& group : rung_groups(plans_, threads_)) {
    std::vector<std::unique_ptr<Rung>> members;
    for (size_t i : group) {
      const Plan& p = plans_[i];
      setup.encoder_threads = encoder_threads(threads_, p.pixels() / ladder_pixels, group.size() == 1);
      members.push_back(std::make_unique<Rung>(p.rung, p.width, p.height, setup));
      renditions_[i] = members.back().get();
    }
    rung_workers_.push_back(std::make_unique<RungWorker>(std::move(members), failure_));
  }
  for (auto& r : rung_workers_) r->start();
  rungs_open_ = true;
}

// Every frame goes to every rung as it is (a new reference, no copy): the rungs scale it on the
// device it is on (see DeviceBackend).
void Transcoder::to_rungs(AVFrame* prepared) {
  if (range_ && !range_->contains(prepared->best_effort_timestamp)) return;
  prepared->pts = output_pts(prepared);
  const bool key = keyframes_->advance_to(prepared->pts, video_->time_base);
  if (thumbnails_) thumbnails_->push(prepared, prepared->pts * av_q2d(video_->time_base));
  ++frames_to_rungs_;
  for (auto& r : rung_workers_) {
    RungItem item;
    item.frame = ref_frame(prepared);
    item.keyframe = key;
    if (!r->push(std::move(item))) check_stop();
  }
  check_stop();
  report_progress(prepared->pts);
}

int64_t Transcoder::output_pts(const AVFrame* frame) {
  int64_t pts = frame->best_effort_timestamp;
  if (!timeline_->started()) timeline_->start_at(pts != AV_NOPTS_VALUE ? pts : 0, video_->time_base);
  if (pts != AV_NOPTS_VALUE) pts = timeline_->to_output(pts, video_->time_base);
  if (pts == AV_NOPTS_VALUE) pts = last_pts_ == AV_NOPTS_VALUE ? 0 : last_pts_ + 1;
  if (last_pts_ != AV_NOPTS_VALUE && pts <= last_pts_) pts = last_pts_ + 1;  // encoders need rising pts
  last_pts_ = pts;
  return pts;
}

void Transcoder::report_progress(int64_t pts) {
  const double elapsed = since(started_);
  if (!progress_ || elapsed - last_report_ < 0.1) return;
  last_report_ = elapsed;
  double duration = demuxer_->duration_seconds();
  double t = pts * av_q2d(video_->time_base);
  if (range_) {  // the part of the range done
    t -= options_.start;
    duration = (options_.end > options_.start ? std::min(options_.end, duration) : duration) - options_.start;
  }
  progress_(duration > 0 ? std::clamp(t / duration, 0.0, 1.0) : 0.0, frames_to_rungs_, elapsed);
}

// Audio is placed on the output timeline, which starts at the first video frame.
void Transcoder::on_audio_packet(AVPacket* pkt) {
  const int track = audio_->track_of(pkt->stream_index);
  timeline_->remove_jumps(pkt, audio_->stream(track)->time_base);
  if (timeline_->started()) return transcode_audio(track, pkt);
  UniquePacket held = make_packet();
  av_packet_move_ref(held.get(), pkt);
  if (held_audio_.size() == kMaxHeldAudioPackets) held_audio_.pop_front();
  held_audio_.push_back(std::move(held));
}

void Transcoder::release_held_audio() {
  for (; !held_audio_.empty(); held_audio_.pop_front())
    transcode_audio(audio_->track_of(held_audio_.front()->stream_index), held_audio_.front().get());
}

void Transcoder::transcode_audio(int track, const AVPacket* pkt) {
  const auto t0 = Clock::now();
  try {
    audio_->push(track, pkt, [this](int t, const AVPacket* aac) { send_audio_to_rungs(t, aac); });
  } catch (const Error& e) {
    if (e.kind != ErrorKind::Input) throw;  // a corrupt audio packet is skipped, not fatal
  }
  audio_s_ += since(t0);
}

void Transcoder::send_audio_to_rungs(int track, const AVPacket* aac) {
  audio_->write_rendition(track, aac);
  const auto t0 = Clock::now();
  for (auto& r : rung_workers_) {
    RungItem item;
    item.audio = make_packet();
    check(av_packet_ref(item.audio.get(), aac), ErrorKind::Output, "mux", "out of memory");
    item.audio->stream_index = track;  // which of the rung's audio streams it goes to
    if (!r->push(std::move(item))) check_stop();
  }
  audio_handoff_s_ += since(t0);  // waiting on busy workers is not audio work
}

void Transcoder::check_stop() const {
  if (cancel_->cancelled.load()) throw Error(ErrorKind::Cancelled, "transcode", "cancelled");
  if (failure_.failed()) std::rethrow_exception(failure_.first());
}

void Transcoder::stop_rungs() {
  for (auto& r : rung_workers_) r->stop();
  for (auto& r : rung_workers_) r->join();
}

}  // namespace fp
