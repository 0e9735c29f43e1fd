"""Our PSNR/SSIM against FFmpeg's `psnr` and `ssim` filters on the same pair of files."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from framepress.bench import quality

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(not FFMPEG, reason="needs the ffmpeg CLI")


def _run(*args: str) -> str:
    return subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-y", *args], check=True,
                          capture_output=True, text=True).stderr


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A lossless noisy source, a downscaled low-bitrate rendition of it, and one at full size."""
    d = tmp_path_factory.mktemp("quality")
    src, small, full = d / "src.mp4", d / "small.mp4", d / "full.mp4"
    _run("-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=25:duration=0.6,noise=alls=12:allf=t+u",
         "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(src))
    _run("-loglevel", "error", "-i", str(src), "-vf", "scale=-2:144", "-c:v", "libx264",
         "-preset", "veryfast", "-b:v", "150k", str(small))
    _run("-loglevel", "error", "-i", str(src), "-c:v", "libx264", "-preset", "veryfast",
         "-b:v", "300k", str(full))
    return src, small, full


def ffmpeg_filters(rendition: Path, source: Path) -> dict:
    """FFmpeg's own figures: the rendition scaled back with bicubic, then `psnr` and `ssim`."""
    log = _run("-i", str(rendition), "-i", str(source), "-lavfi",
               "[0:v]scale=320:240:flags=bicubic,split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim",
               "-f", "null", "-")
    psnr = re.search(r"PSNR y:([\d.]+) u:[\d.]+ v:[\d.]+ average:([\d.]+)", log)
    ssim = re.search(r"SSIM Y:([\d.]+) .* All:([\d.]+)", log)
    return {"psnr_y": float(psnr[1]), "psnr": float(psnr[2]),
            "ssim_y": float(ssim[1]), "ssim": float(ssim[2])}


@pytest.mark.parametrize("which", ["small", "full"])
def test_psnr_and_ssim_agree_with_ffmpeg_filters(pair, which):
    src, small, full = pair
    rendition = small if which == "small" else full
    ours = quality.compare(str(rendition), str(src))
    theirs = ffmpeg_filters(rendition, src)
    assert ours.frames == 15
    assert ours.psnr == pytest.approx(theirs["psnr"], abs=0.05)
    assert ours.psnr_y == pytest.approx(theirs["psnr_y"], abs=0.05)
    assert ours.ssim == pytest.approx(theirs["ssim"], abs=0.001)
    assert ours.ssim_y == pytest.approx(theirs["ssim_y"], abs=0.001)
    assert 20 < ours.psnr < 60 and 0.3 < ours.ssim < 1


def test_identical_planes_are_perfect():
    a = np.random.default_rng(1).integers(0, 256, (64, 48), dtype=np.uint8)
    assert quality.plane_mse(a, a) == 0
    assert quality.plane_ssim(a, a) == pytest.approx(1.0)
    b = 255 - a
    assert quality.plane_ssim(a, b) < 0.1
