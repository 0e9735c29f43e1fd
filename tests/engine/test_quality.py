"""PSNR and SSIM per rendition, measured in the engine while it encodes: the figures FFmpeg's psnr
and ssim filters give for the rendition against the source scaled to its size."""
from __future__ import annotations

import re
import subprocess

import pytest

import framepress
from conftest import FFMPEG, make_clip

LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "180p", "height": 180, "bitrate": 250_000, "preset": "ultrafast"},
    {"name": "90p", "height": 90, "bitrate": 40_000, "preset": "ultrafast"}]}


def ffmpeg_metrics(rendition, source, width, height) -> tuple[float, float]:
    graph = (f"[1:v]scale={width}:{height}:flags=bicubic,split[r1][r2];[0:v]split[d1][d2];"
             "[d1][r1]psnr;[d2][r2]ssim")
    out = subprocess.run([FFMPEG, "-i", str(rendition), "-i", str(source), "-lavfi", graph, "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    return float(re.search(r"average:([0-9.]+)", out).group(1)), float(re.search(r"All:([0-9.]+)", out).group(1))


@pytest.fixture(scope="module")
def source(media_dir):
    return make_clip(media_dir / "quality_src.mp4", seconds=2, size="320x180")


def test_psnr_and_ssim_match_ffmpegs_filters(source, tmp_path):
    result = framepress.transcode(source, tmp_path, LADDER, quality=True, hwaccel="cpu")
    assert result.seconds["quality"] > 0
    for r in result.renditions:
        psnr, ssim = ffmpeg_metrics(r.path, source, r.width, r.height)
        assert r.psnr == pytest.approx(psnr, abs=0.15), r.name
        assert r.ssim == pytest.approx(ssim, abs=0.002), r.name
    small, large = sorted(result.renditions, key=lambda r: r.height)
    assert 20 < small.psnr < large.psnr < 60 and 0.5 < small.ssim < large.ssim < 1


@pytest.mark.parametrize("codec", ["hevc", "av1"])
def test_other_codecs_are_decoded_and_measured_the_same_way(source, tmp_path, codec):
    ladder = {**LADDER, "rungs": [{**LADDER["rungs"][0], "codec": codec}]}
    (r,) = framepress.transcode(source, tmp_path, ladder, quality=True, hwaccel="cpu").renditions
    psnr, ssim = ffmpeg_metrics(r.path, source, r.width, r.height)
    assert r.psnr == pytest.approx(psnr, abs=0.15) and r.ssim == pytest.approx(ssim, abs=0.002)
    assert 20 < r.psnr < 60


def test_not_measured_unless_asked(source, tmp_path):
    result = framepress.transcode(source, tmp_path, LADDER, hwaccel="cpu")
    assert [(r.psnr, r.ssim) for r in result.renditions] == [(0.0, 0.0), (0.0, 0.0)]
    assert "quality" not in result.seconds
