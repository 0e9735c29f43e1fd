// Prepares each decoded frame once, before it fans out to the rungs, so every rung shares the
// result: interlaced sources are deinterlaced (bwdif, one frame out per frame in, so the frame
// rate stays the source's) and HDR (PQ or HLG) is tone-mapped to BT.709 SDR, since every rung
// encodes 8-bit SDR. Frames that need neither go through untouched, without a filter graph.
#pragma once

#include <functional>
#include <string>

#include "framepress/ffmpeg.h"

namespace fp {

class FramePrep {
 public:
  using Sink = std::function<void(AVFrame*)>;

  // `stream`: the source's video stream (its time base, and its field order when the container
  // says the video is interlaced). Tone mapping, the costliest step, also scales the picture down
  // to `max_width`x`max_height` (the largest rung; 0: no limit) on the way.
  FramePrep(const AVStream* stream, int max_width, int max_height);

  // Hands `frame`, or what the filters make of it, to `out`. The deinterlacer looks one frame
  // ahead, so its frames come out one call later. Throws InputError.
  void push(AVFrame* frame, const Sink& out);
  // End of stream: hands on the frames the filters still hold.
  void flush(const Sink& out);

  // The filter chain a frame needs, empty when none (public for tests and logs).
  std::string chain_for(const AVFrame* frame) const;
  double seconds() const { return seconds_; }

  // What makes a frame need preparing: an HDR transfer (PQ or HLG) is tone-mapped; a field order
  // that says interlaced is deinterlaced. Public for the hardware selection, which must know.
  // Ints: header fields hold whatever the container says (read them with enum_value).
  static bool hdr_transfer(int trc);
  static bool interlaced_order(int field_order);

 private:
  void build(const AVFrame* frame, const std::string& chain);
  void finish_graph(const Sink& out);
  void drain(const Sink& out);

  AVRational time_base_;
  int container_field_order_;
  int max_width_, max_height_;
  bool interlaced_ = false;  // set once a frame says so: the deinterlacer stays on from then on

  UniqueFilterGraph graph_;
  AVFilterContext* source_ = nullptr;  // owned by graph_
  AVFilterContext* sink_ = nullptr;    // owned by graph_
  std::string chain_;                  // what graph_ runs
  int width_ = 0, height_ = 0, format_ = AV_PIX_FMT_NONE;  // the frames graph_ was built for
  bool tone_maps_ = false;
  UniqueFrame filtered_;
  UniqueFrame download_;  // GPU frames come to system memory when they need filtering
  double seconds_ = 0;
};

}  // namespace fp
