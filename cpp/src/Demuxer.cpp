#include "framepress/Demuxer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "framepress/MediaLimits.h"
#include "framepress/error.h"

namespace fp {

namespace {
// Container demuxers for media files. Playlists (hls, concat) and image sequences are excluded: a
// file posing as video must not make the engine read other local files or URLs.
constexpr const char* kDemuxers =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,mpegvideo,h264,hevc,ivf,obu,m4v,"
    "asf,ogg,wav,mp3,aac,yuv4mpegpipe,nut";
}  // namespace

int Demuxer::interrupted(void* opaque) {
  auto* flag = static_cast<CancelFlag*>(opaque);
  return flag && flag->cancelled.load() ? 1 : 0;
}

int Demuxer::read_memory(void* opaque, uint8_t* buf, int size) {
  auto* m = static_cast<MemoryReader*>(opaque);
  const size_t n = std::min(static_cast<size_t>(size), m->size - m->pos);
  if (n == 0) return AVERROR_EOF;
  std::memcpy(buf, m->data + m->pos, n);
  m->pos += n;
  return static_cast<int>(n);
}

int64_t Demuxer::seek_memory(void* opaque, int64_t offset, int whence) {
  auto* m = static_cast<MemoryReader*>(opaque);
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return static_cast<int64_t>(m->size);
  const int64_t base = whence == SEEK_CUR ? static_cast<int64_t>(m->pos)
                       : whence == SEEK_END ? static_cast<int64_t>(m->size)
                                            : 0;
  if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) return AVERROR(EINVAL);
  if (offset > static_cast<int64_t>(m->size) - base || offset < -base) return AVERROR(EINVAL);
  m->pos = static_cast<size_t>(base + offset);
  return static_cast<int64_t>(m->pos);
}

Demuxer::Demuxer(const std::string& path, CancelFlagPtr cancel, bool probe)
    : Demuxer(MediaSource{path}, std::move(cancel), probe) {}

Demuxer::Demuxer(const MediaSource& source, CancelFlagPtr cancel, bool probe) : cancel_(std::move(cancel)) {
  const std::string& path = source.path;
  limit_ffmpeg_allocations();
  take_ffmpeg_log();  // errors logged before this job are not this job's
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw std::bad_alloc();
  raw->interrupt_callback.callback = &Demuxer::interrupted;
  raw->interrupt_callback.opaque = cancel_.get();
  Options opts;
  opts.set("format_whitelist", kDemuxers);
  std::string url;
  if (source.data) {
    constexpr int kBufferSize = 64 * 1024;
    memory_ = std::make_unique<MemoryReader>(MemoryReader{source.data, source.size, 0});
    auto* buffer = static_cast<uint8_t*>(av_malloc(kBufferSize));
    if (buffer) io_.reset(avio_alloc_context(buffer, kBufferSize, 0, memory_.get(), &Demuxer::read_memory, nullptr,
                                             &Demuxer::seek_memory));
    if (!io_) {
      av_free(buffer);
      avformat_free_context(raw);
      throw std::bad_alloc();
    }
    raw->pb = io_.get();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    opts.set("protocol_whitelist", "");  // nothing the container names is opened
  } else {
    opts.set("protocol_whitelist", "file");
    // "file:" so a name like "http:..." or "concat:..." is never read as a protocol.
    url = "file:" + path;
  }
  int ret = avformat_open_input(&raw, url.c_str(), nullptr, opts.ptr());
  if (ret < 0) {
    // avformat_open_input frees the context on failure.
    std::string text = ffmpeg_error_text(ret);
    throw Error(ErrorKind::Input, "open", "cannot open " + path + ": " + text, text);
  }
  format_.reset(raw);
  ret = probe || !header_describes_streams() ? find_stream_info() : 0;
  if (ret < 0) {
    std::string text = ffmpeg_error_text(ret);
    throw Error(ErrorKind::Input, "probe", "cannot read stream info of " + path + ": " + text, text);
  }
  video_index_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  audio_index_ = av_find_best_stream(format_.get(), AVMEDIA_TYPE_AUDIO, -1, video_index_, nullptr, 0);
  if (video_index_ < 0) video_index_ = -1;
  if (audio_index_ < 0) audio_index_ = -1;
  // Attached pictures (cover art) are not the video.
  if (video_index_ >= 0 && (format_->streams[video_index_]->disposition & AV_DISPOSITION_ATTACHED_PIC))
    video_index_ = -1;
  for (unsigned i = 0; i < format_->nb_streams; ++i)
    if (static_cast<int>(i) != video_index_ && format_->streams[i]->codecpar->codec_type != AVMEDIA_TYPE_AUDIO)
      format_->streams[i]->discard = AVDISCARD_ALL;
}

