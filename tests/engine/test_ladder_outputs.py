"""The ladder on a regular source: sizes, frames, aligned keyframes, audio, quality, MP4 layout."""
from __future__ import annotations

import pytest

import framepress
from conftest import ffprobe_json, keyframe_times, make_clip, psnr, video_frames

LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "720p", "height": 720, "bitrate": 2_000_000, "preset": "ultrafast"},
    {"name": "480p", "height": 480, "bitrate": 1_000_000, "preset": "ultrafast"},
    {"name": "360p", "height": 360, "bitrate": 600_000, "preset": "ultrafast"},
    {"name": "240p", "height": 240, "bitrate": 300_000, "preset": "ultrafast"}]}


@pytest.fixture(scope="module")
def source(media_dir):
    return make_clip(media_dir / "src480.mp4", seconds=3, size="854x480")


@pytest.fixture(scope="module")
def result(source, tmp_path_factory):
    return framepress.transcode(source, tmp_path_factory.mktemp("out"), LADDER)


def test_rungs_above_source_are_skipped_and_sizes_keep_aspect(result):
    sizes = {r.name: (r.width, r.height) for r in result.renditions}
    assert sizes == {"480p": (854, 480), "360p": (640, 360), "240p": (428, 240)}
    for r in result.renditions:
        stream = ffprobe_json(r.path, "-select_streams", "v:0", "-show_entries", "stream=width,height,pix_fmt")
        assert (stream["streams"][0]["width"], stream["streams"][0]["height"]) == (r.width, r.height)
        assert stream["streams"][0]["pix_fmt"] == "yuv420p"


def test_frame_counts_equal_the_source(result, source):
    expected = len(video_frames(source))
    assert expected == 90
    assert result.decoded_frames == expected
    for r in result.renditions:
        assert r.frames == expected
        assert len(video_frames(r.path)) == expected


def test_keyframes_on_the_same_timestamps_in_every_rung(result):
    times = [keyframe_times(r.path) for r in result.renditions]
    assert times[0] == pytest.approx([0.0, 1.0, 2.0], abs=0.02)
    assert all(t == times[0] for t in times)


def test_audio_in_every_rung_and_durations_match(result, source):
    src_duration = float(ffprobe_json(source, "-show_entries", "format=duration")["format"]["duration"])
    for r in result.renditions:
        streams = ffprobe_json(r.path, "-show_entries", "stream=codec_type,codec_name,duration")["streams"]
        kinds = {s["codec_type"]: s for s in streams}
        assert kinds["audio"]["codec_name"] == "aac"
        assert abs(float(kinds["video"]["duration"]) - 3.0) <= 1 / 30 + 1e-3
        assert abs(float(kinds["audio"]["duration"]) - src_duration) <= 0.05


def test_quality_floor_per_rung(result, source):
    for r in result.renditions:
        assert psnr(r.path, source) > 30.0, r.name


def test_faststart_puts_moov_before_mdat(result):
    data = open(result.renditions[0].path, "rb").read(1 << 16)
    assert 0 <= data.find(b"moov") < data.find(b"mdat") or b"mdat" not in data


def test_result_stats(result):
    for r in result.renditions:
        assert r.bytes > 0 and r.bitrate > 0 and r.encode_fps > 0
        assert r.codec_string.startswith("avc1.")
    assert result.hwaccel_used == "cpu" and result.hwaccel_reason
    assert {"decode", "scale", "encode", "mux", "total"} <= set(result.seconds)


def test_no_staging_left_behind(result):
    out = framepress.engine.Path(result.renditions[0].path).parent
    assert not [p for p in out.iterdir() if p.name.startswith(".framepress-")]


def test_result_describes_the_source_like_probe(result, source):
    # The transcode reads an MP4's streams from its header alone; what it reports of the source
    # (the pixel format from the first decoded frame, the bitrate from size and duration) matches
    # a full probe.
    probed, seen = framepress.probe(source), result.source
    assert (seen["format"], seen["duration"]) == (probed.format, probed.duration)
    assert abs(seen["bitrate"] - probed.bitrate) <= probed.bitrate * 0.01
    fields = ("type", "codec", "width", "height", "fps", "pix_fmt", "sample_rate", "channels")
    assert [[s[f] for f in fields] for s in seen["streams"]] == \
        [[getattr(s, f) for f in fields] for s in probed.streams]
    assert seen["streams"][0]["pix_fmt"] == "yuv420p"
