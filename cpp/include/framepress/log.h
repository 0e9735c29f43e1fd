// FFmpeg's log, kept off stderr: its last error line on each thread feeds the engine's errors.
#pragma once

#include <string>

namespace fp {

// Routes FFmpeg's log through framepress (once per process). FRAMEPRESS_FFMPEG_LOG=1 also
// prints it to stderr, for debugging.
void install_log_capture();

// The last error FFmpeg logged on this thread, cleared by reading it.
std::string take_ffmpeg_log();

}  // namespace fp
