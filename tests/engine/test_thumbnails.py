"""Thumbnails from the decoded frames: a poster, sprite sheets and the WebVTT that maps times to
tiles; every tile is checked against the source frame it should show."""
from __future__ import annotations

import math
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

import framepress
from conftest import FFMPEG, ffprobe_json, make_clip
from framepress.errors import EncodeError, OutputError

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


TINY_LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "36p", "height": 36, "bitrate": 50_000, "preset": "ultrafast"}]}


@pytest.fixture(scope="module")
def tiny(media_dir) -> Path:
    """64x36: its poster is a JPEG smaller than a stdio buffer, so a failed write shows only on close."""
    return make_clip(media_dir / "thumbs_tiny.mp4", seconds=1, size="64x36", rate=RATE, audio=False)


@pytest.fixture
def staging_with(monkeypatch):
    """Puts something in the engine's staging directory as soon as it is made, before the engine
    writes there: `prepare(staging)`."""
    def arrange(prepare):
        made = tempfile.mkdtemp

        def mkdtemp(*args, **kwargs):
            path = made(*args, **kwargs)
            prepare(Path(path))
            return path
        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    return arrange


def test_a_thumbnails_folder_that_cannot_be_made_fails_the_job(tiny, tmp_path, staging_with):
    staging_with(lambda staging: (staging / "thumbs").write_text("a file where the folder goes"))
    with pytest.raises(OutputError, match="cannot create .*thumbs") as info:
        framepress.transcode(tiny, tmp_path, TINY_LADDER, thumbnails=INTERVAL, hwaccel="cpu")
    assert info.value.step == "prepare output"
    assert list(tmp_path.iterdir()) == []


def test_a_poster_written_to_a_full_disk_fails_the_job(tiny, tmp_path, staging_with):
    def full_disk(staging: Path) -> None:
        (staging / "thumbs").mkdir()
        (staging / "thumbs" / "poster.jpg").symlink_to("/dev/full")
    staging_with(full_disk)
    with pytest.raises(OutputError, match="cannot write .*poster.jpg: No space left on device") as info:
        framepress.transcode(tiny, tmp_path, TINY_LADDER, thumbnails=INTERVAL, hwaccel="cpu")
    assert info.value.step == "thumbnails"
    assert list(tmp_path.iterdir()) == []


def test_a_sprite_that_cannot_be_opened_for_writing_fails_the_job(tiny, tmp_path, staging_with):
    staging_with(lambda staging: (staging / "thumbs" / "sprite_000.jpg").mkdir(parents=True))
    with pytest.raises(OutputError, match="cannot write .*sprite_000.jpg: Is a directory") as info:
        framepress.transcode(tiny, tmp_path, TINY_LADDER, thumbnails=INTERVAL, hwaccel="cpu")
    assert info.value.step == "thumbnails"
    assert list(tmp_path.iterdir()) == []


def test_a_sprite_sheet_larger_than_jpeg_allows_is_an_encode_error(media_dir, tmp_path):
    """A picture shown 255 times taller than wide (a broken header, say): each 160-wide tile is
    40800 tall, two rows of them more than JPEG's 65500, and the encoder refuses the sheet."""
    plain = make_clip(media_dir / "thumbs_for_tall.mp4", seconds=2, size="320x180", rate=RATE, audio=False)
    src = media_dir / "thumbs_tall.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(plain), "-c", "copy", "-aspect", "1:255",
                    str(src)], check=True)
    with pytest.raises(EncodeError, match="cannot open the JPEG encoder for a 800x81600 picture") as info:
        framepress.transcode(src, tmp_path, TINY_LADDER, thumbnails=INTERVAL, hwaccel="cpu")
    assert info.value.step == "thumbnails"
    assert list(tmp_path.iterdir()) == []
