"""Hardware selection is a pure function of the request, the probed capabilities and the source;
these tests inject capability sets, so they run (and mean the same) on machines without a GPU."""
from __future__ import annotations

import subprocess

import pytest

import framepress
from conftest import FFMPEG, ffprobe_json
from framepress import _engine, load_ladder
from framepress.engine import _native_config
from framepress.errors import EncodeError, HardwareError

NO_GPU = {"cuda": False, "cuda_error": "no CUDA device", "scale_cuda": True, "nvdec_codecs": [],
          "nvenc_encoders": []}
H200 = {"cuda": True, "scale_cuda": True, "nvdec_codecs": ["h264", "hevc", "av1", "vp9", "mpeg2video"],
        "nvenc_encoders": []}
L4 = {**H200, "nvenc_encoders": ["h264_nvenc", "hevc_nvenc"]}

H264_1080P = {"codec": "h264", "profile": "High", "pix_fmt": "yuv420p", "width": 1920, "height": 1080}


def config(*rungs: tuple[str, int, str]) -> dict:
    """Native config for rungs given as (name, height, codec); default ladder when none."""
    ladder = load_ladder("default") if not rungs else load_ladder({"name": "t", "rungs": [
        {"name": n, "height": h, "codec": c, "bitrate": 1_000_000} for n, h, c in rungs]})
    return _native_config(ladder, False, "auto", 0)


def choose(requested: str, caps: dict, source: dict = H264_1080P, cfg: dict | None = None) -> dict:
    return _engine.choose_hwaccel(requested, caps, source, cfg or config())


def test_cpu_is_always_cpu():
    assert choose("cpu", L4)["mode"] == "cpu"


def test_auto_without_gpu_falls_back_with_a_reason():
    choice = choose("auto", NO_GPU)
    assert choice["mode"] == "cpu" and "CUDA" in choice["reason"] and choice["nvenc_sessions"] == 0


def test_cuda_without_gpu_is_an_error():
    with pytest.raises(HardwareError, match="unavailable"):
        choose("cuda", NO_GPU)


def test_gpu_without_encoder_is_hybrid():
    choice = choose("auto", H200)
    assert choice["mode"] == "hybrid" and "no NVENC" in choice["reason"] and choice["nvenc_sessions"] == 0
    assert choose("cuda", H200)["mode"] == "hybrid"


def test_gpu_with_nvenc_for_every_rung_is_full_gpu():
    assert choose("auto", L4, cfg=config(("a", 720, "h264"), ("b", 360, "hevc")))["mode"] == "cuda"
    # One rung codec without NVENC (no av1_nvenc on this card) keeps the CPU encoders.
    assert choose("cuda", L4, cfg=config(("a", 720, "h264"), ("b", 360, "av1")))["mode"] == "hybrid"


def test_nvenc_sessions_count_the_planned_rungs_not_the_ladder():
    # The default ladder on a 1080p source: four rungs, four NVENC sessions.
    assert choose("auto", L4)["nvenc_sessions"] == 4
    # On a 640x360 source the 1080p, 720p and 480p rungs are skipped (no upscaling): one session.
    small = {**H264_1080P, "width": 640, "height": 360}
    assert choose("auto", L4, small)["nvenc_sessions"] == 1
    # A skipped rung's codec does not count either: the AV1 rung (no av1_nvenc) is above the source.
    mixed = config(("1080p", 1080, "av1"), ("360p", 360, "h264"))
    assert choose("auto", L4, small, mixed) == {"mode": "cuda", "reason": "NVDEC decode, scale_cuda, NVENC encode",
                                                 "nvenc_sessions": 1}
    assert choose("auto", L4, H264_1080P, mixed)["mode"] == "hybrid"


def test_ffmpeg_without_scale_cuda_falls_back_or_refuses():
    no_filter = {**L4, "scale_cuda": False}
    choice = choose("auto", no_filter)
    assert choice["mode"] == "cpu" and "scale_cuda" in choice["reason"]
    with pytest.raises(HardwareError, match="scale_cuda"):
        choose("cuda", no_filter)


