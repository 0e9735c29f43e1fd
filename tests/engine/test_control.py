"""Progress, cancel, atomic outputs and output errors."""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

import framepress
from framepress.errors import Cancelled, OutputError
from conftest import FFMPEG, ffprobe_json, make_clip

SLOW = {"name": "slow", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "360p", "height": 360, "bitrate": 800_000, "preset": "medium"},
    {"name": "240p", "height": 240, "bitrate": 400_000, "preset": "medium"}]}


def open_files() -> list[str]:
    fds = "/proc/self/fd"
    out = []
    for fd in os.listdir(fds):
        try:
            out.append(os.readlink(f"{fds}/{fd}"))
        except OSError:
            pass
    return out


@pytest.fixture(scope="module")
def long_clip(media_dir):
    return make_clip(media_dir / "long.mp4", seconds=20, size="640x360")


def test_progress_is_throttled_monotonic_and_ends_at_one(clip, tmp_path):
    seen = []
    framepress.transcode(clip, tmp_path, SLOW, on_progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1].frames == 60
    gaps = [b.elapsed - a.elapsed for a, b in zip(seen, seen[1:-1])]
    assert all(g >= framepress.engine.PROGRESS_INTERVAL_S * 0.9 for g in gaps)


def test_gil_is_released_while_transcoding(clip, tmp_path):
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    framepress.transcode(clip, tmp_path, SLOW)
    stop.set()
    t.join()
    assert len(ticks) > 50


def test_cancel_mid_transcode_returns_quickly_and_leaves_nothing(long_clip, tmp_path):
    token = framepress.CancelToken()
    out = tmp_path / "out"
    cancelled_at = []

    def on_progress(p):
        if p.fraction > 0.1 and not token.cancelled:
            token.cancel()
            cancelled_at.append(time.monotonic())

    with pytest.raises(Cancelled):
        framepress.transcode(long_clip, out, SLOW, hls=True, on_progress=on_progress, cancel=token)
    assert cancelled_at and time.monotonic() - cancelled_at[0] < 1.0
    assert list(out.iterdir()) == []
    assert not [f for f in open_files() if str(out) in f], "a descriptor outlived the cancelled job"


def test_cancel_from_another_thread(long_clip, tmp_path):
    token = framepress.CancelToken()
    timer = threading.Timer(0.5, token.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        framepress.transcode(long_clip, tmp_path, SLOW, cancel=token)
    assert time.monotonic() - started < 1.5


@pytest.fixture(scope="module")
def long_1080p(media_dir):
    """60 s of 1080p: 4 s encoded once, looped into a minute without re-encoding."""
    piece = make_clip(media_dir / "piece1080.mp4", seconds=4, size="1920x1080", extra_video=["-b:v", "1M"])
    path = media_dir / "long1080.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-stream_loop", "14", "-i", str(piece), "-c", "copy",
                    str(path)], check=True)
    stream = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "stream=width,height:format=duration")
    assert (stream["streams"][0]["width"], stream["streams"][0]["height"]) == (1920, 1080)
    assert float(stream["format"]["duration"]) >= 59.5
    return path


def test_cancel_of_a_full_ladder_stops_at_once(long_1080p, tmp_path):
    """Cancel never waits for the rungs to flush their encoders or finish (faststart) their files."""
    token = framepress.CancelToken()
    out = tmp_path / "out"
    seen = []
    cancelled_at = []

    def cancel():
        cancelled_at.append(time.monotonic())
        token.cancel()

    timer = threading.Timer(3.0, cancel)
    timer.start()
    try:
        with pytest.raises(Cancelled):
            framepress.transcode(long_1080p, out, "default", hls=True, on_progress=seen.append, cancel=token)
    finally:
        timer.cancel()
    stopped_after = time.monotonic() - cancelled_at[0]
    assert seen and seen[-1].frames > 0 and seen[-1].fraction < 0.5, "the job was not running when cancelled"
    assert stopped_after < 1.5, f"Cancelled raised {stopped_after:.2f} s after cancel()"
    assert list(out.iterdir()) == []
    assert not [f for f in open_files() if str(out) in f], "a descriptor outlived the cancelled job"


def test_unwritable_output_directory(clip, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores mode bits: use a path under a regular file
            target = tmp_path / "afile"
            target.write_text("x")
            locked = target / "sub"
        with pytest.raises(OutputError) as info:
            framepress.transcode(clip, locked, SLOW)
        assert info.value.step == "prepare output"
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_full_disk_is_an_output_error(clip, tmp_path):
    import subprocess
    disk = tmp_path / "tiny"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with pytest.raises(OutputError, match="No space left"):
            framepress.transcode(clip, disk / "out", SLOW, hls=True)
        assert list((disk / "out").iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_outputs_replace_earlier_ones_atomically(clip, tmp_path):
    (tmp_path / "360p.mp4").write_bytes(b"old")
    result = framepress.transcode(clip, tmp_path, SLOW)
    assert os.path.getsize(result.renditions[0].path) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["240p.mp4", "360p.mp4"]
