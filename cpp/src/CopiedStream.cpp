#include "framepress/CopiedStream.h"

#include <cstring>
#include <new>

#include "framepress/Demuxer.h"
#include "framepress/error.h"

namespace fp {

AVStream* add_copied_stream(AVFormatContext* out, const AVStream* in, const std::string& step) {
  AVStream* st = avformat_new_stream(out, nullptr);
  if (!st) throw std::bad_alloc();
  check(avcodec_parameters_copy(st->codecpar, in->codecpar), ErrorKind::Output, step, "out of memory");
  st->codecpar->codec_tag = 0;  // the output container picks its own
  st->time_base = in->time_base;
  st->avg_frame_rate = in->avg_frame_rate;
  st->sample_aspect_ratio = in->sample_aspect_ratio;
  st->disposition = in->disposition;  // which audio track players start with
  if (const AVDictionaryEntry* lang = av_dict_get(in->metadata, "language", nullptr, 0))
    check(av_dict_set(&st->metadata, "language", lang->value, 0), ErrorKind::Output, step, "out of memory");
#if LIBAVFORMAT_VERSION_INT < AV_VERSION_INT(60, 15, 100)
  // Rotation: since FFmpeg 6.1 the codec parameters copied above carry it; before, the stream does.
  if (const uint8_t* matrix = Demuxer::display_matrix(in)) {
    uint8_t* data = av_stream_new_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, kDisplayMatrixSize);
    if (!data) throw std::bad_alloc();
    std::memcpy(data, matrix, kDisplayMatrixSize);
  }
#endif
  return st;
}

}  // namespace fp
