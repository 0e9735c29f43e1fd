"""The GPU paths on real hardware. They run where the engine finds a CUDA device (a GPU node or a
GPU machine, via bench/gpu_device_check.sh) and are skipped elsewhere, where
test_hardware_selection.py covers the selection and fallback."""
from __future__ import annotations

import subprocess
import sys

import pytest

import framepress
from conftest import FFMPEG, ffprobe_json, keyframe_times, make_clip, psnr, video_frames
from framepress.errors import HardwareError

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


def encode(path, size: str, args: list[str], seconds: float = 1.0, rate: int = 25):
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate={rate}:duration={seconds}", *args, str(path)],
                   check=True, capture_output=True)
    return path


def test_mid_stream_size_change_rebuilds_the_gpu_scaler(media_dir, tmp_path):
    # An MPEG-TS of 25 frames at 1280x720, then 25 at 960x540: the CUDA scaler's graph, built for
    # the first size, is rebuilt for the second.
    parts = [encode(media_dir / f"gpu-size-{w}.ts", f"{w}x{h}", ["-c:v", "libx264", "-preset", "ultrafast",
                                                                 "-pix_fmt", "yuv420p"])
             for w, h in [(1280, 720), (960, 540)]]
    listing = media_dir / "gpu-size.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in parts))
    src = media_dir / "gpu-size.ts"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", str(src)], check=True)
    widths = [f["width"] for f in ffprobe_json(src, "-select_streams", "v:0", "-show_entries",
                                               "frame=width")["frames"]]
    assert widths == [1280] * 25 + [960] * 25
    result = framepress.transcode(src, tmp_path, LADDER, hwaccel="cuda")
    assert result.hwaccel_used in ("cuda", "hybrid"), result.hwaccel_reason
    for r in result.renditions:
        assert r.frames == len(video_frames(r.path)) == 50


def test_stream_nvdec_cannot_decode_runs_on_the_cpu_and_says_why(media_dir, tmp_path):
    # H.264 High 10: NVDEC decodes 8-bit 4:2:0 H.264 only. The MP4 header names the profile.
    src = encode(media_dir / "gpu-high10.mp4", "640x360", ["-c:v", "libx264", "-preset", "ultrafast",
                                                           "-pix_fmt", "yuv420p10le"])
    result = framepress.transcode(src, tmp_path / "auto", LADDER, hwaccel="auto")
    assert result.hwaccel_used == "cpu" and "High 10" in result.hwaccel_reason, result.hwaccel_reason
    assert result.renditions[0].frames == 25
    with pytest.raises(HardwareError, match="High 10"):
        framepress.transcode(src, tmp_path / "cuda", LADDER, hwaccel="cuda")


def test_stream_nvdec_refuses_when_it_opens_is_reported_as_cpu(media_dir, tmp_path):
    # Wider than NVDEC's 4096-pixel H.264 limit: nothing in the header rules it out, FFmpeg asks the
    # driver when the decoder opens, is refused, and decodes in software. The result must say so.
    src = encode(media_dir / "gpu-wide.mp4", "4128x96", ["-c:v", "libx264", "-preset", "ultrafast",
                                                         "-pix_fmt", "yuv420p"], seconds=0.4)
    ladder = {**LADDER, "rungs": [{"name": "96p", "height": 96, "bitrate": 300_000, "preset": "veryfast"}]}
    result = framepress.transcode(src, tmp_path / "auto", ladder, hwaccel="auto")
    assert result.hwaccel_used == "cpu" and "NVDEC did not take" in result.hwaccel_reason, result.hwaccel_reason
    assert result.renditions[0].frames == 10
    with pytest.raises(HardwareError, match="NVDEC did not take"):
        framepress.transcode(src, tmp_path / "cuda", ladder, hwaccel="cuda")


def test_nvenc_sessions_are_counted_per_planned_rung(source, tmp_path, monkeypatch):
    if "h264_nvenc" not in CAPS["nvenc_encoders"]:
        pytest.skip("this GPU has no NVENC")
    # One session allowed; the 1080p rung is above the 720p source and opens no encoder.
    monkeypatch.setenv("FRAMEPRESS_NVENC_SESSIONS", "1")
    ladder = {**LADDER, "rungs": [{"name": "1080p", "height": 1080, "bitrate": 4_000_000},
                                  {"name": "720p", "height": 720, "bitrate": 2_000_000}]}
    result = framepress.transcode(source, tmp_path, ladder, hwaccel="cuda")
    assert result.hwaccel_used == "cuda", result.hwaccel_reason
    assert [r.name for r in result.renditions] == ["720p"]


def test_process_that_used_the_gpu_exits_cleanly(source, tmp_path):
    # The CUDA device outlives every task and is never torn down at exit, after the driver.
    code = ("import sys, framepress; r = framepress.transcode(sys.argv[1], sys.argv[2], "
            f"{LADDER!r}, hwaccel='cuda'); print(r.hwaccel_used)")
    run = subprocess.run([sys.executable, "-c", code, str(source), str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() in ("cuda", "hybrid")