@pytest.mark.parametrize("source", [
    {"codec": "h264", "pix_fmt": "yuv420p"}, {"codec": "h264", "pix_fmt": "yuvj420p"},
    {"codec": "h264", "profile": "Main"},                        # pixel format unknown: the profile allows it
    {"codec": "hevc", "pix_fmt": "yuv420p10le"}, {"codec": "hevc", "pix_fmt": "yuv420p12le"},
    {"codec": "hevc", "pix_fmt": "yuv444p"},                     # 4:4:4 HEVC from Turing on
    {"codec": "vp9", "pix_fmt": "yuv420p10le"}, {"codec": "av1", "pix_fmt": "yuv420p10le"},
    {"codec": "mpeg2video", "pix_fmt": "yuv420p"}, {"codec": "hevc"},
])
def test_streams_nvdec_decodes(source):
    assert choose("auto", H200, {**source, "width": 1280, "height": 720})["mode"] == "hybrid"


@pytest.mark.parametrize("source, says", [
    ({"codec": "h264", "profile": "High 10", "pix_fmt": "yuv420p10le"}, "8-bit 4:2:0 only"),
    ({"codec": "h264", "profile": "High 4:2:2", "pix_fmt": "yuv422p"}, "8-bit 4:2:0 only"),
    ({"codec": "h264", "profile": "High 4:4:4 Predictive", "pix_fmt": "yuv444p"}, "8-bit 4:2:0 only"),
    ({"codec": "h264", "profile": "High 10"}, "High 10"),    # a header with a profile but no pixel format
    ({"codec": "hevc", "profile": "Rext", "pix_fmt": "yuv422p10le"}, "4:2:0 and 4:4:4"),
    ({"codec": "vp9", "profile": "Profile 1", "pix_fmt": "yuv444p"}, "profiles 0 and 2"),
    ({"codec": "vp9", "profile": "Profile 1"}, "profiles 0 and 2"),
    ({"codec": "av1", "profile": "Main", "pix_fmt": "yuv420p12le"}, "Main profile"),
    ({"codec": "av1", "profile": "High"}, "Main profile"),
    ({"codec": "mpeg2video", "profile": "4:2:2", "pix_fmt": "yuv422p"}, "8-bit 4:2:0"),
    ({"codec": "hevc", "pix_fmt": "gbrp"}, "4:2:0 and 4:4:4"),
    ({"codec": "hevc", "pix_fmt": "gray"}, "4:2:0 and 4:4:4"),
])
def test_streams_nvdec_cannot_decode_stay_on_the_cpu(source, says):
    src = {**source, "width": 1280, "height": 720}
    choice = choose("auto", H200, src)
    assert choice["mode"] == "cpu" and says in choice["reason"] and source["codec"] in choice["reason"]
    with pytest.raises(HardwareError, match="unavailable"):
        choose("cuda", H200, src)


@pytest.mark.parametrize("name, encode, nvdec", [
    ("h264_high.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "high"], True),
    ("h264_baseline.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast"], True),
    ("h264_high10.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p10le"], False),
    ("h264_high10.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p10le"], False),
    ("h264_422.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv422p"], False),
    ("h264_444.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv444p"], False),
    ("hevc_main10.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv420p10le"], True),
    ("hevc_422.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv422p10le"], False),
    ("hevc_444.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv444p"], True),
    ("av1_10bit.mp4", ["-c:v", "libsvtav1", "-pix_fmt", "yuv420p10le", "-preset", "12"], True),
])
def test_what_the_transcoder_reads_of_a_file_matches_ffprobe_and_decides(media_dir, name, encode, nvdec):
    # MP4 headers are read without decoding a frame; the profile, bit depth and chroma format then
    # come from the sample entry's configuration record (avcC, hvcC, av1C).
    path = media_dir / f"nvdec_{name}"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=0.2",
                    *encode, str(path)], check=True, capture_output=True)
    probed = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "stream=codec_name,profile,pix_fmt")
    probed = probed["streams"][0]
    seen = _engine.describe_video(str(path))
    assert (seen["codec"], seen["profile"], seen["pix_fmt"]) == (
        probed["codec_name"], probed["profile"], probed["pix_fmt"]), (seen, probed)
    assert (seen["width"], seen["height"]) == (320, 240)
    choice = choose("auto", H200, seen, config(("240p", 240, "h264")))
    assert choice["mode"] == ("hybrid" if nvdec else "cpu"), choice


def test_source_codec_nvdec_cannot_decode_falls_back():
    prores = {"codec": "prores", "width": 1920, "height": 1080}
    choice = choose("auto", H200, prores)
    assert choice["mode"] == "cpu" and "prores" in choice["reason"]
    with pytest.raises(HardwareError):
        choose("cuda", H200, prores)
    # An FFmpeg built without AV1 NVDEC: the codec list decides before the tables.
    av1 = {"codec": "av1", "pix_fmt": "yuv420p", "width": 1920, "height": 1080}
    assert choose("auto", {**H200, "nvdec_codecs": ["h264", "hevc"]}, av1)["mode"] == "cpu"


