// A thread that feeds one or more rungs from its own bounded queue of shared frames and packets.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "framepress/BoundedQueue.h"
#include "framepress/Rung.h"
#include "framepress/ffmpeg.h"

namespace fp {

// What the decoding thread hands a worker: a decoded frame (shared, reference-counted) or an AAC
// packet (shared too); `keyframe` marks the frames on which every rung starts a closed GOP.
struct RungItem {
  UniqueFrame frame;
  bool keyframe = false;
  UniquePacket audio;
};

// The first failure of any rung worker of a job, shared by them all: one failed rung fails the
// job, so the others stop too. Safe to record from several workers at once (a full disk fails
// every rung together).
class JobFailure {
 public:
  void record(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_) first_ = std::move(error);
    failed_.store(true);
  }
  bool failed() const { return failed_.load(); }
  // The first recorded failure; null while none.
  std::exception_ptr first() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_;
  }

 private:
  mutable std::mutex mu_;
  std::exception_ptr first_;
  std::atomic<bool> failed_{false};
};

class RungWorker {
 public:
  RungWorker(std::vector<std::unique_ptr<Rung>> rungs, JobFailure& failure);
  ~RungWorker();

  // Blocks while the worker is behind; false once it stopped (its own or another rung's failure,
  // or stop()).
  bool push(RungItem item) { return queue_.push(std::move(item)); }
  void start();
  // End of input: the worker encodes what is queued, then flushes its encoders and finishes the
  // files (trailers, faststart).
  void finish_input();
  // The job is abandoned (cancel, a failure anywhere): the worker drops what is queued and stops
  // after the frame in hand, without flushing or finishing any file.
  void stop();
  void join();

  const std::vector<std::unique_ptr<Rung>>& rungs() const { return rungs_; }

 private:
  void loop();
  bool stopping() const { return stop_.load() || failure_.failed(); }

  std::vector<std::unique_ptr<Rung>> rungs_;
  JobFailure& failure_;
  std::atomic<bool> stop_{false};
  BoundedQueue<RungItem> queue_;
  std::thread thread_;
};

}  // namespace fp
