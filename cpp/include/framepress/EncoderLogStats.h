// x264's own PSNR and SSIM of a rendition: its reconstruction against the frames it was given (the
// source at the rung's size), computed inside the encoder (x264-params psnr=1:ssim=1) and logged in
// its summary when it closes, so the rendition is never decoded again. While alive, the object
// registers the encoder's context; the engine's log callback hands it the lines logged with it.
#pragma once

#include "framepress/ffmpeg.h"

namespace fp {

class EncoderLogStats {
 public:
  explicit EncoderLogStats(const AVCodecContext* encoder);
  ~EncoderLogStats();
  EncoderLogStats(const EncoderLogStats&) = delete;
  EncoderLogStats& operator=(const EncoderLogStats&) = delete;

  // Whether any encoder is registered: the log callback formats lines only then.
  static bool listening();
  // From the log callback, on any thread: one message (without the "[libx264 @ ...]" prefix)
  // logged at AV_LOG_INFO with `context`.
  static void offer(const void* context, const char* message);

  // The encoder has closed: no more of its lines (its context's address may be reused).
  void stop();

  // Both summary lines were seen (after the encoder closed).
  bool complete() const;
  double psnr() const;  // "Global": from the mean squared error of all planes, as the psnr filter's average
  double ssim() const;  // "SSIM Mean Y": luma only

 private:
  void take(const char* message);

  const void* context_;
  double psnr_ = 0, ssim_ = 0;
  bool have_psnr_ = false, have_ssim_ = false;
};

}  // namespace fp
