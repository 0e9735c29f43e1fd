#include "framepress/ThumbnailSink.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "framepress/Scaler.h"
#include "framepress/error.h"

namespace fp {

namespace {

int even(double v) { return std::max(2, static_cast<int>(std::lround(v / 2.0)) * 2); }

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

Error write_error(const std::string& path) {
  return Error(ErrorKind::Output, "thumbnails", "cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace

ThumbnailSink::ThumbnailSink(std::string dir, const ThumbnailOptions& options, AVRational sample_aspect,
                             double poster_at, double rotation)
    : dir_(std::move(dir)), options_(options), sample_aspect_(sample_aspect.num > 0 ? sample_aspect : AVRational{1, 1}),
      poster_at_(poster_at) {
  // FFmpeg's rotation is counter-clockwise; showing the picture turns it back clockwise.
  turns_ = ((static_cast<int>(std::lround(-rotation / 90.0)) % 4) + 4) % 4;
  std::error_code ec;
  if (!std::filesystem::create_directories(dir_, ec) && ec)
    throw Error(ErrorKind::Output, "prepare output", "cannot create " + dir_ + ": " + ec.message());
  result_.columns = options_.columns;
  result_.rows = options_.rows;
}

namespace {

// Turns a 4:2:0 picture by quarter turns clockwise, plane by plane.
UniqueFrame rotated(const AVFrame* src, int turns) {
  UniqueFrame dst = make_frame();
  dst->format = src->format;
  dst->color_range = src->color_range;
  dst->width = turns % 2 ? src->height : src->width;
  dst->height = turns % 2 ? src->width : src->height;
  check(av_frame_get_buffer(dst.get(), 0), ErrorKind::Encode, "thumbnails", "out of memory");
  for (int plane = 0; plane < 3; ++plane) {
    const int shift = plane ? 1 : 0;
    const int w = src->width >> shift, h = src->height >> shift;  // the source plane
    const uint8_t* in = src->data[plane];
    uint8_t* out = dst->data[plane];
    const int is = src->linesize[plane], os = dst->linesize[plane];
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const uint8_t v = in[y * is + x];
        if (turns == 1) out[x * os + (h - 1 - y)] = v;
        else if (turns == 2) out[(h - 1 - y) * os + (w - 1 - x)] = v;
        else out[(w - 1 - x) * os + y] = v;
      }
  }
  return dst;
}

}  // namespace

UniqueFrame ThumbnailSink::convert(const AVFrame* frame, int width, int height) {
  if (turns_ % 2) std::swap(width, height);
  UniqueFrame upright = scale(frame, width, height);
  return turns_ ? rotated(upright.get(), turns_) : std::move(upright);
}

UniqueFrame ThumbnailSink::scale(const AVFrame* frame, int width, int height) {
  UniqueFrame sw;
  if (frame->hw_frames_ctx) {  // a GPU frame: only the few frames kept here come down
    sw = make_frame();
    check(av_hwframe_transfer_data(sw.get(), frame, 0), ErrorKind::Gpu, "thumbnails", "cannot download a frame");
    frame = sw.get();
  }
  const int key[6] = {frame->width, frame->height, frame->format, Scaler::full_range(frame), width, height};
  if (!sws_ || !std::equal(key, key + 6, sws_key_)) {
    sws_.reset(sws_alloc_context());
    if (!sws_) throw std::bad_alloc();
    av_opt_set_int(sws_.get(), "srcw", frame->width, 0);
    av_opt_set_int(sws_.get(), "srch", frame->height, 0);
    av_opt_set_int(sws_.get(), "src_format", frame->format, 0);
    av_opt_set_int(sws_.get(), "src_range", key[3], 0);
    av_opt_set_int(sws_.get(), "dstw", width, 0);
    av_opt_set_int(sws_.get(), "dsth", height, 0);
    av_opt_set_int(sws_.get(), "dst_format", AV_PIX_FMT_YUVJ420P, 0);
    av_opt_set_int(sws_.get(), "dst_range", 1, 0);
    av_opt_set_int(sws_.get(), "sws_flags", SWS_BICUBIC, 0);
    check(sws_init_context(sws_.get(), nullptr, nullptr), ErrorKind::Encode, "thumbnails",
          "cannot convert a frame for a thumbnail");
    std::copy(key, key + 6, sws_key_);
  }
  UniqueFrame out = make_frame();
  out->format = AV_PIX_FMT_YUVJ420P;
  out->width = width;
  out->height = height;
  out->color_range = AVCOL_RANGE_JPEG;
  check(av_frame_get_buffer(out.get(), 0), ErrorKind::Encode, "thumbnails", "out of memory");
  sws_scale(sws_.get(), frame->data, frame->linesize, 0, frame->height, out->data, out->linesize);
  return out;
}

void ThumbnailSink::push(const AVFrame* frame, double seconds) {
  if (last_seconds_ >= 0 && seconds > last_seconds_) frame_seconds_ = seconds - last_seconds_;
  last_seconds_ = seconds;
  double display_width = frame->width * av_q2d(sample_aspect_), display_height = frame->height;
  if (turns_ % 2) std::swap(display_width, display_height);
  if (!poster_final_ && (!poster_ || seconds >= poster_at_)) {
    const int width = even(std::min(display_width, static_cast<double>(options_.poster_width)));
    poster_ = convert(frame, width, even(width * display_height / display_width));
    poster_final_ = seconds >= poster_at_;
  }
  // A gap in the video longer than the interval: its slots show the frame after it.
  for (; seconds >= next_tile_; next_tile_ += options_.interval) {
    if (!result_.tile_width) {
      result_.tile_width = even(options_.tile_width);
      result_.tile_height = even(result_.tile_width * display_height / display_width);
    }
    tiles_.push_back(convert(frame, result_.tile_width, result_.tile_height));
    result_.times.push_back(next_tile_);
    if (static_cast<int>(tiles_.size()) == options_.columns * options_.rows) write_sprite();
  }
}

void ThumbnailSink::write_sprite() {
  const int columns = std::min(options_.columns, static_cast<int>(tiles_.size()));
  const int rows = static_cast<int>((tiles_.size() + options_.columns - 1) / options_.columns);
  UniqueFrame sheet = make_frame();
  sheet->format = AV_PIX_FMT_YUVJ420P;
  sheet->width = columns * result_.tile_width;
  sheet->height = rows * result_.tile_height;
  sheet->color_range = AVCOL_RANGE_JPEG;
  check(av_frame_get_buffer(sheet.get(), 0), ErrorKind::Encode, "thumbnails", "out of memory");
  for (int plane = 0; plane < 3; ++plane) {  // black where a last sheet has no tile
    const int h = plane ? sheet->height / 2 : sheet->height;
    std::fill_n(sheet->data[plane], static_cast<size_t>(sheet->linesize[plane]) * h, plane ? 128 : 0);
  }
  for (size_t i = 0; i < tiles_.size(); ++i) {
    const int x = static_cast<int>(i % options_.columns) * result_.tile_width;
    const int y = static_cast<int>(i / options_.columns) * result_.tile_height;
    for (int plane = 0; plane < 3; ++plane) {
      const int shift = plane ? 1 : 0;
      av_image_copy_plane(sheet->data[plane] + (y >> shift) * sheet->linesize[plane] + (x >> shift),
                          sheet->linesize[plane], tiles_[i]->data[plane], tiles_[i]->linesize[plane],
                          result_.tile_width >> shift, result_.tile_height >> shift);
    }
  }
  char name[32];
  std::snprintf(name, sizeof(name), "sprite_%03zu.jpg", result_.sprites.size());
  write_jpeg(sheet.get(), dir_ + "/" + name);
  result_.sprites.push_back(dir_ + "/" + name);
  tiles_.clear();
}

void ThumbnailSink::write_jpeg(const AVFrame* picture, const std::string& path) {
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
  if (!codec) throw Error(ErrorKind::Encode, "thumbnails", "this FFmpeg has no JPEG encoder");
  UniqueCodecContext enc(avcodec_alloc_context3(codec));
  if (!enc) throw std::bad_alloc();
  enc->width = picture->width;
  enc->height = picture->height;
  enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
  enc->color_range = AVCOL_RANGE_JPEG;
  enc->time_base = AVRational{1, 1};
  enc->flags |= AV_CODEC_FLAG_QSCALE;
  check(avcodec_open2(enc.get(), codec, nullptr), ErrorKind::Encode, "thumbnails",
        "cannot open the JPEG encoder for a " + std::to_string(picture->width) + "x" +
            std::to_string(picture->height) + " picture");
  UniqueFrame frame = ref_frame(picture);
  frame->pts = 0;
  frame->quality = FF_QP2LAMBDA * 4;  // mjpeg's q:v 4: small tiles, no visible blocks
  check(avcodec_send_frame(enc.get(), frame.get()), ErrorKind::Encode, "thumbnails", "cannot encode " + path);
  check(avcodec_send_frame(enc.get(), nullptr), ErrorKind::Encode, "thumbnails", "cannot encode " + path);
  UniquePacket pkt = make_packet();
  check(avcodec_receive_packet(enc.get(), pkt.get()), ErrorKind::Encode, "thumbnails", "cannot encode " + path);
  std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  if (!file) throw write_error(path);
  const bool written = std::fwrite(pkt->data, 1, pkt->size, file.get()) == static_cast<size_t>(pkt->size);
  // A small image stays in stdio's buffer until the file is closed: a full disk may show only then.
  if (!written || std::fclose(file.release()) != 0) throw write_error(path);
}

ThumbnailResult ThumbnailSink::finish() {
  if (!tiles_.empty()) write_sprite();
  if (poster_) {
    result_.poster = dir_ + "/poster.jpg";
    write_jpeg(poster_.get(), result_.poster);
  }
  result_.end = last_seconds_ + frame_seconds_;
  return result_;
}

}  // namespace fp
