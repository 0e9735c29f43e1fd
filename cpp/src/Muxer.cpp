#include "framepress/Muxer.h"

#include <cstring>

#include "framepress/error.h"

namespace fp {

Muxer::Muxer(const std::string& path, const char* format, const std::map<std::string, std::string>& options)
    : path_(path), options_(options), scratch_(make_packet()) {
  AVFormatContext* raw = nullptr;
  check(avformat_alloc_output_context2(&raw, nullptr, format, path.c_str()), ErrorKind::Output, "open output",
        "cannot create " + std::string(format) + " output " + path);
  format_.reset(raw);
}

Muxer::~Muxer() {
  // Muxers that open their own files (HLS segments, init sections) close them only in their
  // trailer; an aborted job still has to end them so no descriptor outlives it. The files are in
  // the job's staging directory, which is removed.
  if (header_written_ && (format_->oformat->flags & AVFMT_NOFILE)) av_write_trailer(format_.get());
  take_ffmpeg_log();
}

int Muxer::add_stream(const AVCodecContext* enc, const uint8_t* display_matrix) {
  AVStream* st = avformat_new_stream(format_.get(), nullptr);
  if (!st) throw Error(ErrorKind::Output, "open output", "cannot add stream to " + path_);
  check(avcodec_parameters_from_context(st->codecpar, enc), ErrorKind::Output, "open output",
        "cannot copy codec parameters");
  st->time_base = enc->time_base;
  st->sample_aspect_ratio = enc->sample_aspect_ratio;
  st->avg_frame_rate = enc->framerate;
  if (display_matrix) {
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
    // FFmpeg 6.1 moved stream side data into the codec parameters (and FFmpeg 8 removed the old call).
    AVPacketSideData* sd = av_packet_side_data_new(&st->codecpar->coded_side_data, &st->codecpar->nb_coded_side_data,
                                                   AV_PKT_DATA_DISPLAYMATRIX, kDisplayMatrixSize, 0);
    uint8_t* data = sd ? sd->data : nullptr;
#else
    uint8_t* data = av_stream_new_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, kDisplayMatrixSize);
#endif
    if (!data) throw Error(ErrorKind::Output, "open output", "out of memory");
    std::memcpy(data, display_matrix, kDisplayMatrixSize);
  }
  return st->index;
}

void Muxer::set_language(int stream, const std::string& language) {
  if (language.empty()) return;
  check(av_dict_set(&format_->streams[stream]->metadata, "language", language.c_str(), 0), ErrorKind::Output,
        "open output", "out of memory");
}

void Muxer::write_header() {
  if (!(format_->oformat->flags & AVFMT_NOFILE)) {
    check(avio_open(&format_->pb, path_.c_str(), AVIO_FLAG_WRITE), ErrorKind::Output, "open output",
          "cannot write " + path_);
  }
  Options opts;
  for (const auto& [k, v] : options_) opts.set(k.c_str(), v);
  check(avformat_write_header(format_.get(), opts.ptr()), ErrorKind::Output, "write header",
        "cannot write header of " + path_);
  header_written_ = true;
}

void Muxer::write(const AVPacket* pkt, int stream, AVRational src_tb) {
  check(av_packet_ref(scratch_.get(), pkt), ErrorKind::Output, "mux", "out of memory");
  scratch_->stream_index = stream;
  av_packet_rescale_ts(scratch_.get(), src_tb, format_->streams[stream]->time_base);
  check(av_interleaved_write_frame(format_.get(), scratch_.get()), ErrorKind::Output, "mux",
        "cannot write to " + path_);
}

void Muxer::finish() {
  if (!header_written_) return;
  check(av_write_trailer(format_.get()), ErrorKind::Output, "write trailer", "cannot finish " + path_);
  header_written_ = false;
  if (format_->pb && !(format_->oformat->flags & AVFMT_NOFILE)) {
    check(avio_closep(&format_->pb), ErrorKind::Output, "close output", "cannot close " + path_);
  }
}

}  // namespace fp
