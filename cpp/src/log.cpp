#include "framepress/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "framepress/EncoderLogStats.h"
#include "framepress/ffmpeg.h"

namespace fp {

namespace {

thread_local std::string t_last_error;
bool g_echo = false;

void capture(void* avcl, int level, const char* fmt, va_list args) {
  // x264's summary (its PSNR and SSIM) comes at info level, with its encoder's context.
  if (level == AV_LOG_INFO && avcl && EncoderLogStats::listening()) {
    char message[512];
    va_list copy;
    va_copy(copy, args);
    std::vsnprintf(message, sizeof(message), fmt, copy);
    va_end(copy);
    EncoderLogStats::offer(avcl, message);
  }
  if (level > AV_LOG_ERROR && !(g_echo && level <= AV_LOG_WARNING)) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &print_prefix);
  if (g_echo) std::fputs(line, stderr);
  if (level <= AV_LOG_ERROR) {
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    // "[mov,mp4,... @ 0x...] moov atom not found" -> "moov atom not found"
    auto close = text.find("] ");
    if (text.rfind("[", 0) == 0 && close != std::string::npos) text = text.substr(close + 2);
    if (!text.empty()) t_last_error = text;
  }
}

}  // namespace

void install_log_capture() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* echo = std::getenv("FRAMEPRESS_FFMPEG_LOG");
    g_echo = echo && *echo && *echo != '0';
    av_log_set_callback(capture);
    // SVT-AV1 prints its own banner to stderr: errors only, unless the user asked otherwise.
    setenv("SVT_LOG", "1", 0);
  });
}

std::string take_ffmpeg_log() {
  std::string out;
  out.swap(t_last_error);
  return out;
}

}  // namespace fp
