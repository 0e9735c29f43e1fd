#include "framepress/FramePrep.h"

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
}

#include <algorithm>
#include <chrono>

#include "framepress/error.h"

namespace fp {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool hdr(const AVFrame* f) { return FramePrep::hdr_transfer(f->color_trc); }

// One output frame per input frame. When only the container says the video is interlaced, every
// frame is deinterlaced in the field order it gives; otherwise only the frames flagged
// interlaced, in their own field order (a broadcast stream can mix both kinds).
std::string deinterlacer(int container) {
  if (!FramePrep::interlaced_order(container)) return "bwdif=mode=send_frame:parity=auto:deint=interlaced";
  // TB and BT: coded in one order, displayed in the other; what counts is the displayed first field.
  const bool top_first = container == AV_FIELD_TT || container == AV_FIELD_BT;
  return std::string("bwdif=mode=send_frame:deint=all:parity=") + (top_first ? "tff" : "bff");
}

// PQ or HLG to BT.709 SDR: linear light (100 nits as SDR white), BT.709 primaries, Mobius's
// curve (keeps in-range tones and contrast and rolls highlights off instead of clipping them;
// Hable's darkens the whole picture by a third), then BT.709 transfer and matrix, limited-range
// 8-bit 4:2:0. zscale reads the source's colour properties from each frame; those left
// unspecified are taken to be BT.2020's, as in every HDR format (zscale's own input options would
// not carry over to its output). A picture larger than `max_width`x`max_height` is scaled down in
// the first step (zimg resizes before it converts: everything after runs on fewer pixels) with
// the rung scalers' bicubic.
std::string tone_mapper(const AVFrame* f, int max_width, int max_height) {
  std::string fill;
  if (f->color_primaries == AVCOL_PRI_UNSPECIFIED) fill += ":color_primaries=bt2020";
  if (f->colorspace == AVCOL_SPC_UNSPECIFIED) fill += ":colorspace=bt2020nc";
  std::string size;
  if (max_width > 0 && max_height > 0 && (f->width > max_width || f->height > max_height))
    size = "w=" + std::to_string(max_width) + ":h=" + std::to_string(max_height) +
           ":f=bicubic:param_a=0:param_b=0.6:";
  return (fill.empty() ? "" : "setparams=" + fill.substr(1) + ",") + "zscale=" + size +
         "t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=mobius:desat=0,"
         "zscale=t=bt709:m=bt709:r=tv,format=yuv420p";
}

// The filters of `chain` this FFmpeg does not have (zscale needs an FFmpeg built with libzimg).
std::string missing_filters(const std::string& chain) {
  std::string missing;
  size_t start = 0;
  while (start < chain.size()) {
    size_t end = chain.find(',', start);
    if (end == std::string::npos) end = chain.size();
    const std::string name = chain.substr(start, std::min(chain.find('=', start), end) - start);
    if (!avfilter_get_by_name(name.c_str()) && missing.find(name) == std::string::npos)
      missing += (missing.empty() ? "" : ", ") + name;
    start = end + 1;
  }
  return missing;
}

}  // namespace

bool FramePrep::hdr_transfer(int trc) {
  return trc == AVCOL_TRC_SMPTE2084 || trc == AVCOL_TRC_ARIB_STD_B67;
}

bool FramePrep::interlaced_order(int order) {
  return order == AV_FIELD_TT || order == AV_FIELD_BB || order == AV_FIELD_TB || order == AV_FIELD_BT;
}

FramePrep::FramePrep(const AVStream* stream, int max_width, int max_height)
    : time_base_(stream->time_base), container_field_order_(enum_value(stream->codecpar->field_order)),
      max_width_(max_width), max_height_(max_height) {}

std::string FramePrep::chain_for(const AVFrame* frame) const {
  std::string chain;
  if (interlaced_ || frame->interlaced_frame || interlaced_order(container_field_order_))
    chain = deinterlacer(container_field_order_);
  if (hdr(frame)) chain += (chain.empty() ? "" : ",") + tone_mapper(frame, max_width_, max_height_);
  return chain;
}

void FramePrep::push(AVFrame* frame, const Sink& out) {
  if (frame->interlaced_frame) interlaced_ = true;
  const std::string chain = chain_for(frame);
  if (chain.empty() && !graph_) return out(frame);  // the common case: nothing to do

  AVFrame* in = frame;
  if (frame->hw_frames_ctx && !chain.empty()) {
    // The filters run on the CPU: the frame comes to system memory, and the rungs then scale and
    // encode it there too.
    if (!download_ && !(download_ = make_frame())) throw Error(ErrorKind::Input, "prepare", "out of memory");
    av_frame_unref(download_.get());
    check(av_hwframe_transfer_data(download_.get(), frame, 0), ErrorKind::Gpu, "gpu download",
          "cannot download a GPU frame for filtering");
    check(av_frame_copy_props(download_.get(), frame), ErrorKind::Gpu, "gpu download", "out of memory");
    in = download_.get();
  }
  if (graph_ && (chain != chain_ || in->width != width_ || in->height != height_ || in->format != format_))
    finish_graph(out);  // the source changed mid-stream: what the old graph holds comes out first
  if (chain.empty()) return out(frame);
  if (!graph_) build(in, chain);

  const auto t0 = Clock::now();
  in->pts = in->best_effort_timestamp;
  check(av_buffersrc_add_frame_flags(source_, in, AV_BUFFERSRC_FLAG_KEEP_REF), ErrorKind::Input, "prepare",
        "cannot filter a frame through " + chain_);
  seconds_ += since(t0);
  drain(out);
}

