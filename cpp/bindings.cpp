// The one binding file: converts options and results, releases the GIL for all native work, and
// maps engine errors onto framepress.errors classes.
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "framepress/AudioRendition.h"
#include "framepress/CudaScaler.h"
#include "framepress/Decoder.h"
#include "framepress/Demuxer.h"
#include "framepress/Encoder.h"
#include "framepress/HwDevice.h"
#include "framepress/PartJoiner.h"
#include "framepress/SourceRemux.h"
#include "framepress/SourceSpan.h"
#include "framepress/StandaloneAudio.h"
#include "framepress/Transcoder.h"
#include "framepress/error.h"
#include "framepress/log.h"

namespace py = pybind11;
using namespace pybind11::literals;

namespace {

const char* error_class(fp::ErrorKind kind) {
  switch (kind) {
    case fp::ErrorKind::Input: return "InputError";
    case fp::ErrorKind::Encode: return "EncodeError";
    case fp::ErrorKind::Output: return "OutputError";
    case fp::ErrorKind::Cancelled: return "Cancelled";
    case fp::ErrorKind::Hardware: return "HardwareError";
    case fp::ErrorKind::Gpu: return "GpuError";
  }
  return "FramepressError";
}

py::dict to_dict(const fp::MediaInfo& info) {
  py::list streams;
  for (const auto& s : info.streams)
    streams.append(py::dict("index"_a = s.index, "type"_a = s.type, "codec"_a = s.codec, "bitrate"_a = s.bitrate,
                            "width"_a = s.width, "height"_a = s.height, "fps"_a = s.fps, "pix_fmt"_a = s.pix_fmt,
                            "rotation"_a = s.rotation, "frames"_a = s.frames, "sample_rate"_a = s.sample_rate,
                            "channels"_a = s.channels));
  return py::dict("format"_a = info.format, "duration"_a = info.duration, "bitrate"_a = info.bitrate,
                  "streams"_a = streams);
}

py::dict to_dict(const fp::HwCapabilities& c) {
  return py::dict("cuda"_a = c.cuda, "cuda_error"_a = c.cuda_error, "scale_cuda"_a = c.scale_cuda,
                  "nvdec_codecs"_a = c.nvdec_codecs, "nvenc_encoders"_a = c.nvenc_encoders);
}

fp::HwCapabilities capabilities_from(const py::dict& caps) {
  fp::HwCapabilities c;
  c.cuda = caps["cuda"].cast<bool>();
  c.cuda_error = caps.contains("cuda_error") ? caps["cuda_error"].cast<std::string>() : "";
  c.scale_cuda = caps["scale_cuda"].cast<bool>();
  c.nvdec_codecs = caps["nvdec_codecs"].cast<std::vector<std::string>>();
  c.nvenc_encoders = caps["nvenc_encoders"].cast<std::vector<std::string>>();
  return c;
}

fp::SourceVideo source_from(const py::dict& source) {
  fp::SourceVideo s;
  s.codec = source["codec"].cast<std::string>();
  s.profile = source.contains("profile") ? source["profile"].cast<std::string>() : "";
  s.pix_fmt = source.contains("pix_fmt") ? source["pix_fmt"].cast<std::string>() : "";
  s.hdr = source.contains("hdr") && source["hdr"].cast<bool>();
  s.interlaced = source.contains("interlaced") && source["interlaced"].cast<bool>();
  return s;
}

fp::RungOptions rung_from(const py::dict& r) {
  fp::RungOptions rung;
  rung.name = r["name"].cast<std::string>();
  rung.height = r["height"].cast<int>();
  rung.codec = fp::video_codec_named(r["codec"].cast<std::string>());
  rung.bitrate = r["bitrate"].cast<int64_t>();
  rung.crf = r["crf"].cast<int>();
  rung.preset = r["preset"].cast<std::string>();
  rung.profile = r["profile"].cast<std::string>();
  rung.maxrate = r["maxrate"].cast<int64_t>();
  rung.bufsize = r["bufsize"].cast<int64_t>();
  return rung;
}

// The ladder's audio.tracks: "all", "first", or a list of languages.
fp::AudioPolicy audio_policy_from(const py::object& tracks) {
  fp::AudioPolicy policy;
  if (py::isinstance<py::str>(tracks)) {
    policy.keep = tracks.cast<std::string>();
  } else {
    policy.keep = "languages";
    policy.languages = tracks.cast<std::vector<std::string>>();
  }
  return policy;
}

fp::TranscodeOptions options_from(const py::dict& cfg) {
  fp::TranscodeOptions o;
  o.gop_seconds = cfg["gop_seconds"].cast<double>();
  o.segment_seconds = cfg["segment_seconds"].cast<double>();
  o.audio_bitrate = cfg["audio_bitrate"].cast<int64_t>();
  if (cfg.contains("audio_tracks")) o.audio = audio_policy_from(cfg["audio_tracks"]);
  o.hls = cfg["hls"].cast<bool>();
  if (cfg.contains("thumbnails")) {
    auto t = cfg["thumbnails"].cast<py::dict>();
    o.thumbnails.interval = t["interval"].cast<double>();
    o.thumbnails.tile_width = t["tile_width"].cast<int>();
    o.thumbnails.columns = t["columns"].cast<int>();
    o.thumbnails.rows = t["rows"].cast<int>();
    o.thumbnails.poster_width = t["poster_width"].cast<int>();
  }
  if (cfg.contains("quality")) o.quality = cfg["quality"].cast<bool>();
  o.hwaccel = fp::hw_request_named(cfg["hwaccel"].cast<std::string>());
  o.threads = cfg["threads"].cast<int>();
  if (cfg.contains("start")) {
    o.ranged = true;
    o.start = cfg["start"].cast<double>();
    o.end = cfg["end"].cast<double>();
  }
  for (auto item : cfg["rungs"]) o.rungs.push_back(rung_from(item.cast<py::dict>()));
  return o;
}

py::dict to_dict(const fp::AudioResult& a) {
  return py::dict("index"_a = a.index, "codec"_a = a.codec, "language"_a = a.language, "sample_rate"_a = a.sample_rate,
                  "channels"_a = a.channels, "channel_layout"_a = a.channel_layout, "warnings"_a = a.warnings);
}

py::dict to_dict(const fp::AudioRenditionResult& a) {
  return py::dict("name"_a = a.name, "playlist"_a = a.playlist, "index"_a = a.index, "language"_a = a.language,
                  "default"_a = a.is_default, "sample_rate"_a = a.sample_rate, "channels"_a = a.channels);
}

py::dict to_dict(const fp::ThumbnailResult& t) {
  return py::dict("poster"_a = t.poster, "sprites"_a = t.sprites, "tile_width"_a = t.tile_width,
                  "tile_height"_a = t.tile_height, "columns"_a = t.columns, "rows"_a = t.rows, "times"_a = t.times,
                  "end"_a = t.end);
}

py::dict to_dict(const fp::TranscodeResult& res) {
  py::list audio_renditions;
  for (const auto& a : res.audio_renditions) audio_renditions.append(to_dict(a));
  py::list renditions;
  for (const auto& r : res.renditions)
    renditions.append(py::dict("name"_a = r.name, "path"_a = r.path, "width"_a = r.width, "height"_a = r.height,
                               "frames"_a = r.frames, "bytes"_a = r.bytes, "bitrate"_a = r.bitrate,
                               "encode_fps"_a = r.encode_fps, "codec"_a = r.codec, "codec_string"_a = r.codec_string,
                               "playlist"_a = r.playlist, "has_audio"_a = r.has_audio, "psnr"_a = r.psnr,
                               "ssim"_a = r.ssim));
  return py::dict("renditions"_a = renditions, "hwaccel_used"_a = fp::name_of(res.hwaccel_used),
                  "hwaccel_reason"_a = res.hwaccel_reason, "seconds"_a = res.seconds,
                  "decoded_frames"_a = res.decoded_frames, "fps"_a = res.fps, "source"_a = to_dict(res.source),
                  "audio"_a = to_dict(res.audio), "audio_renditions"_a = audio_renditions,
                  "thumbnails"_a = to_dict(res.thumbnails),
                  "warnings"_a = res.warnings);
}

}  // namespace

