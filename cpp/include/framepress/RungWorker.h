// A thread that feeds one or more rungs from its own bounded queue of shared frames and packets.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "framepress/FrameQueue.h"
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

class RungWorker {
 public:
  RungWorker(std::vector<std::unique_ptr<Rung>> rungs, std::atomic<bool>& abort);
  ~RungWorker();

  // Blocks while the worker is behind; false once it stopped (failure or abort).
  bool push(RungItem item) { return queue_.push(std::move(item)); }
  void start();
  // No more input: the rungs flush their encoders and finish their files, unless aborted.
  void finish();
  void abort() { queue_.close(true); }
  void join();

  std::exception_ptr error() const { return error_; }
  const std::vector<std::unique_ptr<Rung>>& rungs() const { return rungs_; }

 private:
  void loop();

  std::vector<std::unique_ptr<Rung>> rungs_;
  std::atomic<bool>& abort_;
  BoundedQueue<RungItem> queue_;
  std::thread thread_;
  std::exception_ptr error_;
};

}  // namespace fp