void FramePrep::flush(const Sink& out) {
  if (graph_) finish_graph(out);
}

void FramePrep::build(const AVFrame* frame, const std::string& chain) {
  const std::string missing = missing_filters(chain);
  if (!missing.empty())
    throw Error(ErrorKind::Input, "prepare",
                std::string("this source needs FFmpeg's ") + missing + " filter(s) to be " +
                    (hdr(frame) ? "tone-mapped to SDR" : "deinterlaced") +
                    ", and this FFmpeg lacks them (zscale comes with an FFmpeg built with libzimg)");
  const auto t0 = Clock::now();
  graph_.reset(avfilter_graph_alloc());
  if (!graph_) throw Error(ErrorKind::Input, "prepare", "out of memory");
  const AVRational sar = frame->sample_aspect_ratio.num ? frame->sample_aspect_ratio : AVRational{1, 1};
  const std::string args = "video_size=" + std::to_string(frame->width) + "x" + std::to_string(frame->height) +
                           ":pix_fmt=" + std::to_string(frame->format) + ":time_base=" +
                           std::to_string(time_base_.num) + "/" + std::to_string(time_base_.den) +
                           ":pixel_aspect=" + std::to_string(sar.num) + "/" + std::to_string(sar.den);
  check(avfilter_graph_create_filter(&source_, avfilter_get_by_name("buffer"), "in", args.c_str(), nullptr,
                                     graph_.get()),
        ErrorKind::Input, "prepare", "cannot create the frame source");
  check(avfilter_graph_create_filter(&sink_, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr,
                                     graph_.get()),
        ErrorKind::Input, "prepare", "cannot create the frame sink");
  UniqueFilterInOut outputs(avfilter_inout_alloc()), inputs(avfilter_inout_alloc());
  if (!outputs || !inputs) throw Error(ErrorKind::Input, "prepare", "out of memory");
  outputs->name = av_strdup("in");
  outputs->filter_ctx = source_;
  inputs->name = av_strdup("out");
  inputs->filter_ctx = sink_;
  if (!outputs->name || !inputs->name) throw Error(ErrorKind::Input, "prepare", "out of memory");
  AVFilterInOut* in_list = inputs.release();
  AVFilterInOut* out_list = outputs.release();
  const int ret = avfilter_graph_parse_ptr(graph_.get(), chain.c_str(), &in_list, &out_list, nullptr);
  inputs.reset(in_list);  // whatever the parser left unlinked
  outputs.reset(out_list);
  check(ret, ErrorKind::Input, "prepare", "cannot build " + chain);
  check(avfilter_graph_config(graph_.get(), nullptr), ErrorKind::Input, "prepare", "cannot configure " + chain);
  chain_ = chain;
  width_ = frame->width;
  height_ = frame->height;
  format_ = frame->format;
  tone_maps_ = hdr(frame);
  seconds_ += since(t0);
}

void FramePrep::finish_graph(const Sink& out) {
  check(av_buffersrc_add_frame_flags(source_, nullptr, 0), ErrorKind::Input, "prepare",
        "cannot end " + chain_);
  drain(out);
  graph_.reset();
  source_ = sink_ = nullptr;
  chain_.clear();
}

void FramePrep::drain(const Sink& out) {
  if (!filtered_ && !(filtered_ = make_frame())) throw Error(ErrorKind::Input, "prepare", "out of memory");
  const AVRational sink_time_base = av_buffersink_get_time_base(sink_);
  while (true) {
    const auto t0 = Clock::now();
    const int ret = av_buffersink_get_frame(sink_, filtered_.get());
    seconds_ += since(t0);
    if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
    check(ret, ErrorKind::Input, "prepare", "cannot filter a frame through " + chain_);
    AVFrame* f = filtered_.get();
    // The deinterlacer counts in half the stream's time base: back to the stream's.
    if (f->pts != AV_NOPTS_VALUE) f->best_effort_timestamp = f->pts = av_rescale_q(f->pts, sink_time_base, time_base_);
    if (tone_maps_) {
      // What the pixels now are, and no HDR metadata left for an encoder to signal.
      f->color_primaries = AVCOL_PRI_BT709;
      f->color_trc = AVCOL_TRC_BT709;
      f->colorspace = AVCOL_SPC_BT709;
      f->color_range = AVCOL_RANGE_MPEG;
      av_frame_remove_side_data(f, AV_FRAME_DATA_MASTERING_DISPLAY_METADATA);
      av_frame_remove_side_data(f, AV_FRAME_DATA_CONTENT_LIGHT_LEVEL);
      av_frame_remove_side_data(f, AV_FRAME_DATA_DYNAMIC_HDR_PLUS);
    }
    f->interlaced_frame = 0;
    out(f);
    av_frame_unref(f);
  }
}

}  // namespace fp
