"""Thumbnails from the decoded frames: a poster, sprite sheets and the WebVTT that maps times to
tiles; every tile is checked against the source frame it should show."""
from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import framepress
from conftest import FFMPEG, ffprobe_json, make_clip

SECONDS, RATE, INTERVAL = 7, 30, 0.25
LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "144p", "height": 144, "bitrate": 150_000, "preset": "ultrafast"}]}


def rgb(path: Path, width: int, height: int, scale: bool = False) -> np.ndarray:
    """Every frame of `path` as RGB (scaled to width x height first when `scale`)."""
    cmd = [FFMPEG, "-v", "error", "-i", str(path)]
    if scale:
        cmd += ["-vf", f"scale={width}:{height}:flags=bicubic"]
    raw = subprocess.run(cmd + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3).astype(np.float32)


@pytest.fixture(scope="module")
def src(media_dir) -> Path:
    return make_clip(media_dir / "thumbs_src.mp4", seconds=SECONDS, size="320x180", rate=RATE)


@pytest.fixture(scope="module")
def result(src, tmp_path_factory):
    return framepress.transcode(src, tmp_path_factory.mktemp("thumbs"), LADDER, thumbnails=INTERVAL)


def cues(vtt: Path) -> list[tuple[float, float, str, tuple[int, int, int, int]]]:
    text = vtt.read_text()
    assert text.startswith("WEBVTT\n\n")
    out = []
    for start, end, sprite, xywh in re.findall(r"(\S+) --> (\S+)\n(\S+)#xywh=(\S+)", text):
        seconds = [sum(float(p) * 60 ** i for i, p in enumerate(reversed(t.split(":")))) for t in (start, end)]
        out.append((*seconds, sprite, tuple(map(int, xywh.split(",")))))
    return out


def test_vtt_covers_the_video_with_one_tile_per_interval(result):
    t = result.thumbnails
    listed = cues(Path(t.vtt))
    assert len(listed) == math.ceil(SECONDS / INTERVAL) == len(t.times)
    assert [c[0] for c in listed] == pytest.approx([k * INTERVAL for k in range(len(listed))])
    assert all(a[1] == b[0] for a, b in zip(listed, listed[1:]))
    assert listed[-1][1] == pytest.approx(SECONDS, abs=0.01)
    assert [Path(p).name for p in t.sprites] == ["sprite_000.jpg", "sprite_001.jpg"]  # 25 tiles a sheet
    assert sorted(p.name for p in Path(t.vtt).parent.iterdir()) == [
        "poster.jpg", "sprite_000.jpg", "sprite_001.jpg", "thumbnails.vtt"]
    for sprite in t.sprites:
        stream = ffprobe_json(sprite, "-show_streams")["streams"][0]
        assert stream["codec_name"] == "mjpeg" and stream["pix_fmt"] == "yuvj420p"
    assert (t.tile_width, t.tile_height) == (160, 90)


def test_every_tile_shows_the_first_frame_at_or_after_its_time(result, src):
    t = result.thumbnails
    frames = rgb(src, t.tile_width, t.tile_height, scale=True)
    assert len(frames) == SECONDS * RATE
    sheets = {}
    for start, _, sprite, (x, y, w, h) in cues(Path(t.vtt)):
        path = Path(t.vtt).parent / sprite
        if sprite not in sheets:
            size = ffprobe_json(path, "-show_streams")["streams"][0]
            sheets[sprite] = rgb(path, size["width"], size["height"])[0]
        tile = sheets[sprite][y:y + h, x:x + w]
        errors = ((frames - tile) ** 2).mean(axis=(1, 2, 3))
        assert int(errors.argmin()) == math.ceil(start * RATE - 1e-6), f"tile at {start} s"


def test_poster_is_the_frame_a_tenth_of_the_way_in_at_full_size(result, src):
    poster = Path(result.thumbnails.poster)
    stream = ffprobe_json(poster, "-show_streams")["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 320, 180)
    frames = rgb(src, 320, 180)
    errors = ((frames - rgb(poster, 320, 180)[0]) ** 2).mean(axis=(1, 2, 3))
    assert int(errors.argmin()) == math.ceil(SECONDS / 10 * RATE)


def test_no_thumbnails_unless_asked_and_a_negative_interval_is_refused(src, tmp_path):
    plain = framepress.transcode(src, tmp_path / "plain", LADDER)
    assert plain.thumbnails is None and not (tmp_path / "plain" / "thumbs").exists()
    with pytest.raises(ValueError, match="seconds between tiles"):
        framepress.transcode(src, tmp_path / "bad", LADDER, thumbnails=-1)


def test_a_rotated_source_gives_upright_images(media_dir, tmp_path):
    """A phone video stored 320x180 with a 90° display matrix is shown 180x320: so are its images."""
    plain = make_clip(media_dir / "thumbs_unrotated.mp4", seconds=2, size="320x180", rate=RATE)
    src = media_dir / "thumbs_rotated.mp4"  # FFmpeg 5 writes the display matrix when copying
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(plain), "-metadata:s:v:0", "rotate=90",
                    "-c", "copy", str(src)], check=True)
    thumbs = framepress.transcode(src, tmp_path, LADDER, thumbnails=1).thumbnails
    assert (thumbs.tile_width, thumbs.tile_height) == (160, 284)
    poster = ffprobe_json(thumbs.poster, "-show_streams")["streams"][0]
    assert (poster["width"], poster["height"]) == (180, 320)
    frames = rgb(src, 180, 320)  # the ffmpeg CLI turns the frames as players do
    assert len(frames) == 2 * RATE
    errors = ((frames - rgb(Path(thumbs.poster), 180, 320)[0]) ** 2).mean(axis=(1, 2, 3))
    assert int(errors.argmin()) == math.ceil(2 / 10 * RATE)
    turned_wrong = ((np.rot90(frames[6], 2) - rgb(Path(thumbs.poster), 180, 320)[0]) ** 2).mean()
    assert errors.min() * 10 < turned_wrong
