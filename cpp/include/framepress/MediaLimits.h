// What the engine accepts from untrusted input: which decoders may run on it, and how large a
// picture may be.
#pragma once

#include "framepress/ffmpeg.h"

namespace fp {

// The largest picture accepted: 8K (DCI 8192x4320, or the same turned portrait). A few kilobytes
// of input can declare 16384x16384, and each such frame costs hundreds of megabytes once decoded
// and queued for the rungs.
constexpr int kMaxFrameSide = 8192;
constexpr int64_t kMaxFramePixels = int64_t{8192} * 4320;

// The largest single block FFmpeg may allocate. A few kilobytes of container can declare tables
// of gigabytes (a fragmented MP4's run of 80 million samples); FFmpeg allocates and fills them
// before reading any. The largest legitimate block, a plane of an 8K picture at 16 bits, is
// 70 MB; a 10-hour MP4's index, 52 MB.
constexpr size_t kMaxAllocation = size_t{256} << 20;

// Applies kMaxAllocation to FFmpeg, process-wide (once; every job opens its source through here).
void limit_ffmpeg_allocations();

// Decoders for what cameras, phones, browsers, editing tools and broadcast produce. Every other
// libavcodec decoder stays unreachable, however the container labels a stream.
bool accepted_video_codec(AVCodecID id);
bool accepted_audio_codec(AVCodecID id);

// Whether a picture of `width`x`height` is within the limits above.
bool accepted_frame_size(int width, int height);

}  // namespace fp
