"""Encoder thread budgets and keyframes: libx265 and SVT-AV1 keep to the threads the worker
balancing gives each rung, and no encoder puts a keyframe of its own off the timestamp grid."""
from __future__ import annotations

import os
import subprocess

import pytest

import framepress
from conftest import FFMPEG, keyframe_times, make_clip, video_frames

PRESET = {"h264": "ultrafast", "hevc": "ultrafast", "av1": "12"}


def two_rungs(codec: str) -> dict:
    return {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
        {"name": "360p", "height": 360, "codec": codec, "bitrate": 500_000, "preset": PRESET[codec]},
        {"name": "180p", "height": 180, "codec": codec, "bitrate": 200_000, "preset": PRESET[codec]}]}


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


def peak_threads(source, out, ladder) -> int:
    """Most threads this process had beyond those before the transcode, sampled on progress.

    One task thread: both rungs share one worker and each encoder gets a budget of one thread.
    The last progress report comes after the encoders finished but before they are closed, so
    their pools are still there to be counted."""
    before = threads_now()
    peak = [0]
    result = framepress.transcode(source, out, ladder, threads=1,
                                  on_progress=lambda p: peak.__setitem__(0, max(peak[0], threads_now())))
    assert [r.frames for r in result.renditions] == [30, 30]
    return peak[0] - before


@pytest.fixture(scope="module")
def source(media_dir):
    return make_clip(media_dir / "threads_src.mp4", seconds=1, size="640x360", audio=False)


# Beyond the task's own threads (one rung worker, with one decoder thread), per encoder with a
# budget of one thread: x265 has a pool of one and one frame thread; SVT-AV1 sizes its dozen
# pipeline stages for one logical processor (about 16 threads) instead of for every core.
@pytest.mark.parametrize("codec, per_rung", [("hevc", 2), ("av1", 20)])
def test_hevc_and_av1_encoders_keep_to_their_thread_budget(source, tmp_path, monkeypatch, codec, per_rung):
    bounded = peak_threads(source, tmp_path / "bounded", two_rungs(codec))
    assert bounded <= 1 + 2 * per_rung, bounded
    # The baseline: encoders left to size their own pools, as libx265 and libsvtav1 do from the
    # machine's cores when nobody tells them (FRAMEPRESS_ENCODER_THREADS=0 leaves it to them).
    monkeypatch.setenv("FRAMEPRESS_ENCODER_THREADS", "0")
    unbounded = peak_threads(source, tmp_path / "unbounded", two_rungs(codec))
    assert bounded < unbounded, (bounded, unbounded)


def frame_gaps(path) -> list[float]:
    times = [float(f["pts_time"]) for f in video_frames(path)]
    return [round(b - a, 4) for a, b in zip(times, times[1:])]


@pytest.fixture(scope="module")
def vfr_source(media_dir):
    # 2 s at 60 fps, then 4 s at 10 fps: 160 frames over 6 s, an average of ~27 fps. A keyframe
    # interval counted in frames at the average rate (54 for 2 s) ends 0.9 s into a 2 s GOP.
    path = media_dir / "vfr_mixed_rate.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=60",
                    "-vf", "setpts='if(lt(N,120),N/(60*TB),(2+(N-120)/10)/TB)'", "-frames:v", "160",
                    "-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], check=True)
    gaps = frame_gaps(path)
    assert min(gaps) == pytest.approx(1 / 60, abs=1e-3) and max(gaps) >= 0.099, "the source is not VFR"
    return path


def test_vfr_source_keyframes_only_on_the_grid_in_every_rung_of_a_mixed_ladder(vfr_source, tmp_path):
    ladder = {"name": "mixed", "gop_seconds": 2, "segment_seconds": 2, "rungs": [
        {"name": "240p", "height": 240, "codec": "h264", "bitrate": 400_000, "preset": "ultrafast"},
        {"name": "180p", "height": 180, "codec": "hevc", "bitrate": 250_000, "preset": "ultrafast"},
        # SVT-AV1 1.4 forces keyframes in CRF mode only (VBR AV1 rungs keep its own interval).
        {"name": "120p", "height": 120, "codec": "av1", "crf": 40, "preset": "12"}]}
    result = framepress.transcode(vfr_source, tmp_path, ladder)
    times = {r.name: keyframe_times(r.path) for r in result.renditions}
    # One keyframe per 2 s grid point (0, 2, 4 s) and no other, on the same timestamp in every rung.
    assert times["240p"] == times["180p"] == times["120p"], times
    assert times["240p"] == pytest.approx([0.0, 2.0, 4.0], abs=0.02), times
    assert [r.frames for r in result.renditions] == [160, 160, 160]