def test_decoder_that_fell_back_to_software_makes_the_task_cpu():
    # NVDEC refused the stream when the decoder opened (an older chip without AV1 decode, say):
    # FFmpeg decoded it in software, and the result must say so.
    av1 = {"codec": "av1", "profile": "Main", "pix_fmt": "yuv420p"}
    for chosen in ("hybrid", "cuda"):
        mode, reason = _engine.confirm_hwaccel(chosen, "auto", av1, "yuv420p")
        assert mode == "cpu" and "NVDEC did not take" in reason and "av1" in reason and "CPU" in reason
    with pytest.raises(HardwareError, match="NVDEC did not take"):
        _engine.confirm_hwaccel("hybrid", "cuda", av1, "yuv420p")
    # Frames that came out on the GPU confirm the choice; a CPU task stays one.
    assert _engine.confirm_hwaccel("hybrid", "auto", av1, "cuda")[0] == "hybrid"
    assert _engine.confirm_hwaccel("cuda", "cuda", av1, "cuda")[0] == "cuda"
    assert _engine.confirm_hwaccel("cpu", "auto", av1, "yuv420p")[0] == "cpu"


@pytest.mark.parametrize("flags, says", [({"hdr": True}, "HDR tone mapping"), ({"interlaced": True}, "deinterlacing"),
                                          ({"hdr": True, "interlaced": True}, "deinterlacing and HDR tone mapping")])
def test_source_prepared_on_the_cpu_is_hybrid_never_cuda(flags, says):
    # FramePrep deinterlaces and tone-maps on the CPU, and the rungs scale and encode what it made
    # there: NVDEC decodes, nothing else runs on the GPU, and no NVENC session is taken.
    source = {**H264_1080P, "codec": "hevc", "profile": "Main 10", "pix_fmt": "yuv420p10le", **flags}
    for requested, caps in [("auto", L4), ("cuda", L4), ("auto", H200)]:
        choice = choose(requested, caps, source)
        assert choice["mode"] == "hybrid" and choice["nvenc_sessions"] == 0, (requested, caps, choice)
        assert choice["reason"].startswith("NVDEC decode; " + says + " on the CPU"), choice
    # Without a GPU it stays a CPU task, for the GPU's reason.
    assert choose("auto", NO_GPU, source)["mode"] == "cpu"


def test_first_frame_that_needs_preparing_makes_the_task_hybrid():
    # The header did not say (an MP4 has no field order for H.264): the first decoded frame is
    # flagged interlaced, on the GPU. A cuda task (NVENC) goes hybrid, naming what runs on the CPU.
    first = {"codec": "h264", "profile": "High", "pix_fmt": "yuv420p", "interlaced": True}
    for chosen in ("cuda", "hybrid"):
        assert _engine.confirm_hwaccel(chosen, "auto", first, "cuda") == (
            "hybrid", "NVDEC decode; deinterlacing on the CPU (FFmpeg has no CUDA filter for it), "
                      "and so scaling and CPU encoders")
    hdr = {"codec": "hevc", "pix_fmt": "yuv420p10le", "hdr": True}
    mode, reason = _engine.confirm_hwaccel("cuda", "cuda", hdr, "cuda")
    assert mode == "hybrid" and "HDR tone mapping" in reason
    # A plain first frame keeps the choice; a CPU task stays one whatever the frame is.
    assert _engine.confirm_hwaccel("cuda", "auto", {**first, "interlaced": False}, "cuda")[0] == "cuda"
    assert _engine.confirm_hwaccel("cpu", "auto", first, "yuv420p")[0] == "cpu"


