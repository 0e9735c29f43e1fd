#include "framepress/RungWorker.h"

namespace fp {

namespace {
// Frames a worker may fall behind the decoder. The frames are shared between workers, so a lag
// costs at most this many source frames kept alive; fewer and a short stall of one worker (a
// keyframe, say) holds the decoder and so every other worker. More measured no faster.
constexpr size_t kQueueFrames = 8;
}  // namespace

RungWorker::RungWorker(std::vector<std::unique_ptr<Rung>> rungs, std::atomic<bool>& abort)
    : rungs_(std::move(rungs)), abort_(abort), queue_(kQueueFrames) {}

RungWorker::~RungWorker() {
  queue_.close(true);
  if (thread_.joinable()) thread_.join();
}

void RungWorker::start() { thread_ = std::thread([this] { loop(); }); }
void RungWorker::finish() { queue_.close(false); }
void RungWorker::join() {
  if (thread_.joinable()) thread_.join();
}

void RungWorker::loop() {
  // However the loop ends, the decoding thread must never block on this worker again.
  struct CloseQueue {
    BoundedQueue<RungItem>& q;
    ~CloseQueue() { q.close(true); }
  } close_queue{queue_};
  try {
    while (auto item = queue_.pop()) {
      if (abort_.load()) return;
      for (auto& rung : rungs_) {
        if (item->audio)
          rung->write_audio(item->audio.get());
        else
          rung->encode(item->frame.get(), item->keyframe);
      }
    }
    if (abort_.load()) return;
    for (auto& rung : rungs_) rung->finish();
  } catch (...) {
    error_ = std::current_exception();
    abort_.store(true);
  }
}

}  // namespace fp
