#include "framepress/options.h"

#include "framepress/error.h"

namespace fp {

const char* name_of(VideoCodec codec) {
  switch (codec) {
    case VideoCodec::H264: return "h264";
    case VideoCodec::Hevc: return "hevc";
    case VideoCodec::Av1: return "av1";
  }
  return "unknown";
}

const char* name_of(HwRequest request) {
  switch (request) {
    case HwRequest::Auto: return "auto";
    case HwRequest::Cpu: return "cpu";
    case HwRequest::Cuda: return "cuda";
  }
  return "unknown";
}

const char* name_of(DeviceMode mode) {
  switch (mode) {
    case DeviceMode::Cpu: return "cpu";
    case DeviceMode::Hybrid: return "hybrid";
    case DeviceMode::Cuda: return "cuda";
  }
  return "unknown";
}

VideoCodec video_codec_named(const std::string& name) {
  for (VideoCodec c : {VideoCodec::H264, VideoCodec::Hevc, VideoCodec::Av1})
    if (name == name_of(c)) return c;
  throw Error(ErrorKind::Encode, "open encoder", "unsupported codec " + name);
}

HwRequest hw_request_named(const std::string& name) {
  for (HwRequest r : {HwRequest::Auto, HwRequest::Cpu, HwRequest::Cuda})
    if (name == name_of(r)) return r;
  throw Error(ErrorKind::Hardware, "select hardware", "hwaccel must be auto, cpu or cuda, not " + name);
}

}  // namespace fp