@pytest.mark.parametrize("name, encode, header_says", [
    ("h264_interlaced.ts", ["-c:v", "libx264", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-field_order", "tt"],
     {"interlaced": True}),
    # An MP4 carries no field order for H.264: only the decoded frames say it.
    ("h264_interlaced.mp4", ["-c:v", "libx264", "-flags", "+ildct+ilme", "-x264-params", "tff=1", "-field_order", "tt"],
     {}),
    ("hevc_pq.mp4", ["-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-color_trc", "smpte2084", "-color_primaries",
                     "bt2020", "-colorspace", "bt2020nc", "-x265-params", "log-level=error"], {"hdr": True}),
    ("hevc_hlg.ts", ["-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-color_trc", "arib-std-b67", "-color_primaries",
                     "bt2020", "-colorspace", "bt2020nc", "-x265-params", "log-level=error"], {"hdr": True}),
    ("h264_plain.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"], {}),
])
def test_sources_prepared_on_the_cpu_are_seen_by_the_selection(media_dir, name, encode, header_says):
    path = media_dir / f"prep_{name}"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=0.2",
                    *encode, str(path)], check=True, capture_output=True)
    probed = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "stream=field_order,color_transfer")
    probed = probed["streams"][0]
    interlaced = probed.get("field_order") in ("tt", "bb", "tb", "bt")
    hdr = probed.get("color_transfer") in ("smpte2084", "arib-std-b67")
    # What the header gives the selection, and what the first decoded frame adds for confirm().
    header = _engine.describe_video(str(path))
    assert (header["hdr"], header["interlaced"]) == (header_says.get("hdr", False),
                                                     header_says.get("interlaced", False)), header
    first = _engine.describe_first_frame(str(path))
    assert (first["hdr"], first["interlaced"]) == (hdr, interlaced), (first, probed)
    expected = "hybrid" if "plain" not in name else "cuda"
    assert choose("auto", L4, header, config(("240p", 240, "h264")))["mode"] == ("hybrid" if header_says else "cuda")
    assert _engine.confirm_hwaccel("cuda", "auto", first, "cuda")[0] == expected


def test_names_outside_the_api_are_refused():
    with pytest.raises(HardwareError, match="hwaccel must be auto, cpu or cuda, not gpu"):
        choose("gpu", L4)
    rung = {"name": "a", "height": 720, "codec": "vp8", "bitrate": 1_000_000, "crf": -1, "preset": "veryfast",
            "profile": "", "maxrate": 0, "bufsize": 0}
    with pytest.raises(EncodeError, match="unsupported codec vp8"):
        _engine.nvenc_options(rung)


def test_nvenc_option_mapping():
    rung = {"name": "a", "height": 720, "codec": "h264", "bitrate": 3_000_000, "crf": -1, "preset": "veryfast",
            "profile": "", "maxrate": 0, "bufsize": 0}
    opts = _engine.nvenc_options(rung)
    assert opts["preset"] == "p2" and opts["rc"] == "vbr" and "cq" not in opts
    assert opts["forced-idr"] == "1" and opts["no-scenecut"] == "1" and opts["strict_gop"] == "1"
    assert _engine.nvenc_options({**rung, "preset": "medium"})["preset"] == "p5"
    assert _engine.nvenc_options({**rung, "preset": "slower"})["preset"] == "p7"
    assert _engine.nvenc_options({**rung, "preset": "p3"})["preset"] == "p3"
    assert _engine.nvenc_options({**rung, "crf": 23})["cq"] == "23"
    assert _engine.nvenc_options({**rung, "profile": "high"})["profile"] == "high"


def test_gpu_scaling_chains():
    assert _engine.gpu_scale_chain(1280, 720, True) == "scale_cuda=w=1280:h=720:interp_algo=bicubic:format=yuv420p,hwdownload,format=yuv420p"
    assert _engine.gpu_scale_chain(1280, 720, False) == "scale_cuda=w=1280:h=720:interp_algo=bicubic:format=nv12"


def test_probe_on_this_machine_and_result_reason(clip, tmp_path):
    caps = framepress.hw_capabilities()
    assert set(caps) == {"cuda", "cuda_error", "scale_cuda", "nvdec_codecs", "nvenc_encoders"}
    result = framepress.transcode(clip, tmp_path, {"rungs": [{"name": "a", "height": 180, "bitrate": 100000}]})
    if not caps["cuda"]:
        assert result.hwaccel_used == "cpu" and result.hwaccel_reason == caps["cuda_error"]
    elif not caps["scale_cuda"]:
        assert result.hwaccel_used == "cpu" and "scale_cuda" in result.hwaccel_reason
    else:
        assert result.hwaccel_used in ("hybrid", "cuda")


def test_scale_cuda_probe_matches_ffmpegs_filter_list():
    filters = subprocess.run(["ffmpeg", "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    # The CLI and the engine link the same libavfilter on these machines.
    assert framepress.hw_capabilities()["scale_cuda"] == (" scale_cuda " in filters)


def test_extension_links_no_cuda_library():
    out = subprocess.run(["ldd", _engine.__file__], capture_output=True, text=True).stdout
    assert "libcuda" not in out and "libnvidia" not in out and "libcudart" not in out
