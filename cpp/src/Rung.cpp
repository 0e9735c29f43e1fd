#include "framepress/Rung.h"

#include <chrono>
#include <filesystem>

#include "framepress/error.h"

namespace fp {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

Rung::Rung(RungOptions rung, int width, int height, const RungSetup& setup)
    : rung_(std::move(rung)), width_(width), height_(height), setup_(setup),
      scaler_(setup.device->rung_scaler(width, height, setup.time_base)), packet_(make_packet()) {}

void Rung::finish() {
  if (!encoder_) return;
  auto t0 = Clock::now();
  encoder_->send(nullptr);
  drain();
  if (quality_) quality_->finish();
  encode_s_ += since(t0);
  auto t1 = Clock::now();
  mp4_->finish();
  if (hls_) hls_->finish();
  mux_s_ += since(t1);
  // x264 logs its PSNR and SSIM when it closes: close it now, while its figures are awaited.
  if (encoder_stats_) {
    auto t2 = Clock::now();
    encoder_.reset();
    encoder_stats_->stop();
    encode_s_ += since(t2);
  }
}

void Rung::open(const AVFrame* first) {
  EncoderSetup encoding;
  encoding.nvenc_frames = setup_.device->encoder_frames(first);
  encoding.width = width_;
  encoding.height = height_;
  encoding.sample_aspect = setup_.sample_aspect;
  encoding.time_base = setup_.time_base;
  encoding.frame_rate = setup_.frame_rate;
  encoding.threads = setup_.encoder_threads;
  encoding.gop_seconds = setup_.gop_seconds;
  encoding.color_from = first;
  encoding.mid_stream = setup_.later_part;
  encoding.measure_quality = setup_.quality && Encoder::self_measures(rung_.codec, encoding.nvenc_frames);
  encoder_ = std::make_unique<Encoder>(rung_, encoding);
  codec_string_ = encoder_->codec_string();
  if (encoding.measure_quality)
    encoder_stats_ = std::make_unique<EncoderLogStats>(encoder_->ctx());
  else if (setup_.quality)
    quality_ = std::make_unique<QualityMeter>(encoder_->ctx());

  mp4_ = std::make_unique<Muxer>(setup_.out_dir + "/" + rung_.name + ".mp4", "mp4",
                                 std::map<std::string, std::string>{{"movflags", "+faststart"}});
  mp4_video_ = mp4_->add_stream(encoder_->ctx(), setup_.display_matrix);
  for (size_t t = 0; t < setup_.audio.size(); ++t) {
    mp4_audio_.push_back(mp4_->add_stream(setup_.audio[t]));
    mp4_->set_language(mp4_audio_.back(), setup_.audio_languages.at(t));
  }
  mp4_->write_header();
  if (setup_.hls) {
    const std::string dir = setup_.out_dir + "/hls";
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", setup_.segment_seconds);
    std::map<std::string, std::string> options{{"hls_time", seconds},
                                               {"hls_playlist_type", "vod"},
                                               {"hls_segment_type", "fmp4"},
                                               {"hls_fmp4_init_filename", rung_.name + "_init.mp4"},
                                               {"hls_segment_filename", dir + "/" + rung_.name + "_%05d.m4s"},
                                               {"hls_flags", "independent_segments"}};
    if (setup_.later_part) options["hls_segment_options"] = "movflags=+frag_discont";
    hls_ = std::make_unique<Muxer>(dir + "/" + rung_.name + ".m3u8", "hls", options);
    hls_video_ = hls_->add_stream(encoder_->ctx(), setup_.display_matrix);
    hls_->write_header();
  }
  for (auto& pkt : pending_audio_) write_audio(pkt.get());
  pending_audio_.clear();
}

void Rung::encode(const AVFrame* frame, bool keyframe) {
  auto t0 = Clock::now();
  UniqueFrame scaled = scaler_->scale(frame);
  if (!encoder_) open(scaled.get());
  scaled->pts = frame->pts;
  scaled->pict_type = keyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  scaled->sample_aspect_ratio = setup_.sample_aspect;
  auto t1 = Clock::now();
  scale_s_ += std::chrono::duration<double>(t1 - t0).count();
  if (first_pts_ == AV_NOPTS_VALUE) first_pts_ = frame->pts;
  last_pts_ = frame->pts;
  ++frames_;
  if (quality_) quality_->reference(scaled.get());
  encoder_->send(scaled.get());
  scaled.reset();
  drain();
  encode_s_ += since(t1);
}

void Rung::drain() {
  while (encoder_->receive(packet_.get())) {
    auto t0 = Clock::now();
    const AVRational tb = encoder_->ctx()->time_base;
    mp4_->write(packet_.get(), mp4_video_, tb);
    if (hls_) hls_->write(packet_.get(), hls_video_, tb);
    if (quality_) quality_->encoded(packet_.get());
    av_packet_unref(packet_.get());
    mux_s_ += since(t0);
  }
}

void Rung::write_audio(const AVPacket* pkt) {
  if (!mp4_) {
    UniquePacket copy = make_packet();
    check(av_packet_ref(copy.get(), pkt), ErrorKind::Output, "mux", "out of memory");
    pending_audio_.push_back(std::move(copy));
    return;
  }
  auto t0 = Clock::now();
  mp4_->write(pkt, mp4_audio_.at(pkt->stream_index), setup_.audio.at(pkt->stream_index)->time_base);
  mux_s_ += since(t0);
}

std::string Rung::quality_warning() const {
  if (!encoder_stats_ || encoder_stats_->complete()) return "";
  return "rendition " + rung_.name + ": x264 logged no PSNR and SSIM summary (is FFmpeg's log routed elsewhere?); "
         "its quality is reported as 0";
}

RenditionResult Rung::result() const {
  RenditionResult r;
  r.name = rung_.name;
  r.path = setup_.out_dir + "/" + rung_.name + ".mp4";
  if (setup_.hls) r.playlist = setup_.out_dir + "/hls/" + rung_.name + ".m3u8";
  r.codec = name_of(rung_.codec);
  r.codec_string = codec_string_;
  r.width = width_;
  r.height = height_;
  r.frames = frames_;
  r.has_audio = !setup_.audio.empty();
  std::error_code ec;
  auto size = std::filesystem::file_size(r.path, ec);
  r.bytes = ec ? 0 : static_cast<int64_t>(size);
  // Duration from the frames' own timestamps plus one nominal frame.
  double duration = 0;
  if (frames_ > 0) {
    double frame = setup_.frame_rate.num ? 1.0 / av_q2d(setup_.frame_rate) : 0;
    duration = (last_pts_ - first_pts_) * av_q2d(setup_.time_base) + frame;
  }
  r.bitrate = duration > 0 ? static_cast<int64_t>(r.bytes * 8 / duration) : 0;
  if (quality_) {
    r.psnr = quality_->psnr();
    r.ssim = quality_->ssim();
  } else if (encoder_stats_) {
    r.psnr = encoder_stats_->psnr();
    r.ssim = encoder_stats_->ssim();
  }
  // The encoder's speed: measuring quality (inside encode and mux time) is not encoding.
  double busy = scale_s_ + encode_s_ + mux_s_ - quality_seconds();
  r.encode_fps = busy > 0 ? frames_ / busy : 0;
  return r;
}

}  // namespace fp
