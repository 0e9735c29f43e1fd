#include "framepress/QualityMeter.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "framepress/error.h"

namespace fp {

namespace {

using Clock = std::chrono::steady_clock;

struct ParametersDeleter {
  void operator()(AVCodecParameters* p) const { avcodec_parameters_free(&p); }
};

// SSIM of one 8-bit plane as FFmpeg's ssim filter computes it: statistics of 4x4 blocks, summed
// over windows of 2x2 blocks (8x8 pixels) that step by 4, averaged over the windows.
double plane_ssim(const uint8_t* a, int a_stride, const uint8_t* b, int b_stride, int width, int height) {
  const int bw = width / 4, bh = height / 4;
  if (bw < 2 || bh < 2) return 1.0;
  struct Sums {
    int64_t s1, s2, ss, s12;
  };
  std::vector<Sums> blocks(static_cast<size_t>(bw) * bh);
  for (int by = 0; by < bh; ++by)
    for (int bx = 0; bx < bw; ++bx) {
      Sums s{0, 0, 0, 0};
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) {
          const int pa = a[(by * 4 + y) * a_stride + bx * 4 + x], pb = b[(by * 4 + y) * b_stride + bx * 4 + x];
          s.s1 += pa;
          s.s2 += pb;
          s.ss += pa * pa + pb * pb;
          s.s12 += pa * pb;
        }
      blocks[static_cast<size_t>(by) * bw + bx] = s;
    }
  constexpr double c1 = .01 * .01 * 255 * 255 * 64, c2 = .03 * .03 * 255 * 255 * 64 * 63;
  double total = 0;
  for (int by = 0; by + 1 < bh; ++by)
    for (int bx = 0; bx + 1 < bw; ++bx) {
      Sums w{0, 0, 0, 0};
      for (int dy = 0; dy < 2; ++dy)
        for (int dx = 0; dx < 2; ++dx) {
          const Sums& s = blocks[static_cast<size_t>(by + dy) * bw + bx + dx];
          w.s1 += s.s1;
          w.s2 += s.s2;
          w.ss += s.ss;
          w.s12 += s.s12;
        }
      const double s1 = w.s1, s2 = w.s2;
      const double vars = w.ss * 64.0 - s1 * s1 - s2 * s2;
      const double covar = w.s12 * 64.0 - s1 * s2;
      total += (2 * s1 * s2 + c1) * (2 * covar + c2) / ((s1 * s1 + s2 * s2 + c1) * (vars + c2));
    }
  return total / ((bw - 1.0) * (bh - 1.0));
}

}  // namespace

QualityMeter::QualityMeter(const AVCodecContext* encoder) : frame_(make_frame()) {
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

void QualityMeter::compare(const AVFrame* a, const AVFrame* b) {
  double ssim = 0, weights = 0;
  for (int plane = 0; plane < 3; ++plane) {
    const int w = plane ? (a->width + 1) / 2 : a->width, h = plane ? (a->height + 1) / 2 : a->height;
    for (int y = 0; y < h; ++y) {
      const uint8_t* ra = a->data[plane] + y * a->linesize[plane];
      const uint8_t* rb = b->data[plane] + y * b->linesize[plane];
      int64_t row = 0;
      for (int x = 0; x < w; ++x) {
        const int d = ra[x] - rb[x];
        row += d * d;
      }
      squared_error_ += static_cast<double>(row);
    }
    samples_ += static_cast<double>(w) * h;
    ssim += plane_ssim(a->data[plane], a->linesize[plane], b->data[plane], b->linesize[plane], w, h) * w * h;
    weights += static_cast<double>(w) * h;
  }
  ssim_sum_ += ssim / weights;
  ++frames_;
}

double QualityMeter::psnr() const {
  if (samples_ == 0) return 0;
  const double mse = squared_error_ / samples_;
  return mse > 0 ? 10 * std::log10(255.0 * 255.0 / mse) : 100.0;
}

double QualityMeter::ssim() const { return frames_ ? ssim_sum_ / frames_ : 0; }

}  // namespace fp
