// Preview images from the frames the engine decodes anyway (no second decode): a poster, and
// sprite sheets of small tiles taken every `interval` seconds, JPEG through libavcodec's mjpeg
// encoder. The WebVTT that maps times to tiles is written from the result (framepress.thumbnails).
#pragma once

#include <string>
#include <vector>

#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class ThumbnailSink {
 public:
  // `sample_aspect` keeps the pictures' display shape; `poster_at` is when the poster is taken
  // (the first frame stands in when the video is shorter); `rotation` (degrees counter-clockwise,
  // as FFmpeg reports a display matrix) turns the images upright, as players show the video.
  ThumbnailSink(std::string dir, const ThumbnailOptions& options, AVRational sample_aspect, double poster_at,
                double rotation = 0);

  // A decoded frame (any software format, or a CUDA frame) at `seconds` on the output timeline.
  void push(const AVFrame* frame, double seconds);
  // Writes what is left and says what was written.
  ThumbnailResult finish();

 private:
  // `frame` converted to full-range 4:2:0 (what JPEG means), upright, `width` x `height` as shown.
  UniqueFrame convert(const AVFrame* frame, int width, int height);
  UniqueFrame scale(const AVFrame* frame, int width, int height);
  void write_sprite();
  void write_jpeg(const AVFrame* picture, const std::string& path);

  std::string dir_;
  ThumbnailOptions options_;
  AVRational sample_aspect_;
  double poster_at_;
  int turns_ = 0;                       // quarter turns clockwise that make the pictures upright
  ThumbnailResult result_;
  UniqueFrame poster_;                  // the candidate so far (full size, converted)
  bool poster_final_ = false;
  std::vector<UniqueFrame> tiles_;      // of the sprite being filled
  double next_tile_ = 0;
  double last_seconds_ = -1, frame_seconds_ = 0;
  UniqueSws sws_;
  int sws_key_[6] = {0};                // source width, height, format, range; target size
};

}  // namespace fp
