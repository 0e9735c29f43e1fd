// An output stream that will take another stream's packets as they are (no encoding): its codec
// parameters, time base, frame rate, aspect ratio, disposition, language and rotation.
#pragma once

#include <string>

#include "framepress/ffmpeg.h"

namespace fp {

// Adds it to `out` (before its header is written); `step` names the caller in errors.
AVStream* add_copied_stream(AVFormatContext* out, const AVStream* in, const std::string& step);

}  // namespace fp
