"""PSNR and SSIM per rendition, measured in the engine while it encodes: the figures FFmpeg's psnr
and ssim filters give for the rendition against the source scaled to its size. x264 rungs get them
from x264 itself (PSNR of all planes, SSIM of luma); other codecs' rungs are decoded again and
measured by the filters (SSIM of all planes)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

import framepress
from conftest import FFMPEG, make_clip

LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "180p", "height": 180, "bitrate": 250_000, "preset": "ultrafast"},
    {"name": "90p", "height": 90, "bitrate": 40_000, "preset": "ultrafast"}]}


def ffmpeg_metrics(rendition, source, width, height, ssim_plane="All") -> tuple[float, float]:
    """The psnr filter's average and the ssim filter's `ssim_plane` figure ("All" or "Y")."""
    graph = (f"[1:v]scale={width}:{height}:flags=bicubic,split[r1][r2];[0:v]split[d1][d2];"
             "[d1][r1]psnr;[d2][r2]ssim")
    out = subprocess.run([FFMPEG, "-i", str(rendition), "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    ssim = re.search(rf"SSIM .*\b{ssim_plane}:([0-9.]+)", out).group(1)
    return float(re.search(r"average:([0-9.]+)", out).group(1)), float(ssim)


def video_bitstream(mp4) -> bytes:
    return subprocess.run([FFMPEG, "-v", "error", "-i", str(mp4), "-map", "0:v", "-c", "copy", "-f", "h264", "-"],
                          capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def source(media_dir):
    return make_clip(media_dir / "quality_src.mp4", seconds=2, size="320x180")


def test_x264_rungs_psnr_and_ssim_match_ffmpegs_filters(source, tmp_path):
    result = framepress.transcode(source, tmp_path, LADDER, quality=True, hwaccel="cpu")
    assert result.seconds["quality"] == 0  # nothing decoded again: x264 measured them
    assert result.warnings == []
    for r in result.renditions:
        psnr, ssim_y = ffmpeg_metrics(r.path, source, r.width, r.height, ssim_plane="Y")
        assert r.psnr == pytest.approx(psnr, abs=0.15), r.name  # the filter scales the source its own way
        assert ssim_y - 0.01 < r.ssim < ssim_y + 0.001, r.name  # x264's windows: see the test below
    small, large = sorted(result.renditions, key=lambda r: r.height)
    assert 20 < small.psnr < large.psnr < 60 and 0.5 < small.ssim < large.ssim < 1


def test_x264s_figures_are_the_filters_on_the_frames_it_was_given(source, tmp_path):
    # Rungs at the source's size: the frames x264 was given are the source's own, as the filters'
    # reference. x264's "Global" PSNR is the psnr filter's "average" (from the mean squared error);
    # its "Avg" (the mean of the frames' PSNR) is not.
    ladder = {**LADDER, "rungs": [{**LADDER["rungs"][0], "name": "good", "bitrate": 600_000},
                                  {**LADDER["rungs"][0], "name": "blocky", "bitrate": 60_000}]}
    good, blocky = framepress.transcode(source, tmp_path, ladder, quality=True, hwaccel="cpu").renditions
    for r in (good, blocky):
        assert (r.width, r.height) == (320, 180)
        assert r.psnr == pytest.approx(ffmpeg_metrics(r.path, source, 320, 180)[0], abs=0.05), r.name
    assert blocky.psnr < good.psnr - 3
    # x264's SSIM windows sit 2 pixels off the DCT blocks (the ssim filter's on them), so they see
    # more block edges: the filter's figure on a clean rendition, lower on a blocky one.
    assert good.ssim == pytest.approx(ffmpeg_metrics(good.path, source, 320, 180, "Y")[1], abs=0.002)
    filter_ssim = ffmpeg_metrics(blocky.path, source, 320, 180, "Y")[1]
    assert filter_ssim - 0.03 < blocky.ssim < filter_ssim


def test_x264s_measurement_leaves_the_bitstream_as_it_is(source, tmp_path, monkeypatch):
    # One thread per encoder: x264's sliced threads under a rate cap do not repeat bit for bit
    # from run to run, with or without the measurement.
    monkeypatch.setenv("FRAMEPRESS_ENCODER_THREADS", "1")
    measured = framepress.transcode(source, tmp_path / "q", LADDER, quality=True, hwaccel="cpu")
    plain = framepress.transcode(source, tmp_path / "p", LADDER, hwaccel="cpu")
    for m, p in zip(measured.renditions, plain.renditions):
        assert m.psnr > 0 and p.psnr == 0
        assert video_bitstream(m.path) == video_bitstream(p.path), m.name


def test_x264_summary_that_never_comes_is_a_warning_and_zero(source, tmp_path):
    # FFmpeg's log taken over by someone else in the process (here: its default printer, silenced):
    # x264's summary never reaches the engine.
    script = textwrap.dedent(f"""
        import ctypes, json, framepress
        avutil = ctypes.CDLL("libavutil.so.57")
        avutil.av_log_set_callback(ctypes.cast(avutil.av_log_default_callback, ctypes.c_void_p))
        avutil.av_log_set_level(-8)
        ladder = {LADDER!r}
        r = framepress.transcode({str(source)!r}, {str(tmp_path)!r}, ladder, quality=True, hwaccel="cpu")
        print(json.dumps({{"quality": [(x.psnr, x.ssim) for x in r.renditions], "warnings": r.warnings}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    report = json.loads(out.splitlines()[-1])
    assert report["quality"] == [[0.0, 0.0], [0.0, 0.0]]
    assert len(report["warnings"]) == 2
    assert all("no PSNR and SSIM summary" in w for w in report["warnings"])


@pytest.mark.parametrize("codec", ["hevc", "av1"])
def test_other_codecs_are_decoded_and_measured_the_same_way(source, tmp_path, codec):
    ladder = {**LADDER, "rungs": [{**LADDER["rungs"][0], "codec": codec}]}
    result = framepress.transcode(source, tmp_path, ladder, quality=True, hwaccel="cpu")
    assert result.seconds["quality"] > 0  # decoded again
    (r,) = result.renditions
    psnr, ssim = ffmpeg_metrics(r.path, source, r.width, r.height)
    assert r.psnr == pytest.approx(psnr, abs=0.15) and r.ssim == pytest.approx(ssim, abs=0.002)
    assert 20 < r.psnr < 60


def test_not_measured_unless_asked(source, tmp_path):
    result = framepress.transcode(source, tmp_path, LADDER, hwaccel="cpu")
    assert [(r.psnr, r.ssim) for r in result.renditions] == [(0.0, 0.0), (0.0, 0.0)]
    assert "quality" not in result.seconds
