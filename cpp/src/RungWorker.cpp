#include "framepress/RungWorker.h"

namespace fp {

namespace {
// Frames a worker may fall behind the decoder. The frames are shared between workers, so a lag
// costs at most this many source frames kept alive; fewer and a short stall of one worker (a
// keyframe, say) holds the decoder and so every other worker. More measured no faster.
constexpr size_t kQueueFrames = 8;
}  // namespace

RungWorker::RungWorker(std::vector<std::unique_ptr<Rung>> rungs, JobFailure& failure)
    : rungs_(std::move(rungs)), failure_(failure), queue_(kQueueFrames) {}

RungWorker::~RungWorker() {
  stop();
  join();
}

void RungWorker::start() { thread_ = std::thread([this] { loop(); }); }
void RungWorker::finish_input() { queue_.close(); }
void RungWorker::stop() {
  stop_.store(true);  // before the close, so the loop never reads a discarded queue as the end of input
  queue_.close(/*discard=*/true);
}
void RungWorker::join() {
  if (thread_.joinable()) thread_.join();
}

void RungWorker::loop() {
  // However the loop ends, the decoding thread must never block on this worker again.
  struct CloseQueue {
    BoundedQueue<RungItem>& q;
    ~CloseQueue() { q.close(/*discard=*/true); }
  } close_queue{queue_};
  try {
    while (auto item = queue_.pop()) {
      if (stopping()) return;
      for (auto& rung : rungs_) {
        if (item->audio)
          rung->write_audio(item->audio.get());
        else
          rung->encode(item->frame.get(), item->keyframe);
      }
    }
    // The queue ended: by finish_input() (finish the files) or by stop() (abandon them).
    if (stopping()) return;
    for (auto& rung : rungs_) {
      rung->finish();
      if (stopping()) return;
    }
  } catch (...) {
    failure_.record(std::current_exception());
  }
}

}  // namespace fp
