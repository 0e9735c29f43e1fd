"""A time range of a source: adjacent ranges partition its frames and line up with each other.

The source has B-frames, open GOPs and keyframes off the output grid, so every range starts by
decoding from a keyframe before its start and dropping what comes before it.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import framepress
from conftest import ffprobe_json, make_clip, video_frames
from framepress.errors import InputError

LADDER = {"name": "range", "gop_seconds": 1, "segment_seconds": 2,
          "rungs": [{"name": "144p", "height": 144, "bitrate": 150_000, "preset": "ultrafast"}]}
EDGES = [0.0, 2.0, 4.0, None]  # the last range runs to the end


@pytest.fixture(scope="module")
def open_gop(media_dir):
    # 6 s at 30 fps; a keyframe every 1.5 s (off the 1 s output grid), open GOPs, 3 B-frames.
    return make_clip(media_dir / "open_gop.mp4", seconds=6, size="256x144",
                     extra_video=["-x264-params", "keyint=45:min-keyint=45:scenecut=0:bframes=3:open-gop=1"])


def times(path) -> list[float]:
    return [round(float(f["pts_time"]), 4) for f in video_frames(path)]


def frames_of(path) -> list[dict]:
    return video_frames(path)


@pytest.fixture(scope="module")
def whole_and_ranges(open_gop, tmp_path_factory):
    root = tmp_path_factory.mktemp("ranges")
    whole = framepress.transcode(open_gop, root / "whole", LADDER, hls=True, hwaccel="cpu")
    parts = [framepress.transcode(open_gop, root / f"part{i}", LADDER, hls=True, hwaccel="cpu", start=a, end=b)
             for i, (a, b) in enumerate(zip(EDGES, EDGES[1:]))]
    return whole, parts


def test_the_source_has_b_frames_and_keyframes_off_the_grid(open_gop):
    frames = video_frames(open_gop)
    assert any(f["pict_type"] == "B" for f in frames)
    assert [round(float(f["pts_time"]), 3) for f in frames if int(f["key_frame"])][:3] == [0.0, 1.5, 3.0]


def test_adjacent_ranges_partition_the_frames(open_gop, whole_and_ranges):
    whole, parts = whole_and_ranges
    source = times(open_gop)
    assert whole.renditions[0].frames == len(source) == 180
    assert [p.renditions[0].frames for p in parts] == [60, 60, 60]
    assert [p.decoded_frames for p in parts] == [60, 60, 60]
    chunks = [times(p.renditions[0].path) for p in parts]
    joined = [t for c in chunks for t in c]
    assert joined == sorted(joined), "ranges overlap or come out of order"
    assert joined == times(whole.renditions[0].path)


def test_each_range_starts_with_an_idr_and_keeps_the_whole_sources_keyframes(whole_and_ranges):
    whole, parts = whole_and_ranges
    keys = []
    for p in parts:
        frames = frames_of(p.renditions[0].path)
        assert int(frames[0]["key_frame"]) == 1 and frames[0]["pict_type"] == "I"
        keys += [round(float(f["pts_time"]), 3) for f in frames if int(f["key_frame"])]
    assert keys == [round(float(f["pts_time"]), 3) for f in frames_of(whole.renditions[0].path)
                    if int(f["key_frame"])]
    assert keys == [float(s) for s in range(6)]


def test_ranges_stay_on_the_sources_timeline_and_have_no_audio(whole_and_ranges):
    _, parts = whole_and_ranges
    firsts = [times(p.renditions[0].path)[0] for p in parts]
    assert firsts == [0.0, 2.0, 4.0]
    # The HLS segments of each part carry the same times: a playlist of all of them plays on.
    for p, first in zip(parts, firsts):
        assert times(p.renditions[0].playlist)[0] == first
        assert not p.renditions[0].has_audio and p.audio.index == -1
    assert parts[0].warnings == [] and parts[1].warnings == []  # a part is no truncation


def packet_bytes_from(path, start: float) -> int:
    packets = ffprobe_json(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,size")["packets"]
    return sum(int(p["size"]) for p in packets if float(p["pts_time"]) >= start - 1e-3)


def test_a_later_range_spends_the_bits_the_whole_encode_spends_on_its_frames(media_dir, tmp_path):
    """Rate control picks up mid-stream: a range after the start does not spend the rate cap's
    start-of-stream buffer again (at x264's default, 90 % full, this range took 6-7 % more)."""
    clip = make_clip(media_dir / "rate.mp4", seconds=24, size="320x180", audio=False)
    ladder = {"name": "rate", "gop_seconds": 2, "segment_seconds": 6,
              "rungs": [{"name": "180p", "height": 180, "bitrate": 300_000, "preset": "superfast"}]}
    whole = framepress.transcode(clip, tmp_path / "whole", ladder, hwaccel="cpu")
    later = framepress.transcode(clip, tmp_path / "later", ladder, hwaccel="cpu", start=12)
    assert later.renditions[0].frames == 12 * 30
    spent = packet_bytes_from(later.renditions[0].path, 12) / packet_bytes_from(whole.renditions[0].path, 12)
    assert spent == pytest.approx(1, abs=0.015)


def test_a_range_past_the_end_is_an_input_error(open_gop, tmp_path):
    with pytest.raises(InputError, match="no video frame in the range"):
        framepress.transcode(open_gop, tmp_path / "out", LADDER, hwaccel="cpu", start=7, end=9)
    assert not (tmp_path / "out" / "144p.mp4").exists()


@pytest.mark.parametrize("start,end", [(-1, 2), (3, 3), (3, 2)])
def test_a_range_that_is_not_one_is_refused(open_gop, tmp_path, start, end):
    with pytest.raises(ValueError, match="0 <= start < end"):
        framepress.transcode(open_gop, tmp_path / "out", LADDER, start=start, end=end)


def test_cli_start_and_end(open_gop, tmp_path):
    ladder = tmp_path / "ladder.json"
    ladder.write_text(json.dumps(LADDER))
    out = subprocess.run([sys.executable, "-m", "framepress", "transcode", str(open_gop), "-o", str(tmp_path / "o"),
                          "--ladder", str(ladder), "--hwaccel", "cpu", "--start", "2.5", "--end", "3.5", "--json"],
                         check=True, capture_output=True, text=True).stdout
    rendition = json.loads(out)["renditions"][0]
    assert rendition["frames"] == 30
    assert times(rendition["path"])[0] == 2.5


@pytest.mark.parametrize("container", ["ts", "mkv"])
def test_ranges_partition_a_source_without_a_sample_index(media_dir, tmp_path, container):
    # MPEG-TS has no index (a seek lands on any packet); Matroska's cues hold keyframes only.
    src = make_clip(media_dir / f"open_gop.{container}", seconds=6, size="256x144", audio=False,
                    extra_video=["-x264-params", "keyint=45:min-keyint=45:scenecut=0:bframes=3:open-gop=1"])
    source = times(src)
    counts, joined = [], []
    for i, (a, b) in enumerate(zip(EDGES, EDGES[1:])):
        r = framepress.transcode(src, tmp_path / f"p{i}", LADDER, hwaccel="cpu", start=a, end=b)
        counts.append(r.renditions[0].frames)
        joined += times(r.renditions[0].path)
    assert counts == [60, 60, 60] and len(joined) == len(source) == 180
    assert joined == sorted(joined) and len(set(joined)) == 180


def test_a_source_that_cannot_seek_is_an_input_error(media_dir, tmp_path):
    raw = make_clip(media_dir / "raw.h264", seconds=1, size="128x72", audio=False, extra_out=["-f", "h264"])
    with pytest.raises(InputError, match="cannot seek in the source"):
        framepress.transcode(raw, tmp_path / "out", LADDER, hwaccel="cpu", start=0.5)