// Probing decodes frames too: the same picture-size limit as the decoders (the size the header
// declares is checked later; this bounds what a lying header can make probing allocate).
int Demuxer::find_stream_info() {
  std::vector<Options> per_stream(format_->nb_streams);
  std::vector<AVDictionary*> dicts;
  for (auto& o : per_stream) {
    o.set("max_pixels", std::to_string(kMaxFramePixels));
    dicts.push_back(*o.ptr());
  }
  int ret = avformat_find_stream_info(format_.get(), dicts.empty() ? nullptr : dicts.data());
  // FFmpeg may have replaced the dictionaries it was given: the Options own what is there now.
  for (size_t i = 0; i < dicts.size(); ++i) *per_stream[i].ptr() = dicts[i];
  return ret;
}

bool Demuxer::is_mp4() const { return std::string(format_->iformat->name) == "mov,mp4,m4a,3gp,3g2,mj2"; }

// An MP4/MOV header (the moov box) gives every track's codec, size, rate and decoder
// configuration; other containers may need their packets read to know them.
bool Demuxer::header_describes_streams() const {
  if (!is_mp4()) return false;
  bool video = false;
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    const AVStream* st = format_->streams[i];
    const AVCodecParameters* par = st->codecpar;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
      if (par->codec_id == AV_CODEC_ID_NONE || par->width <= 0 || par->height <= 0 || !par->extradata_size ||
          !(st->avg_frame_rate.num || st->r_frame_rate.num))
        return false;
      video = true;
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
      if (par->codec_id == AV_CODEC_ID_NONE || par->sample_rate <= 0 || par->ch_layout.nb_channels <= 0) return false;
    }
  }
  return video;
}

std::vector<AVStream*> Demuxer::audio_streams() const {
  std::vector<AVStream*> out;
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    AVStream* st = format_->streams[i];
    if (st->codecpar->codec_type == AVMEDIA_TYPE_AUDIO && st->discard != AVDISCARD_ALL) out.push_back(st);
  }
  return out;
}

bool Demuxer::read(AVPacket* pkt) {
  int ret = av_read_frame(format_.get(), pkt);
  if (ret == AVERROR_EOF) return false;
  if (ret == AVERROR_EXIT && cancel_ && cancel_->cancelled.load())
    throw Error(ErrorKind::Cancelled, "demux", "cancelled");
  // A read error after some packets is a truncated/corrupt file: end it there, the decoder
  // statistics decide whether what we got is usable.
  if (ret < 0) {
    if (ret == AVERROR(EIO) || ret == AVERROR_INVALIDDATA) return false;
    check(ret, ErrorKind::Input, "demux", "cannot read packet");
  }
  if (pkt->stream_index == video_index_) ++video_packets_;
  if ((pkt->stream_index == video_index_ || pkt->stream_index == audio_index_) && pkt->pts != AV_NOPTS_VALUE) {
    const AVStream* st = format_->streams[pkt->stream_index];
    const int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    // In floating point: a hostile file's timestamps can overflow the integer sum.
    const double end = static_cast<double>(pkt->pts) + static_cast<double>(pkt->duration) - static_cast<double>(start);
    read_until_ = std::max(read_until_, end * av_q2d(st->time_base));
  }
  return true;
}

void Demuxer::drop_audio() {
  for (AVStream* st : audio_streams()) st->discard = AVDISCARD_ALL;
  audio_index_ = -1;
}

int64_t Demuxer::video_start() const {
  const AVStream* st = video_stream();
  return st && st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
}

