// Plain option and result structs shared by the engine's classes and the binding.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace fp {

// The video codecs a rung encodes.
enum class VideoCodec { H264, Hevc, Av1 };
// What a task asks of the hardware: the GPU where it can (auto), never (cpu), or else fail (cuda).
enum class HwRequest { Auto, Cpu, Cuda };
// Where a task runs: all on the CPU; NVDEC decode with CPU encoders (hybrid); NVDEC and NVENC (cuda).
enum class DeviceMode { Cpu, Hybrid, Cuda };

// The names the API and FFmpeg use: "h264", "hevc", "av1"; "auto", "cpu", "cuda"; "cpu", "hybrid", "cuda".
const char* name_of(VideoCodec codec);
const char* name_of(HwRequest request);
const char* name_of(DeviceMode mode);
// From those names; anything else is an fp::Error (EncodeError for a codec, HardwareError for a
// request).
VideoCodec video_codec_named(const std::string& name);
HwRequest hw_request_named(const std::string& name);

struct RungOptions {
  std::string name;
  int height = 0;                 // target short side of the picture
  VideoCodec codec = VideoCodec::H264;
  int64_t bitrate = 0;            // bits/s; 0 with crf >= 0 means constant quality
  int crf = -1;
  std::string preset = "veryfast";
  std::string profile;
  int64_t maxrate = 0;            // 0: equal to bitrate
  int64_t bufsize = 0;            // 0: twice the bitrate
};

// Poster and sprite sheets from the decoded frames; off while `interval` is 0.
struct ThumbnailOptions {
  double interval = 0;            // seconds between tiles
  int tile_width = 160;           // tile height follows the picture's display aspect
  int columns = 5, rows = 5;      // tiles per sprite sheet
  int poster_width = 640;         // at most the picture's own width
};

// What ThumbnailSink wrote: tile k shows times[k] until the next tile's time (the last until `end`).
struct ThumbnailResult {
  std::string poster;
  std::vector<std::string> sprites;
  int tile_width = 0, tile_height = 0, columns = 0, rows = 0;
  std::vector<double> times;
  double end = 0;
};

// Which source audio streams a task keeps: every one, the first (FFmpeg's best), or those whose
// language tag is listed (the best stream when none is).
struct AudioPolicy {
  std::string keep = "all";            // all | first | languages
  std::vector<std::string> languages;  // for "languages": ISO 639-2 tags, e.g. eng, fra
};

struct TranscodeOptions {
  std::vector<RungOptions> rungs;
  double gop_seconds = 2.0;
  double segment_seconds = 4.0;
  int64_t audio_bitrate = 128000;      // per track
  AudioPolicy audio;
  bool hls = false;
  ThumbnailOptions thumbnails;
  bool quality = false;           // PSNR and SSIM of every rendition (QualityMeter)
  HwRequest hwaccel = HwRequest::Auto;
  int threads = 0;                // 0: all cores
  // A time range of the source, in seconds from its first video frame: only the frames whose
  // timestamps fall in [start, end) are encoded (adjacent ranges partition the frames), video only,
  // on the source's own timeline and keyframe grid, so the outputs of adjacent ranges line up.
  // end <= start (or unset) runs to the end of the source.
  bool ranged = false;
  double start = 0;
  double end = 0;
};

struct StreamInfo {
  int index = 0;
  std::string type;
  std::string codec;
  int64_t bitrate = 0;
  int width = 0, height = 0;
  double fps = 0;
  std::string pix_fmt;
  double rotation = 0;
  int64_t frames = 0;
  int sample_rate = 0, channels = 0;
};

struct MediaInfo {
  std::string format;
  double duration = 0;
  int64_t bitrate = 0;
  std::vector<StreamInfo> streams;
};

struct RenditionResult {
  std::string name, path, playlist, codec, codec_string;
  int width = 0, height = 0;
  int64_t frames = 0, bytes = 0, bitrate = 0;
  double encode_fps = 0;
  bool has_audio = false;
  // Against the source at this size; 0 when not measured. PSNR of all planes; SSIM of luma for
  // x264 rungs (x264's own figure), of all planes for the others (FFmpeg's ssim filter).
  double psnr = 0, ssim = 0;
};

// An audio track written as CMAF segments of its own beside the video rungs' (HLS and DASH).
struct AudioRenditionResult {
  std::string name, playlist;     // e.g. audio_0, and its media playlist
  int index = -1;                 // source stream index
  std::string language;           // the source stream's language tag ("" if none)
  bool is_default = false;        // the track players start with
  int sample_rate = 0, channels = 0;
};

// The source audio stream the outputs carry (only one is kept) and what was done to it.
struct AudioResult {
  int index = -1;                 // source stream index; -1 when the outputs have no audio
  std::string codec, language;    // the source stream's codec and language tag ("" if none)
  int sample_rate = 0, channels = 0;  // of the AAC output
  std::string channel_layout;
  std::vector<std::string> warnings;  // dropped, downmixed, resampled, changed mid-stream, holes filled
};

struct TranscodeResult {
  std::vector<RenditionResult> renditions;
  AudioResult audio;
  std::vector<AudioRenditionResult> audio_renditions;  // with HLS: the audio tracks' own playlists
  ThumbnailResult thumbnails;
  // What the outputs lack that a user would expect (a truncated source, say), one sentence each.
  std::vector<std::string> warnings;
  DeviceMode hwaccel_used = DeviceMode::Cpu;
  std::string hwaccel_reason;
  std::map<std::string, double> seconds;
  int64_t decoded_frames = 0;
  double fps = 0;                 // source frame rate (average), for playlists
  MediaInfo source;
};

// Where the media comes from: a file, or bytes in memory (then `path` only names it in messages).
struct MediaSource {
  std::string path;
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// Called from the decoding thread: (fraction of duration, frames decoded, elapsed seconds).
using ProgressFn = std::function<void(double, int64_t, double)>;

struct CancelFlag {
  std::atomic<bool> cancelled{false};
};
using CancelFlagPtr = std::shared_ptr<CancelFlag>;

}  // namespace fp
