#include "framepress/PartJoiner.h"

#include <memory>

#include "framepress/CopiedStream.h"
#include "framepress/Demuxer.h"
#include "framepress/error.h"
#include "framepress/ffmpeg.h"

namespace fp {

namespace {

// The packets of one stream kind, file after file, each with its decode time in seconds: the video
// stream of each file, or every audio stream of it (a track each, in file order).
class PacketReader {
 public:
  PacketReader(std::vector<std::string> files, bool video) : files_(std::move(files)), video_(video) {}

  // The next packet, or nullptr at the end of the last file.
  AVPacket* next() {
    while (true) {
      if (!demuxer_) {
        if (index_ == files_.size()) return nullptr;
        demuxer_ = std::make_unique<Demuxer>(files_[index_++], nullptr, /*probe=*/false);
        if (streams().empty()) throw Error(ErrorKind::Input, "join", files_[index_ - 1] + " has no stream to join");
      }
      av_packet_unref(pkt_.get());
      if (demuxer_->read(pkt_.get())) {
        if (track() >= 0) return pkt_.get();
        continue;
      }
      demuxer_.reset();
    }
  }
  // The current file's streams of this kind.
  std::vector<AVStream*> streams() const {
    if (!video_) return demuxer_->audio_streams();
    AVStream* st = demuxer_->video_stream();
    return st ? std::vector<AVStream*>{st} : std::vector<AVStream*>{};
  }
  // Which of them the current packet belongs to; -1 for none.
  int track() const {
    const std::vector<AVStream*> all = streams();
    for (size_t t = 0; t < all.size(); ++t)
      if (all[t]->index == pkt_->stream_index) return static_cast<int>(t);
    return -1;
  }
  AVRational time_base() const { return demuxer_->stream(pkt_->stream_index)->time_base; }
  double dts_seconds() const {
    const int64_t ts = pkt_->dts != AV_NOPTS_VALUE ? pkt_->dts : pkt_->pts;
    return ts == AV_NOPTS_VALUE ? 0 : ts * av_q2d(time_base());
  }
  const std::string& file() const { return files_[index_ - 1]; }

 private:
  std::vector<std::string> files_;
  bool video_;
  size_t index_ = 0;
  std::unique_ptr<Demuxer> demuxer_;
  UniquePacket pkt_ = make_packet();
};

}  // namespace

int64_t PartJoiner::join(const std::vector<std::string>& video_parts, const std::string& audio, const std::string& out) {
  if (video_parts.empty()) throw Error(ErrorKind::Output, "join", "no parts to join into " + out);
  PacketReader video(video_parts, true);
  std::unique_ptr<PacketReader> sound = audio.empty() ? nullptr : std::make_unique<PacketReader>(std::vector{audio}, false);

  AVPacket* v = video.next();
  AVPacket* a = sound ? sound->next() : nullptr;
  if (!v) throw Error(ErrorKind::Output, "join", video_parts.front() + " has no video packets");

  AVFormatContext* raw = nullptr;
  check(avformat_alloc_output_context2(&raw, nullptr, "mp4", out.c_str()), ErrorKind::Output, "join",
        "cannot create " + out);
  UniqueFormatOutput format(raw);
  const AVStream* video_in = video.streams().front();
  AVStream* video_out = add_copied_stream(format.get(), video_in, "join");
  std::vector<AVStream*> audio_out;
  if (a)
    for (const AVStream* in : sound->streams()) audio_out.push_back(add_copied_stream(format.get(), in, "join"));
  check(avio_open(&format->pb, out.c_str(), AVIO_FLAG_WRITE), ErrorKind::Output, "join", "cannot write " + out);
  Options opts;
  opts.set("movflags", "+faststart");
  check(avformat_write_header(format.get(), opts.ptr()), ErrorKind::Output, "join", "cannot write header of " + out);

  int64_t written = 0, last_dts = AV_NOPTS_VALUE;
  // Video and audio in decode-time order, so the file interleaves as the muxer would.
  while (v || a) {
    const bool take_video = v && (!a || video.dts_seconds() <= sound->dts_seconds());
    PacketReader& from = take_video ? video : *sound;
    AVPacket* pkt = take_video ? v : a;
    AVStream* to = take_video ? video_out : audio_out[from.track()];
    const AVRational from_tb = from.time_base();
    if (take_video) {
      const int64_t dts = av_rescale_q(pkt->dts, from_tb, to->time_base);
      if (last_dts != AV_NOPTS_VALUE && dts <= last_dts)
        throw Error(ErrorKind::Output, "join", from.file() + " overlaps the part before it (decode time " +
                                                   std::to_string(pkt->dts * av_q2d(from_tb)) +
                                                   " s)");
      last_dts = dts;
      ++written;
    }
    av_packet_rescale_ts(pkt, from_tb, to->time_base);
    pkt->stream_index = to->index;
    pkt->pos = -1;
    check(av_interleaved_write_frame(format.get(), pkt), ErrorKind::Output, "join", "cannot write to " + out);
    if (take_video) v = video.next();
    else a = sound->next();
  }
  check(av_write_trailer(format.get()), ErrorKind::Output, "join", "cannot finish " + out);
  check(avio_closep(&format->pb), ErrorKind::Output, "join", "cannot close " + out);
  return written;
}

}  // namespace fp
