// RAII ownership for every FFmpeg (and zimg) object the engine touches, and FFmpeg error text.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/cpu.h>
#include <libavutil/dict.h>
#include <libavutil/display.h>
#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
#include <libavutil/audio_fifo.h>
}

#include <zimg.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

namespace fp {

constexpr size_t kDisplayMatrixSize = sizeof(int32_t) * 9;  // a display matrix's bytes

struct FormatInputDeleter { void operator()(AVFormatContext* c) const { avformat_close_input(&c); } };
struct FormatOutputDeleter {
  void operator()(AVFormatContext* c) const {
    if (c && c->pb && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecContextDeleter { void operator()(AVCodecContext* c) const { avcodec_free_context(&c); } };
struct FrameDeleter { void operator()(AVFrame* f) const { av_frame_free(&f); } };
struct PacketDeleter { void operator()(AVPacket* p) const { av_packet_free(&p); } };
struct SwsDeleter { void operator()(SwsContext* s) const { sws_freeContext(s); } };
struct SwrDeleter { void operator()(SwrContext* s) const { swr_free(&s); } };
struct BufferRefDeleter { void operator()(AVBufferRef* b) const { av_buffer_unref(&b); } };
struct BufferPoolDeleter { void operator()(AVBufferPool* p) const { av_buffer_pool_uninit(&p); } };
struct DictDeleter { void operator()(AVDictionary* d) const { av_dict_free(&d); } };
// A custom-I/O context and the buffer it reads into (which FFmpeg may have replaced).
struct IOContextDeleter {
  void operator()(AVIOContext* io) const {
    if (io) av_freep(&io->buffer);
    avio_context_free(&io);
  }
};
struct AudioFifoDeleter { void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); } };
struct FilterGraphDeleter { void operator()(AVFilterGraph* g) const { avfilter_graph_free(&g); } };
struct FilterInOutDeleter { void operator()(AVFilterInOut* io) const { avfilter_inout_free(&io); } };
struct ZimgGraphDeleter { void operator()(zimg_filter_graph* g) const { zimg_filter_graph_free(g); } };
struct AlignedBufferDeleter { void operator()(void* p) const { std::free(p); } };  // from posix_memalign

using UniqueFormatInput = std::unique_ptr<AVFormatContext, FormatInputDeleter>;
using UniqueFormatOutput = std::unique_ptr<AVFormatContext, FormatOutputDeleter>;
using UniqueCodecContext = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using UniqueFrame = std::unique_ptr<AVFrame, FrameDeleter>;
using UniquePacket = std::unique_ptr<AVPacket, PacketDeleter>;
using UniqueSws = std::unique_ptr<SwsContext, SwsDeleter>;
using UniqueSwr = std::unique_ptr<SwrContext, SwrDeleter>;
using UniqueBufferRef = std::unique_ptr<AVBufferRef, BufferRefDeleter>;
using UniqueBufferPool = std::unique_ptr<AVBufferPool, BufferPoolDeleter>;
using UniqueIOContext = std::unique_ptr<AVIOContext, IOContextDeleter>;
using UniqueAudioFifo = std::unique_ptr<AVAudioFifo, AudioFifoDeleter>;
using UniqueFilterGraph = std::unique_ptr<AVFilterGraph, FilterGraphDeleter>;
using UniqueFilterInOut = std::unique_ptr<AVFilterInOut, FilterInOutDeleter>;
using UniqueZimgGraph = std::unique_ptr<zimg_filter_graph, ZimgGraphDeleter>;
using UniqueAlignedBuffer = std::unique_ptr<void, AlignedBufferDeleter>;

// AVDictionary options passed to an FFmpeg open call; frees what FFmpeg leaves in it.
class Options {
 public:
  Options() = default;
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;
  ~Options() { av_dict_free(&dict_); }
  Options& set(const char* key, const std::string& value) {
    if (av_dict_set(&dict_, key, value.c_str(), 0) < 0) throw std::bad_alloc();
    return *this;
  }
  AVDictionary** ptr() { return &dict_; }

 private:
  AVDictionary* dict_ = nullptr;
};

// An owned channel layout (a custom-order layout holds memory of its own).
class ChannelLayout {
 public:
  ChannelLayout() = default;
  ChannelLayout(const ChannelLayout&) = delete;
  ChannelLayout& operator=(const ChannelLayout&) = delete;
  ~ChannelLayout() { av_channel_layout_uninit(&layout_); }
  // A copy of `src`; a negative FFmpeg error when it cannot be made.
  int assign(const AVChannelLayout& src) {
    av_channel_layout_uninit(&layout_);
    return av_channel_layout_copy(&layout_, &src);
  }
  const AVChannelLayout& get() const { return layout_; }

 private:
  AVChannelLayout layout_{};
};


// Allocations throw std::bad_alloc rather than hand out null.
inline UniqueFrame make_frame() {
  UniqueFrame f(av_frame_alloc());
  if (!f) throw std::bad_alloc();
  return f;
}
inline UniquePacket make_packet() {
  UniquePacket p(av_packet_alloc());
  if (!p) throw std::bad_alloc();
  return p;
}

// A new reference to the same frame buffers (no pixel copy).
inline UniqueFrame ref_frame(const AVFrame* src) {
  UniqueFrame f = make_frame();
  if (av_frame_ref(f.get(), src) < 0) throw std::bad_alloc();
  return f;
}

// An FFmpeg enum field read as the int it holds: a container or bitstream may put any value there
// (transfer 255, say), and a C++ enum need not hold a value outside its range.
template <typename Enum>
int enum_value(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int), "FFmpeg's enums are int-sized");
  int value;
  std::memcpy(&value, &field, sizeof(value));
  return value;
}

inline std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

}  // namespace fp
