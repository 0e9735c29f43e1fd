// libFuzzer target: an input read from memory is probed, then transcoded to one small rung (MP4,
// and HLS for half the inputs). Engine errors are expected outcomes; crashes, sanitizer reports,
// timeouts and runaway memory are findings.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "framepress/Demuxer.h"
#include "framepress/Transcoder.h"
#include "framepress/error.h"
#include "framepress/log.h"

namespace {

std::string g_out_dir;

fp::TranscodeOptions small_ladder(bool hls) {
  fp::RungOptions rung;
  rung.name = "64p";
  rung.height = 64;
  rung.bitrate = 50000;
  rung.preset = "ultrafast";
  fp::TranscodeOptions options;
  options.rungs = {rung};
  options.gop_seconds = 1;
  options.segment_seconds = 1;
  options.audio_bitrate = 32000;
  options.hls = hls;
  options.hwaccel = fp::HwRequest::Cpu;
  options.threads = 1;
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fp::install_log_capture();
  const char* tmp = std::getenv("TMPDIR");
  g_out_dir = std::string(tmp ? tmp : "/tmp") + "/framepress-fuzz-" + std::to_string(getpid());
  std::filesystem::create_directories(g_out_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fp::MediaSource source{"fuzz input", data, size};
  try {
    fp::Demuxer(source).info();
  } catch (const fp::Error&) {
    return 0;  // what cannot be probed is not transcoded either
  }
  try {
    fp::Transcoder(source, g_out_dir, small_ladder(size % 2 == 0), nullptr, nullptr).run();
  } catch (const fp::Error&) {
  }
  return 0;
}
