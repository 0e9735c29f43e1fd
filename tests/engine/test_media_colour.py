"""Colour and picture structure: full-range levels, RGB sources, interlaced and HDR sources.

Each source is generated with FFmpeg and checked with ffprobe to really have the property; the
outputs are decoded to RGB by FFmpeg, honouring their tags, and compared with the source.
"""
from __future__ import annotations

import re
import subprocess

import pytest

import framepress
from framepress.errors import InputError
from conftest import FFMPEG, ffprobe_json, video_frames

COLOUR = "stream=pix_fmt,color_range,color_space,color_transfer,color_primaries,field_order,r_frame_rate"
BT709_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]


def stream(path) -> dict:
    return ffprobe_json(path, "-select_streams", "v:0", "-show_entries", COLOUR)["streams"][0]


def ffmpeg(*args: str) -> str:
    return subprocess.run([FFMPEG, "-y", "-hide_banner", *args], check=True, capture_output=True, text=True).stderr


def lavfi_clip(path, vf: str, codec: list[str], *, size="640x360", rate=30, seconds=0.5):
    ffmpeg("-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
           "-vf", vf, *codec, str(path))
    return path


def rgb_psnr(rendition, reference_graph: str, source) -> float:
    """PSNR in RGB of a rendition against `reference_graph` applied to the source; FFmpeg converts
    both to RGB by their own range and matrix tags."""
    to_rgb = "scale=flags=bicubic+accurate_rnd+full_chroma_int,format=gbrp"
    graph = f"[0:v]{to_rgb}[a];[1:v]{reference_graph}{to_rgb}[b];[a][b]psnr"
    out = ffmpeg("-i", str(rendition), "-i", str(source), "-lavfi", graph, "-f", "null", "-")
    return float(out.rsplit("average:", 1)[1].split()[0])


def lossless_ladder(*heights: int) -> dict:
    return {"name": "colour", "gop_seconds": 1, "segment_seconds": 1,
            "rungs": [{"name": f"{h}p", "height": h, "crf": 0, "preset": "ultrafast"} for h in heights]}


