// Opens untrusted media with only the protocols and demuxers the engine means to use.
#pragma once

#include <string>
#include <vector>

#include "framepress/ffmpeg.h"
#include "framepress/options.h"

namespace fp {

class Demuxer {
 public:
  // `probe` reads into the streams (decoding a frame or more) to fill in what the header leaves
  // out, like the pixel format. Without it that happens only where the header does not describe
  // every stream well enough to decode it: an MP4's first keyframe can cost tens of milliseconds.
  explicit Demuxer(const std::string& path, CancelFlagPtr cancel = nullptr, bool probe = true);
  // The same over a file or over bytes in memory.
  explicit Demuxer(const MediaSource& source, CancelFlagPtr cancel = nullptr, bool probe = true);

  // Next packet of any stream; false at end of file, or where the file stops being readable.
  // Throws InputError on other read errors.
  bool read(AVPacket* pkt);
  // After reading: why the source looks cut short (fewer video packets than its MP4 index lists,
  // or well short of the duration its header declares), as a sentence; empty when it does not.
  std::string truncation() const;

  // For a time range: reads video only from here on (the audio's bytes are never read).
  void drop_audio();
  // Moves reading to the video keyframe at or before `ts` (video time base) whose frames all come
  // at or after it: in decode order a keyframe's timestamp can be below its presentation time, and
  // a container without an index may land on any packet, so the search steps back until it lands
  // on a keyframe that presents no later than `ts`.
  void seek_video(int64_t ts);
  // The video stream's first presentation timestamp (its time base), 0 when the container has none.
  int64_t video_start() const;

  int video_index() const { return video_index_; }
  int audio_index() const { return audio_index_; }
  AVStream* video_stream() const { return video_index_ >= 0 ? format_->streams[video_index_] : nullptr; }
  AVStream* stream(int index) const { return format_->streams[index]; }
  int stream_count() const { return static_cast<int>(format_->nb_streams); }
  AVStream* audio_stream() const { return audio_index_ >= 0 ? format_->streams[audio_index_] : nullptr; }
  // Every audio stream in source order that is still read (not discarded: drop_audio discards them all).
  std::vector<AVStream*> audio_streams() const;
  double duration_seconds() const;
  // Whether the container's clock may jump (MPEG-TS and PS, Ogg).
  bool clock_may_jump() const { return format_->iformat->flags & AVFMT_TS_DISCONT; }
  MediaInfo info() const;

  // The stream's display matrix (9 int32: 3x3, 16.16 fixed point), nullptr when it has none.
  static const uint8_t* display_matrix(const AVStream* st);
  // Display rotation in degrees (counter-clockwise, as FFmpeg reports it), 0 when none.
  static double rotation(const AVStream* st);

 private:
  struct MemoryReader {
    const uint8_t* data;
    size_t size, pos;
  };
  static int interrupted(void* opaque);
  static int read_memory(void* opaque, uint8_t* buf, int size);
  static int64_t seek_memory(void* opaque, int64_t offset, int whence);
  bool header_describes_streams() const;
  int find_stream_info();
  bool is_mp4() const;
  // Declared before the format context, which reads through them, so they outlive it.
  std::unique_ptr<MemoryReader> memory_;
  UniqueIOContext io_;
  UniqueFormatInput format_;
  CancelFlagPtr cancel_;
  int video_index_ = -1;
  int audio_index_ = -1;
  int64_t video_packets_ = 0;
  double read_until_ = 0;         // seconds of video and audio read, from their start
  bool sought_ = false;           // a part was read on purpose: not a truncation
};

}  // namespace fp
