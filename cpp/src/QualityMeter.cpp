#include "framepress/QualityMeter.h"

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
}

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "framepress/error.h"

namespace fp {

namespace {

using Clock = std::chrono::steady_clock;

struct ParametersDeleter {
  void operator()(AVCodecParameters* p) const { avcodec_parameters_free(&p); }
};

// A figure the filters put on the frame they pass on ("%f" text).
double metadata(const AVFrame* frame, const char* key) {
  const AVDictionaryEntry* entry = av_dict_get(frame->metadata, key, nullptr, 0);
  if (!entry) throw Error(ErrorKind::Encode, "quality", std::string("the quality filters gave no ") + key);
  return std::strtod(entry->value, nullptr);
}

}  // namespace

QualityMeter::QualityMeter(const AVCodecContext* encoder) : frame_(make_frame()), measured_(make_frame()) {
  const AVCodec* codec = avcodec_find_decoder(encoder->codec_id);
  if (!codec) throw Error(ErrorKind::Encode, "quality", "no decoder for the rendition's codec");
  dec_.reset(avcodec_alloc_context3(codec));
  if (!dec_) throw std::bad_alloc();
  std::unique_ptr<AVCodecParameters, ParametersDeleter> params(avcodec_parameters_alloc());
  if (!params) throw std::bad_alloc();
  check(avcodec_parameters_from_context(params.get(), encoder), ErrorKind::Encode, "quality", "out of memory");
  check(avcodec_parameters_to_context(dec_.get(), params.get()), ErrorKind::Encode, "quality", "out of memory");
  dec_->pkt_timebase = encoder->time_base;
  dec_->thread_count = 1;  // on the rung's own thread, beside its encoder
  check(avcodec_open2(dec_.get(), codec, nullptr), ErrorKind::Encode, "quality",
        "cannot open a decoder for the rendition");
  build_filters(encoder->width, encoder->height);
}

// The decoded frame goes through psnr and then ssim, each against the reference (split in two);
// what comes out is the decoded frame carrying both filters' figures.
void QualityMeter::build_filters(int width, int height) {
  graph_.reset(avfilter_graph_alloc());
  if (!graph_) throw std::bad_alloc();
  graph_->nb_threads = 1;  // on the rung's own thread, like the decoder
  auto add = [this](const char* filter, const char* name, const std::string& args) {
    const AVFilter* f = avfilter_get_by_name(filter);
    if (!f) throw Error(ErrorKind::Encode, "quality", std::string("this FFmpeg has no ") + filter + " filter");
    AVFilterContext* ctx = nullptr;
    check(avfilter_graph_create_filter(&ctx, f, name, args.empty() ? nullptr : args.c_str(), nullptr, graph_.get()),
          ErrorKind::Encode, "quality", std::string("cannot create the ") + filter + " filter");
    return ctx;
  };
  const std::string frames = "video_size=" + std::to_string(width) + "x" + std::to_string(height) +
                             ":pix_fmt=" + std::to_string(AV_PIX_FMT_YUV420P) + ":time_base=1/1:pixel_aspect=1/1";
  decoded_in_ = add("buffer", "decoded", frames);
  reference_in_ = add("buffer", "reference", frames);
  AVFilterContext* split = add("split", "split", "2");
  AVFilterContext* psnr = add("psnr", "psnr", "");
  AVFilterContext* ssim = add("ssim", "ssim", "");
  measured_out_ = add("buffersink", "measured", "");
  const struct {
    AVFilterContext* from;
    unsigned out;
    AVFilterContext* to;
    unsigned in;
  } links[] = {{decoded_in_, 0, psnr, 0}, {reference_in_, 0, split, 0}, {split, 0, psnr, 1},
               {psnr, 0, ssim, 0},        {split, 1, ssim, 1},           {ssim, 0, measured_out_, 0}};
  for (const auto& l : links)
    check(avfilter_link(l.from, l.out, l.to, l.in), ErrorKind::Encode, "quality", "cannot link the quality filters");
  check(avfilter_graph_config(graph_.get(), nullptr), ErrorKind::Encode, "quality",
        "cannot configure the quality filters");
}

void QualityMeter::reference(const AVFrame* frame) {
  if (frame->format != AV_PIX_FMT_YUV420P) return;  // GPU frames are not measured
  pending_[frame->pts] = ref_frame(frame);
}

void QualityMeter::encoded(const AVPacket* pkt) {
  const auto t0 = Clock::now();
  check(avcodec_send_packet(dec_.get(), pkt), ErrorKind::Encode, "quality", "cannot decode the rendition");
  receive();
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

void QualityMeter::finish() {
  const auto t0 = Clock::now();
  if (avcodec_send_packet(dec_.get(), nullptr) >= 0) receive();
  pending_.clear();
  check(av_buffersrc_add_frame_flags(decoded_in_, nullptr, 0), ErrorKind::Encode, "quality",
        "cannot end the quality filters");
  check(av_buffersrc_add_frame_flags(reference_in_, nullptr, 0), ErrorKind::Encode, "quality",
        "cannot end the quality filters");
  collect();
  seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

void QualityMeter::receive() {
  while (avcodec_receive_frame(dec_.get(), frame_.get()) >= 0) {
    auto ref = pending_.find(frame_->pts);
    if (ref != pending_.end() && frame_->format == AV_PIX_FMT_YUV420P) {
      compare(ref->second.get(), frame_.get());
      pending_.erase(pending_.begin(), std::next(ref));  // earlier ones will not come back
    }
    av_frame_unref(frame_.get());
  }
}

void QualityMeter::compare(AVFrame* reference, AVFrame* decoded) {
  // The pair shares one timestamp, a count: the filters pair frames by timestamp.
  reference->pts = decoded->pts = pairs_++;
  check(av_buffersrc_add_frame_flags(decoded_in_, decoded, 0), ErrorKind::Encode, "quality",
        "cannot measure a decoded frame");
  check(av_buffersrc_add_frame_flags(reference_in_, reference, 0), ErrorKind::Encode, "quality",
        "cannot measure a decoded frame");
  collect();
}

void QualityMeter::collect() {
  while (true) {
    const int ret = av_buffersink_get_frame(measured_out_, measured_.get());
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
    check(ret, ErrorKind::Encode, "quality", "cannot measure a decoded frame");
    mse_sum_ += metadata(measured_.get(), "lavfi.psnr.mse_avg");
    ssim_sum_ += metadata(measured_.get(), "lavfi.ssim.All");
    ++frames_;
    av_frame_unref(measured_.get());
  }
}

// As the psnr filter's "average": from the mean of the frames' mean squared errors.
double QualityMeter::psnr() const {
  if (frames_ == 0) return 0;
  const double mse = mse_sum_ / frames_;
  return mse > 0 ? 10 * std::log10(255.0 * 255.0 / mse) : 100.0;
}

double QualityMeter::ssim() const { return frames_ ? ssim_sum_ / frames_ : 0; }

}  // namespace fp