PYBIND11_MODULE(_engine, m) {
  m.doc() = "framepress native engine (FFmpeg)";
  fp::install_log_capture();

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const fp::Error& e) {
      py::object cls = py::module_::import("framepress.errors").attr(error_class(e.kind));
      py::object exc = cls(e.what(), "step"_a = e.step, "ffmpeg_message"_a = e.ffmpeg_message);
      PyErr_SetObject(cls.ptr(), exc.ptr());
    }
  });

  py::class_<fp::CancelFlag, fp::CancelFlagPtr>(m, "CancelFlag")
      .def(py::init<>())
      .def("cancel", [](fp::CancelFlag& f) { f.cancelled.store(true); })
      .def("cancelled", [](const fp::CancelFlag& f) { return f.cancelled.load(); });

  m.def("probe", [](const std::string& path) {
    fp::MediaInfo info;
    {
      py::gil_scoped_release release;
      info = fp::Demuxer(path).info();
    }
    return to_dict(info);
  }, "path"_a);

  m.def("transcode", [](const std::string& input, const std::string& out_dir, const py::dict& config,
                        py::object on_progress, fp::CancelFlagPtr cancel) {
    fp::TranscodeOptions options = options_from(config);
    fp::ProgressFn progress;
    if (!on_progress.is_none()) {
      // The engine copies and destroys the callback without the GIL: it holds the Python object
      // through a shared_ptr, whose copies touch no Python reference count, and whose last owner
      // takes the GIL to release it.
      std::shared_ptr<py::object> callback(new py::object(std::move(on_progress)), [](py::object* o) {
        py::gil_scoped_acquire gil;
        delete o;
      });
      // Called on the decoding thread; takes the GIL only for the call. An exception in the
      // callback cancels the job rather than unwinding through native code.
      progress = [callback, cancel](double fraction, int64_t frames, double elapsed) {
        py::gil_scoped_acquire gil;
        try {
          (*callback)(fraction, frames, elapsed);
        } catch (py::error_already_set& e) {
          e.discard_as_unraisable("framepress progress callback");
          if (cancel) cancel->cancelled.store(true);
        }
      };
    }
    fp::TranscodeResult result;
    {
      py::gil_scoped_release release;
      result = fp::Transcoder(input, out_dir, std::move(options), std::move(progress), cancel).run();
    }
    return to_dict(result);
  }, "input"_a, "out_dir"_a, "config"_a, "on_progress"_a, "cancel"_a);

  // For a source transcoded in parts (time ranges) by several workers, and the parts' stitching.
  m.def("range_span", [](const std::string& path, double start, double end) {
    fp::ByteSpan span;
    {
      py::gil_scoped_release release;
      span = fp::SourceSpan::of_range(path, start, end);
    }
    return py::dict("first"_a = span.first, "end"_a = span.end, "packets"_a = span.packets);
  }, "path"_a, "start"_a, "end"_a);

  m.def("remux_to_mp4", [](const std::string& source, const std::string& out, const py::object& tracks) {
    const fp::AudioPolicy policy = audio_policy_from(tracks);
    fp::RemuxResult copied;
    {
      py::gil_scoped_release release;
      copied = fp::SourceRemux::to_mp4(source, out, policy);
    }
    return py::dict("video_packets"_a = copied.video_packets, "audio_streams"_a = copied.audio_streams,
                    "left_out"_a = copied.left_out);
  }, "source"_a, "out"_a, "tracks"_a);

  m.def("write_audio", [](const std::string& source, const std::string& out_dir, int64_t bitrate,
                          double segment_seconds, const py::object& tracks) {
    const fp::AudioPolicy policy = audio_policy_from(tracks);
    fp::StandaloneAudioResult written;
    {
      py::gil_scoped_release release;
      written = fp::StandaloneAudio::write(source, out_dir, bitrate, segment_seconds, policy);
    }
    py::list renditions;
    for (const auto& a : written.audio_renditions) renditions.append(to_dict(a));
    return py::dict("audio"_a = to_dict(written.audio), "audio_renditions"_a = renditions);
  }, "source"_a, "out_dir"_a, "bitrate"_a, "segment_seconds"_a, "tracks"_a);

  m.def("join_parts", [](const std::vector<std::string>& parts, const std::string& audio, const std::string& out) {
    py::gil_scoped_release release;
    return fp::PartJoiner::join(parts, audio, out);
  }, "parts"_a, "audio"_a, "out"_a);

  m.def("hw_capabilities", [] {
    fp::HwCapabilities caps;
    {
      py::gil_scoped_release release;
      caps = fp::HwDevice::capabilities();
    }
    return to_dict(caps);
  });

  m.def("choose_hwaccel", [](const std::string& requested, const py::dict& caps, const py::dict& source,
                             const py::dict& config) {
    // As Transcoder::run selects: the rungs the plan keeps for the source's size, then the path.
    std::vector<fp::VideoCodec> planned_codecs;
    for (const auto& p : fp::Transcoder::plan(options_from(config).rungs, source["width"].cast<int>(),
                                              source["height"].cast<int>()))
      planned_codecs.push_back(p.rung.codec);
    auto choice = fp::HwDevice::choose(fp::hw_request_named(requested), capabilities_from(caps), source_from(source),
                                       planned_codecs);
    return py::dict("mode"_a = fp::name_of(choice.mode), "reason"_a = choice.reason,
                    "nvenc_sessions"_a = choice.nvenc_sessions);
  }, "requested"_a, "capabilities"_a, "source"_a, "config"_a,
     "Pure hardware selection, exposed for tests: {mode, reason, nvenc_sessions}.");

  m.def("describe_video", [](const std::string& path) {
    fp::SourceVideo s;
    int width = 0, height = 0;
    {
      py::gil_scoped_release release;
      fp::Demuxer demuxer(path, nullptr, /*probe=*/false);  // as the transcoder opens it
      if (!demuxer.video_stream()) throw fp::Error(fp::ErrorKind::Input, "open", path + " has no video stream");
      s = fp::HwDevice::describe(demuxer.video_stream()->codecpar);
      width = demuxer.video_stream()->codecpar->width;
      height = demuxer.video_stream()->codecpar->height;
    }
    return py::dict("codec"_a = s.codec, "profile"_a = s.profile, "pix_fmt"_a = s.pix_fmt, "hdr"_a = s.hdr,
                    "interlaced"_a = s.interlaced, "width"_a = width, "height"_a = height);
  }, "path"_a, "What hardware selection knows of a file's video when a transcode opens it, for tests.");

  m.def("describe_first_frame", [](const std::string& path) {
    fp::SourceVideo s;
    {
      py::gil_scoped_release release;
      fp::Demuxer demuxer(path, nullptr, /*probe=*/false);
      const AVStream* video = demuxer.video_stream();
      if (!video) throw fp::Error(fp::ErrorKind::Input, "open", path + " has no video stream");
      fp::Decoder decoder(video, 1);
      const fp::SourceVideo header = fp::HwDevice::describe(video->codecpar);
      s = header;  // while no frame is decoded
      bool seen = false;
      auto first = [&](AVFrame* f) {
        if (!seen) s = fp::HwDevice::as_decoded(header, f);
        seen = true;
      };
      fp::UniquePacket pkt = fp::make_packet();
      while (!seen && demuxer.read(pkt.get())) {
        if (pkt->stream_index == demuxer.video_index()) decoder.decode(pkt.get(), first);
        av_packet_unref(pkt.get());
      }
      if (!seen) decoder.decode(nullptr, first);
    }
    return py::dict("codec"_a = s.codec, "pix_fmt"_a = s.pix_fmt, "hdr"_a = s.hdr, "interlaced"_a = s.interlaced);
  }, "path"_a, "What hardware selection knows of a file's video once its first frame is decoded (as the transcoder "
               "confirms its choice), for tests.");

  m.def("confirm_hwaccel", [](const std::string& mode, const std::string& requested, const py::dict& first,
                              const std::string& decoded_pix_fmt) {
    const std::map<std::string, fp::DeviceMode> modes = {
        {"cpu", fp::DeviceMode::Cpu}, {"hybrid", fp::DeviceMode::Hybrid}, {"cuda", fp::DeviceMode::Cuda}};
    auto choice = fp::HwDevice::confirm({modes.at(mode), "", 0}, fp::hw_request_named(requested), source_from(first),
                                        av_get_pix_fmt(decoded_pix_fmt.c_str()));
    return py::make_tuple(fp::name_of(choice.mode), choice.reason);
  }, "mode"_a, "requested"_a, "first"_a, "decoded_pix_fmt"_a,
     "The selection once the decoder's first frame is out in `decoded_pix_fmt`, `first` saying what that frame "
     "shows of the source (hdr, interlaced), exposed for tests: (mode, reason).");

  m.def("nvenc_options", [](const py::dict& rung) { return fp::Encoder::nvenc_options(rung_from(rung)); },
        "rung"_a, "NVENC private options for a rung (native config form), exposed for tests.");

  m.def("gpu_scale_chain", &fp::CudaScaler::chain, "width"_a, "height"_a, "download"_a);

  m.def("plan", [](const py::dict& config, int width, int height) {
    py::list out;
    for (const auto& p : fp::Transcoder::plan(options_from(config).rungs, width, height))
      out.append(py::make_tuple(p.rung.name, p.width, p.height));
    return out;
  }, "config"_a, "width"_a, "height"_a, "Rendition sizes for a source size: [(name, width, height)].");

  m.def("workers", [](const py::dict& config, int width, int height, int cores) {
    auto plans = fp::Transcoder::plan(options_from(config).rungs, width, height);
    py::list out;
    for (const auto& group : fp::Transcoder::rung_groups(plans, cores)) {
      py::list names;
      for (size_t i : group) names.append(plans[i].rung.name);
      out.append(names);
    }
    return out;
  }, "config"_a, "width"_a, "height"_a, "cores"_a, "Rendition names each worker thread encodes: [[name, ...], ...].");

  m.def("versions", [] {
    return py::dict("libavcodec"_a = AV_STRINGIFY(LIBAVCODEC_VERSION), "libavformat"_a = AV_STRINGIFY(LIBAVFORMAT_VERSION),
                    "libavutil"_a = AV_STRINGIFY(LIBAVUTIL_VERSION), "ffmpeg"_a = av_version_info());
  });
}
