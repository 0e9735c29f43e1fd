"""The GPU paths on real hardware. They run where the engine finds a CUDA device (a GPU node or a
GPU machine, via bench/gpu_device_check.sh) and are skipped elsewhere, where
test_hardware_selection.py covers the selection and fallback."""
from __future__ import annotations

import pytest

import framepress
from conftest import keyframe_times, make_clip, psnr, video_frames

CAPS = framepress.hw_capabilities()
pytestmark = pytest.mark.skipif(not CAPS["cuda"], reason=f"no CUDA device: {CAPS['cuda_error']}")

LADDER = {"name": "gpu", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "720p", "height": 720, "bitrate": 2_000_000, "preset": "veryfast"},
    {"name": "360p", "height": 360, "bitrate": 600_000, "preset": "veryfast"}]}


@pytest.fixture(scope="module")
def source(media_dir):
    return make_clip(media_dir / "gpu_src.mp4", seconds=3, size="1280x720")


def test_cuda_request_uses_the_gpu_and_keeps_abr_invariants(source, tmp_path):
    result = framepress.transcode(source, tmp_path, LADDER, hwaccel="cuda", hls=True)
    expected = "cuda" if {"h264_nvenc"} <= set(CAPS["nvenc_encoders"]) else "hybrid"
    assert result.hwaccel_used == expected, result.hwaccel_reason
    times = [keyframe_times(r.path) for r in result.renditions]
    assert times[0] == times[1] and times[0][:3] == pytest.approx([0, 1, 2], abs=0.02)
    for r in result.renditions:
        assert r.frames == len(video_frames(r.path)) == 90
        assert psnr(r.path, source) > 30


def test_auto_picks_the_gpu_when_it_can_decode(source, tmp_path):
    result = framepress.transcode(source, tmp_path, LADDER, hwaccel="auto")
    assert result.hwaccel_used in ("cuda", "hybrid"), result.hwaccel_reason


def test_gpu_and_cpu_renditions_match_in_quality(source, tmp_path):
    gpu = framepress.transcode(source, tmp_path / "gpu", LADDER, hwaccel="cuda")
    cpu = framepress.transcode(source, tmp_path / "cpu", LADDER, hwaccel="cpu")
    for g, c in zip(gpu.renditions, cpu.renditions):
        assert (g.width, g.height) == (c.width, c.height)
        assert psnr(g.path, source) > psnr(c.path, source) - 1.0