void Demuxer::seek_video(int64_t ts) {
  sought_ = true;
  const AVStream* st = video_stream();
  const int64_t step = std::max<int64_t>(1, av_rescale_q(1, AVRational{1, 1000}, st->time_base));
  UniquePacket pkt = make_packet();
  int64_t target = ts, landed_before = AV_NOPTS_VALUE;
  // Each step back lands earlier, down to the first packet.
  while (true) {
    const int ret = av_seek_frame(format_.get(), video_index_, target, AVSEEK_FLAG_BACKWARD);
    if (ret < 0 && landed_before == AV_NOPTS_VALUE)
      check(ret, ErrorKind::Input, "seek", "cannot seek in the source");
    if (ret < 0) {  // nothing before where the last step landed: read from there
      target += step;
      break;
    }
    int64_t pts = AV_NOPTS_VALUE, dts = AV_NOPTS_VALUE;
    bool key = false;
    while (av_read_frame(format_.get(), pkt.get()) >= 0) {
      const bool video = pkt->stream_index == video_index_;
      if (video) {
        pts = pkt->pts;
        dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
        key = pkt->flags & AV_PKT_FLAG_KEY;
      }
      av_packet_unref(pkt.get());
      if (video) break;
    }
    // Containers without an index (MPEG-TS) land on whatever packet is nearest, keyframe or not.
    const bool usable = key && (pts == AV_NOPTS_VALUE || pts <= ts);
    const bool earliest = dts == AV_NOPTS_VALUE || dts == landed_before;  // a step back lands no earlier
    if (usable || earliest) break;
    landed_before = dts;
    target = std::min(target, dts) - step;
  }
  check(av_seek_frame(format_.get(), video_index_, target, AVSEEK_FLAG_BACKWARD), ErrorKind::Input, "seek",
        "cannot seek in the source");
}

std::string Demuxer::truncation() const {
  if (sought_) return "";
  std::string why;
  const AVStream* st = video_stream();
  if (is_mp4() && st && st->nb_frames > 0 && video_packets_ < st->nb_frames) {
    // An MP4 index lists every sample exactly.
    why = "has " + std::to_string(video_packets_) + " of the " + std::to_string(st->nb_frames) +
          " video frames its index lists";
  } else if (format_->duration_estimation_method == AVFMT_DURATION_FROM_STREAM && format_->duration > 0) {
    // Other headers give a duration (rounded, and the longest stream's): a cut is what falls well
    // short of it.
    const double declared = format_->duration / static_cast<double>(AV_TIME_BASE);
    if (read_until_ < 0.9 * declared && declared - read_until_ > 1.0) {
      char text[96];
      std::snprintf(text, sizeof(text), "ends after %.1f s of the %.1f s its header declares", read_until_, declared);
      why = text;
    }
  }
  return why.empty() ? why : "the source " + why + ": it looks truncated, and the outputs are shorter than it claims to be";
}

double Demuxer::duration_seconds() const {
  if (format_->duration > 0) return format_->duration / static_cast<double>(AV_TIME_BASE);
  AVStream* st = video_stream();
  if (st && st->duration > 0) return st->duration * av_q2d(st->time_base);
  return 0;
}

const uint8_t* Demuxer::display_matrix(const AVStream* st) {
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
  // FFmpeg 6.1 moved stream side data into the codec parameters (and FFmpeg 8 removed the old call).
  const AVPacketSideData* sd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                       st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  const uint8_t* data = sd && sd->size >= kDisplayMatrixSize ? sd->data : nullptr;
#else
  size_t size = 0;
  const uint8_t* data = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (size < kDisplayMatrixSize) data = nullptr;
#endif
  return data;
}

double Demuxer::rotation(const AVStream* st) {
  const uint8_t* matrix = display_matrix(st);
  if (!matrix) return 0;
  double r = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  return std::isnan(r) ? 0 : r;
}

MediaInfo Demuxer::info() const {
  MediaInfo info;
  info.format = format_->iformat->name;
  info.duration = duration_seconds();
  info.bitrate = format_->bit_rate;
  const int64_t size = format_->pb ? avio_size(format_->pb) : -1;
  if (info.bitrate <= 0 && size > 0 && info.duration > 0) info.bitrate = static_cast<int64_t>(size * 8 / info.duration);
  for (unsigned i = 0; i < format_->nb_streams; ++i) {
    const AVStream* st = format_->streams[i];
    const AVCodecParameters* par = st->codecpar;
    StreamInfo s;
    s.index = static_cast<int>(i);
    s.type = av_get_media_type_string(par->codec_type) ? av_get_media_type_string(par->codec_type) : "unknown";
    s.codec = avcodec_get_name(par->codec_id);
    s.bitrate = par->bit_rate;
    s.frames = st->nb_frames;
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
      s.width = par->width;
      s.height = par->height;
      AVRational fr = st->avg_frame_rate.num ? st->avg_frame_rate : st->r_frame_rate;
      s.fps = fr.den ? av_q2d(fr) : 0;
      const char* pf = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
      s.pix_fmt = pf ? pf : "";
      s.rotation = rotation(st);
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
      s.sample_rate = par->sample_rate;
      s.channels = par->ch_layout.nb_channels;
    }
    info.streams.push_back(s);
  }
  return info;
}

}  // namespace fp
