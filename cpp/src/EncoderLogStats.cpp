#include "framepress/EncoderLogStats.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace fp {

namespace {

// Rungs open, log and close their encoders on threads of their own.
std::mutex g_mutex;
std::map<const void*, EncoderLogStats*> g_registered;
std::atomic<int> g_count{0};

// The number after `key` in `text`, or false.
bool number_after(const char* text, const char* key, double& out) {
  const char* at = std::strstr(text, key);
  if (!at) return false;
  char* end = nullptr;
  const double value = std::strtod(at + std::strlen(key), &end);
  if (end == at + std::strlen(key)) return false;
  out = value;
  return true;
}

}  // namespace

EncoderLogStats::EncoderLogStats(const AVCodecContext* encoder) : context_(encoder) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_registered[context_] = this;
  g_count = static_cast<int>(g_registered.size());
}

EncoderLogStats::~EncoderLogStats() { stop(); }

// A freed context's address can come back for another encoder, registered by then: only our own entry goes.
void EncoderLogStats::stop() {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_registered.find(context_);
  if (it != g_registered.end() && it->second == this) g_registered.erase(it);
  g_count = static_cast<int>(g_registered.size());
}

bool EncoderLogStats::listening() { return g_count.load(std::memory_order_relaxed) > 0; }

void EncoderLogStats::offer(const void* context, const char* message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_registered.find(context);
  if (it != g_registered.end()) it->second->take(message);
}

// The summary's lines start with these words; the per-slice-type lines ("frame I:...") carry
// "PSNR Mean" too, further in, and are not the whole rendition's.
void EncoderLogStats::take(const char* message) {
  if (std::strncmp(message, "PSNR Mean ", 10) == 0) have_psnr_ = number_after(message, "Global:", psnr_);
  if (std::strncmp(message, "SSIM Mean ", 10) == 0) have_ssim_ = number_after(message, "Y:", ssim_);
}

bool EncoderLogStats::complete() const {
  std::lock_guard<std::mutex> lock(g_mutex);
  return have_psnr_ && have_ssim_;
}

double EncoderLogStats::psnr() const {
  std::lock_guard<std::mutex> lock(g_mutex);
  return have_psnr_ ? psnr_ : 0;
}

double EncoderLogStats::ssim() const {
  std::lock_guard<std::mutex> lock(g_mutex);
  return have_ssim_ ? ssim_ : 0;
}

}  // namespace fp
