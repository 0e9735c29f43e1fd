"""Keyframes and HLS segments on the GOP grid whatever the frame rate does.

The HLS muxer cuts a segment at the first keyframe whose timestamp reaches the next multiple of
hls_time, compared exactly: a keyframe a tick before a grid point gets no cut, and that segment
runs on to the next keyframe. So each grid point's keyframe must be the first frame at or after it,
in every rung, for variable-rate sources and for 29.97 fps alike.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import framepress
from conftest import FFMPEG, keyframe_times, video_frames

GOP = 2.0
RUNGS = [{"name": "240p", "height": 240, "bitrate": 300_000, "preset": "ultrafast"},
         {"name": "120p", "height": 120, "bitrate": 100_000, "preset": "ultrafast"}]


def frame_times(path: Path | str) -> list[float]:
    return [float(f["pts_time"]) for f in video_frames(path)]


def encode(path: Path, *, seconds: float, rate: str, setpts: str, size: str = "426x240") -> Path:
    """testsrc2 with a sine tone, video timestamps rewritten by `setpts` (in a 1/90000 time base)."""
    subprocess.run([FFMPEG, "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-vf", f"settb=1/90000,setpts='{setpts}'", "-enc_time_base", "1/90000",
                    "-fps_mode", "passthrough", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "48k", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def rate_change(media_dir):
    # 3 s at 60 fps, then 6 s at 10 fps: an average of ~27 fps, whose half frame (19 ms) reaches
    # back past the 60 fps frame 17 ms before the 2 s grid point.
    path = encode(media_dir / "grid_60_then_10.mp4", seconds=9, rate="60",
                  setpts="round(if(lt(N,180),N/60,3+(N-180)/10)/TB)")
    gaps = [b - a for a, b in zip(frame_times(path), frame_times(path)[1:])]
    assert min(gaps) == pytest.approx(1 / 60, abs=1e-3) and max(gaps) == pytest.approx(0.1, abs=1e-3), \
        "the source is not VFR"
    return path


@pytest.fixture(scope="module")
def jittery(media_dir):
    # 30 fps with every frame but the first moved by -10..+10 ms (a fixed pseudo-random pattern), as
    # a capture clock stamps them: frames land on either side of the grid points.
    path = encode(media_dir / "grid_jittery.mkv", seconds=9, rate="30",
                  setpts="round((N/30+0.010*(mod(N*7+8,17)/8-1))/TB)")
    gaps = [b - a for a, b in zip(frame_times(path), frame_times(path)[1:])]
    assert min(gaps) < 0.025 and max(gaps) > 0.040, "the source is not VFR"
    return path


@pytest.fixture(scope="module")
def ntsc(media_dir):
    # 29.97 fps for 20 s: from 16.7 s on, the frame nearest a grid point is the one before it.
    path = media_dir / "grid_29_97.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", "testsrc2=size=426x240:rate=30000/1001:duration=20",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=20",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "48k", str(path)], check=True)
    times = frame_times(path)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) == 600 and gaps == pytest.approx([1001 / 30000] * 599, abs=1e-4), "the source is not CFR"
    return path


def first_at_or_after(times: list[float], point: float) -> float:
    return next(t for t in times if t >= point - 1e-6)


def extinf(playlist: Path | str) -> list[float]:
    return [float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", Path(playlist).read_text())]


def check_grid(source: Path, out: Path, segment: float):
    ladder = {"name": "grid", "gop_seconds": GOP, "segment_seconds": segment, "rungs": RUNGS}
    result = framepress.transcode(source, out, ladder, hls=True)
    src = frame_times(source)
    src = [t - src[0] for t in src]  # outputs start at zero
    grid = [k * GOP for k in range(int(src[-1] // GOP) + 1)]
    want = [first_at_or_after(src, g) for g in grid]

    keys = [keyframe_times(r.path) for r in result.renditions]
    assert keys[0] == keys[1], keys
    # One keyframe per grid point: the first source frame at or after it, and no other.
    assert keys[0] == pytest.approx(want, abs=1e-3), (keys[0], want)

    # Each segment ends on the keyframe at or after the next multiple of `segment`: its length is
    # the gap between those keyframes, within a source frame of `segment`. (The muxer sizes the
    # last one from packet durations, nominal at the average rate: not checked here.)
    cuts = [0.0] + [first_at_or_after(src, n * segment) for n in range(1, int(src[-1] // segment) + 1)]
    frame = max(b - a for a, b in zip(src, src[1:]))
    for r in result.renditions:
        assert r.frames == len(src)
        durations = extinf(r.playlist)
        assert len(durations) == len(cuts), (r.name, durations, cuts)
        assert durations[:-1] == pytest.approx([b - a for a, b in zip(cuts, cuts[1:])], abs=2e-3), \
            (r.name, durations, cuts)
        assert all(abs(d - segment) < frame for d in durations[:-1]), (r.name, durations)
    return result


@pytest.mark.parametrize("segment", [GOP, 2 * GOP])
def test_rate_change_keyframes_and_segments_on_the_grid(rate_change, tmp_path, segment):
    check_grid(rate_change, tmp_path, segment)


def test_jittery_timestamps_keyframes_and_segments_on_the_grid(jittery, tmp_path):
    check_grid(jittery, tmp_path, GOP)


def test_29_97_fps_keyframe_every_60_frames_and_even_segments(ntsc, tmp_path):
    result = check_grid(ntsc, tmp_path, GOP)
    frames = video_frames(result.renditions[0].path)
    assert [i for i, f in enumerate(frames) if int(f["key_frame"])] == list(range(0, 600, 60))
