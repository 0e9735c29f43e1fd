// The ladder pipeline: one demux and one decode feeding every rung, rungs encoding in parallel.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "framepress/options.h"

namespace fp {

class RungWorker;

class Transcoder {
 public:
  Transcoder(std::string input, std::string out_dir, TranscodeOptions options, ProgressFn progress,
             CancelFlagPtr cancel);
  Transcoder(MediaSource input, std::string out_dir, TranscodeOptions options, ProgressFn progress,
             CancelFlagPtr cancel);
  ~Transcoder();

  // Runs the whole job on the calling thread plus one thread per rung. Throws fp::Error.
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
  MediaSource source_;
  const std::string& input_ = source_.path;  // names the source in messages
  std::string out_dir_;
  TranscodeOptions options_;
  ProgressFn progress_;
  CancelFlagPtr cancel_;
};

}  // namespace fp
