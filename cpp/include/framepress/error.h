// The engine's one exception type; the binding maps each kind to a Python class.
#pragma once

#include <stdexcept>
#include <string>

#include "framepress/ffmpeg.h"
#include "framepress/log.h"

namespace fp {

// Gpu: the GPU failed mid-task (out of memory, a lost context, a session refused), which a rerun on
// the CPU may not meet; Hardware: the acceleration asked for is not available at all.
enum class ErrorKind { Input, Encode, Output, Cancelled, Hardware, Gpu };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string step, const std::string& message, std::string ffmpeg_message = "")
      : std::runtime_error(message), kind(kind), step(std::move(step)), ffmpeg_message(std::move(ffmpeg_message)) {}
  ErrorKind kind;
  std::string step;
  std::string ffmpeg_message;
};

// FFmpeg's error text for `ret`, with the detail FFmpeg logged for it when there is one.
inline std::string ffmpeg_error_text(int ret) {
  std::string text = av_error_text(ret);
  std::string detail = take_ffmpeg_log();
  return detail.empty() || detail == text ? text : text + " (" + detail + ")";
}

// Throws `kind` when an FFmpeg call returned a negative error code.
inline int check(int ret, ErrorKind kind, const std::string& step, const std::string& what) {
  if (ret < 0) {
    std::string text = ffmpeg_error_text(ret);
    throw Error(kind, step, what + ": " + text, text);
  }
  return ret;
}

}  // namespace fp