# Full-range sources of each kind, each through a same-size rung and a downscaled one: zimg takes
# 8-bit 4:2:0, swscale the rest. Read as limited range, their levels lose about 15 dB here.
FULL_RANGE_SOURCES = {
    "yuv420p": ("full-420.mkv", "scale=out_range=full,format=yuv420p", ["-c:v", "ffv1", "-color_range", "pc"]),
    "yuvj420p": ("full-j420.mp4", "format=yuvj420p",
                 ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-color_range", "pc"]),
    "yuv420p10le": ("full-10bit.mkv", "scale=out_range=full,format=yuv420p10le",
                    ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-color_range", "pc"]),
    "yuv444p": ("full-444.mkv", "scale=out_range=full,format=yuv444p", ["-c:v", "ffv1", "-color_range", "pc"]),
}


@pytest.mark.parametrize("pix_fmt", list(FULL_RANGE_SOURCES))
def test_full_range_source_comes_out_limited_with_its_levels(media_dir, tmp_path, pix_fmt):
    name, vf, codec = FULL_RANGE_SOURCES[pix_fmt]
    src = lavfi_clip(media_dir / name, vf, codec + BT709_TAGS)
    s = stream(src)
    assert s["color_range"] == "pc" and s["pix_fmt"] == pix_fmt, s

    result = framepress.transcode(src, tmp_path, lossless_ladder(360, 180))
    assert [(r.width, r.height, r.frames) for r in result.renditions] == [(640, 360, 15), (320, 180, 15)]
    for r in result.renditions:
        out = stream(r.path)
        assert (out["pix_fmt"], out["color_range"]) == ("yuv420p", "tv"), out
        assert (out["color_primaries"], out["color_transfer"], out["color_space"]) == ("bt709",) * 3, out
    # The reference is FFmpeg's own (bicubic) conversion to limited-range 4:2:0 at the rung's size.
    for r in result.renditions:
        assert rgb_psnr(r.path, f"scale={r.width}:{r.height}:flags=bicubic:out_range=tv,format=yuv420p,", src) > 45


def test_rgb_source_is_tagged_with_the_matrix_it_was_converted_with(media_dir, tmp_path):
    src = lavfi_clip(media_dir / "rgb.mkv", "format=bgr0", ["-c:v", "ffv1"])
    assert stream(src)["pix_fmt"] == "bgr0"
    r = framepress.transcode(src, tmp_path, lossless_ladder(360)).renditions[0]
    out = stream(r.path)
    assert (out["pix_fmt"], out["color_space"]) == ("yuv420p", "bt709"), out
    # Against FFmpeg's own BT.709 conversion: BT.601 pixels tagged BT.709 would be far off.
    reference = "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,setparams=colorspace=bt709,"
    assert rgb_psnr(r.path, reference, src) > 40


def idet(path) -> dict[str, int]:
    """FFmpeg's interlace detection over every frame: counts of TFF, BFF and progressive frames."""
    out = ffmpeg("-i", str(path), "-vf", "idet", "-f", "null", "-")
    counts: dict[str, int] = {}
    for line in re.findall(r"Multi frame detection: (.*)", out):  # one line per size the video has
        for k, v in re.findall(r"(\w+):\s*(\d+)", line):
            counts[k] = counts.get(k, 0) + int(v)
    return counts


def test_interlaced_source_is_deinterlaced_frame_for_frame(media_dir, tmp_path):
    # 50 progressive frames woven into 25 interlaced 1080i frames, top field first.
    src = lavfi_clip(media_dir / "1080i.mp4", "tinterlace=interleave_top,setfield=tff",
                     ["-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ilme+ildct", "-pix_fmt", "yuv420p"],
                     size="1920x1080", rate=50, seconds=1)
    s = stream(src)
    assert (s["field_order"], s["r_frame_rate"]) == ("tt", "25/1"), s
    combed = idet(src)
    assert combed["TFF"] >= 20, combed  # the metric sees the combing

    ladder = {"name": "i", "gop_seconds": 1, "segment_seconds": 1, "rungs": [
        {"name": "1080p", "height": 1080, "crf": 18, "preset": "ultrafast"},
        {"name": "360p", "height": 360, "crf": 18, "preset": "ultrafast"}]}
    result = framepress.transcode(src, tmp_path, ladder)
    src_times = [round(float(f["pts_time"]), 3) for f in video_frames(src)]
    assert len(src_times) == 25
    for r in result.renditions:
        out = stream(r.path)
        assert (out["field_order"], out["r_frame_rate"]) == ("progressive", "25/1"), out
        times = [round(float(f["pts_time"]), 3) for f in video_frames(r.path)]
        assert r.frames == len(times) == 25
        assert [round(t - times[0], 2) for t in times] == [round(t - src_times[0], 2) for t in src_times]
        counts = idet(r.path)
        # idet's multi-frame verdict needs a few frames to settle: the rest must read progressive.
        assert counts["Progressive"] >= 20 and counts["TFF"] + counts["BFF"] <= 5, counts
    assert result.seconds["prepare"] > 0


def test_interlacing_that_starts_mid_stream_and_changes_size_loses_no_frame(media_dir, tmp_path):
    # An MPEG-TS of 10 progressive 720p frames, then 20 interlaced 720i, then 20 interlaced 540i
    # frames: the container says progressive, only the frames say otherwise.
    parts = []
    for name, size, rate, vf, flags in [("p720", "1280x720", 25, "null", []),
                                        ("i720", "1280x720", 50, "tinterlace=interleave_top,setfield=tff",
                                         ["-flags", "+ilme+ildct"]),
                                        ("i540", "960x540", 50, "tinterlace=interleave_top,setfield=tff",
                                         ["-flags", "+ilme+ildct"])]:
        seconds = 0.4 if name == "p720" else 0.8
        parts.append(lavfi_clip(media_dir / f"mixed-{name}.ts", vf, ["-c:v", "libx264", "-preset", "ultrafast",
                                                                    "-pix_fmt", "yuv420p", *flags],
                                size=size, rate=rate, seconds=seconds))
    listing = media_dir / "mixed.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    src = media_dir / "mixed.ts"
    ffmpeg("-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(src))
    assert stream(src)["field_order"] == "progressive"
    frames = ffprobe_json(src, "-select_streams", "v:0", "-show_entries", "frame=width,interlaced_frame")["frames"]
    assert [(f["width"], f["interlaced_frame"]) for f in frames] == [(1280, 0)] * 10 + [(1280, 1)] * 20 + [(960, 1)] * 20
    assert idet(src)["TFF"] >= 40

    r = framepress.transcode(src, tmp_path, lossless_ladder(360)).renditions[0]
    times = [round(float(f["pts_time"]), 3) for f in video_frames(r.path)]
    assert r.frames == len(times) == 50
    assert [round(b - a, 3) for a, b in zip(times, times[1:])] == [0.04] * 49
    counts = idet(r.path)
    assert counts["TFF"] + counts["BFF"] <= 2, counts


def test_interlaced_source_too_small_to_deinterlace_fails_clearly(media_dir, tmp_path):
    src = lavfi_clip(media_dir / "2-lines.mkv", "null", ["-c:v", "ffv1", "-field_order", "tt"], size="64x2")
    assert (stream(src)["field_order"], stream(src)["pix_fmt"]) == ("tt", "yuv420p")
    with pytest.raises(InputError, match="bwdif") as failure:
        framepress.transcode(src, tmp_path / "out", lossless_ladder(360))
    assert failure.value.step == "prepare"


def test_progressive_sdr_source_takes_no_preparation(clip, tmp_path):
    result = framepress.transcode(clip, tmp_path, lossless_ladder(180))
    assert result.seconds["prepare"] == 0.0
    assert stream(result.renditions[0].path)["field_order"] == "progressive"


# BT.709 SDR test pictures carried into BT.2020 HDR (100 nits diffuse white), 10-bit.
HDR_SOURCES = {"smpte2084": "pq.mp4", "arib-std-b67": "hlg.mp4"}


# PQ with a rung at the source's size; HLG with rungs below it, which the tone mapping scales to.
@pytest.mark.parametrize("transfer,heights", [("smpte2084", (720, 360)), ("arib-std-b67", (360, 180))])
def test_hdr_source_is_tone_mapped_to_sdr_bt709(media_dir, tmp_path, transfer, heights):
    to_hdr = ("format=yuv420p,setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv,"
              f"zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt2020:t={transfer}:m=bt2020nc:r=tv,"
              "format=yuv420p10le")
    src = lavfi_clip(media_dir / HDR_SOURCES[transfer], to_hdr,
                     ["-c:v", "libx264", "-preset", "ultrafast", "-color_primaries", "bt2020",
                      "-color_trc", transfer, "-colorspace", "bt2020nc"], size="1280x720")
    s = stream(src)
    assert (s["pix_fmt"], s["color_transfer"], s["color_primaries"]) == ("yuv420p10le", transfer, "bt2020"), s

    result = framepress.transcode(src, tmp_path, lossless_ladder(*heights))
    assert [r.height for r in result.renditions] == list(heights)
    for r in result.renditions:
        out = stream(r.path)
        assert (out["pix_fmt"], out["color_range"]) == ("yuv420p", "tv"), out
        assert (out["color_primaries"], out["color_transfer"], out["color_space"]) == ("bt709",) * 3, out
        assert r.frames == 15
        # A sane picture: neither dark nor washed out, blacks and highlights both still there.
        stats = ffmpeg("-i", r.path, "-vf", "signalstats,metadata=print", "-f", "null", "-")
        mean = [float(v) for v in re.findall(r"signalstats\.YAVG=([\d.]+)", stats)]
        low = [float(v) for v in re.findall(r"signalstats\.YLOW=([\d.]+)", stats)]
        high = [float(v) for v in re.findall(r"signalstats\.YHIGH=([\d.]+)", stats)]
        assert len(mean) == 15
        # (The SDR pictures have YAVG 126, YLOW 41, YHIGH 210; PQ code values read as SDR, YHIGH 127.)
        assert all(70 < m < 170 for m in mean), mean
        assert max(low) < 50 and min(high) > 160, (low, high)
