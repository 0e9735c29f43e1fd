#include "framepress/Demuxer.h"

#include <cmath>

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

Demuxer::Demuxer(const std::string& path, CancelFlagPtr cancel, bool probe) : cancel_(std::move(cancel)) {
  take_ffmpeg_log();  // errors logged before this job are not this job's
  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) throw Error(ErrorKind::Input, "open", "out of memory opening " + path);
  raw->interrupt_callback.callback = &Demuxer::interrupted;
  raw->interrupt_callback.opaque = cancel_.get();
  Options opts;
  opts.set("protocol_whitelist", "file").set("format_whitelist", kDemuxers);
  // "file:" so a name like "http:..." or "concat:..." is never read as a protocol.
  std::string url = "file:" + path;
  int ret = avformat_open_input(&raw, url.c_str(), nullptr, opts.ptr());
  if (ret < 0) {
    // avformat_open_input frees the context on failure.
    std::string text = ffmpeg_error_text(ret);
    throw Error(ErrorKind::Input, "open", "cannot open " + path + ": " + text, text);
  }
  ctx_.reset(raw);
  ret = probe || !header_describes_streams() ? avformat_find_stream_info(ctx_.get(), nullptr) : 0;
  if (ret < 0) {
    std::string text = ffmpeg_error_text(ret);
    throw Error(ErrorKind::Input, "probe", "cannot read stream info of " + path + ": " + text, text);
  }
  video_index_ = av_find_best_stream(ctx_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  audio_index_ = av_find_best_stream(ctx_.get(), AVMEDIA_TYPE_AUDIO, -1, video_index_, nullptr, 0);
  if (video_index_ < 0) video_index_ = -1;
  if (audio_index_ < 0) audio_index_ = -1;
  // Attached pictures (cover art) are not the video.
  if (video_index_ >= 0 && (ctx_->streams[video_index_]->disposition & AV_DISPOSITION_ATTACHED_PIC))
    video_index_ = -1;
  for (unsigned i = 0; i < ctx_->nb_streams; ++i)
    if (static_cast<int>(i) != video_index_ && static_cast<int>(i) != audio_index_)
      ctx_->streams[i]->discard = AVDISCARD_ALL;
}

// An MP4/MOV header (the moov box) gives every track's codec, size, rate and decoder
// configuration; other containers may need their packets read to know them.
bool Demuxer::header_describes_streams() const {
  if (std::string(ctx_->iformat->name) != "mov,mp4,m4a,3gp,3g2,mj2") return false;
  bool video = false;
  for (unsigned i = 0; i < ctx_->nb_streams; ++i) {
    const AVStream* st = ctx_->streams[i];
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

bool Demuxer::read(AVPacket* pkt) {
  int ret = av_read_frame(ctx_.get(), pkt);
  if (ret == AVERROR_EOF) return false;
  if (ret == AVERROR_EXIT && cancel_ && cancel_->cancelled.load())
    throw Error(ErrorKind::Cancelled, "demux", "cancelled");
  // A read error after some packets is a truncated/corrupt file: end it there, the decoder
  // statistics decide whether what we got is usable.
  if (ret < 0) {
    if (ret == AVERROR(EIO) || ret == AVERROR_INVALIDDATA) return false;
    check(ret, ErrorKind::Input, "demux", "cannot read packet");
  }
  return true;
}

double Demuxer::duration_seconds() const {
  if (ctx_->duration > 0) return ctx_->duration / static_cast<double>(AV_TIME_BASE);
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
  info.format = ctx_->iformat->name;
  info.duration = duration_seconds();
  info.bitrate = ctx_->bit_rate;
  const int64_t size = ctx_->pb ? avio_size(ctx_->pb) : -1;
  if (info.bitrate <= 0 && size > 0 && info.duration > 0) info.bitrate = static_cast<int64_t>(size * 8 / info.duration);
  for (unsigned i = 0; i < ctx_->nb_streams; ++i) {
    const AVStream* st = ctx_->streams[i];
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
