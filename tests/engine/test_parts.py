"""Parts of one encode put back together: a range from only its bytes, audio once, joined MP4s."""
from __future__ import annotations

import pytest

import framepress
from conftest import ffprobe_json, make_clip, psnr, video_frames
from framepress.errors import InputError, OutputError
from framepress.parts import join_parts, range_span, write_audio
from framepress.service.split.source_ranges import file_reader, header_ranges, merge, total, write_sparse

LADDER = {"name": "parts", "gop_seconds": 1, "segment_seconds": 2,
          "rungs": [{"name": "144p", "height": 144, "bitrate": 150_000, "preset": "ultrafast"}]}
EDGES = [0.0, 2.0, 4.0, None]


@pytest.fixture(scope="module")
def source(media_dir):
    # Open GOPs with B-frames, keyframes every 1.5 s, audio, and the index at the end (no faststart).
    return make_clip(media_dir / "parts_src.mp4", seconds=6, size="256x144",
                     extra_video=["-x264-params", "keyint=45:min-keyint=45:scenecut=0:bframes=3:open-gop=1"])


@pytest.fixture(scope="module")
def parts(source, tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    return [framepress.transcode(source, root / f"p{i}", LADDER, hls=True, hwaccel="cpu", start=a, end=b)
            for i, (a, b) in enumerate(zip(EDGES, EDGES[1:]))]


def times(path) -> list[float]:
    return [round(float(f["pts_time"]), 4) for f in video_frames(path)]


def test_a_range_transcodes_from_only_its_bytes_and_the_header(source, tmp_path, parts):
    size = source.stat().st_size
    fetched = 0
    for i, (a, b) in enumerate(zip(EDGES, EDGES[1:])):
        span = range_span(source, a, b)
        ranges = merge(header_ranges(source) + [(span.first, span.end)])
        sparse = tmp_path / f"sparse{i}.mp4"
        with open(source, "rb") as f:
            fetched += write_sparse(sparse, size, ranges, file_reader(f))
        result = framepress.transcode(sparse, tmp_path / f"o{i}", LADDER, hwaccel="cpu", start=a, end=b)
        assert result.warnings == [] and result.decoded_frames == 60
        assert times(result.renditions[0].path) == times(parts[i].renditions[0].path)
        assert span.end - span.first < 0.6 * size
    # Each 2 s range reads from the keyframe before it to the one after it (every 1.5 s here): half
    # a GOP more on each side, and the header three times.
    assert fetched < 1.6 * size


def test_header_ranges_keep_every_box_but_the_media_data(source):
    ranges = header_ranges(source)
    assert ranges[0][0] == 0 and total(ranges) < source.stat().st_size / 5
    with open(source, "rb") as f:
        f.seek(ranges[-1][0] + 4)
        assert f.read(4) == b"moov"  # written after the media data


def test_audio_once_for_the_whole_source(source, tmp_path):
    written = write_audio(source, tmp_path, bitrate=64_000, segment_seconds=2)
    audio = written.audio
    assert audio.index == 1 and audio.codec == "aac" and audio.sample_rate == 44100
    assert [(a.name, a.index, a.default) for a in written.audio_renditions] == [("audio_0", 1, True)]
    stream = ffprobe_json(tmp_path / "audio.mp4", "-show_entries", "stream=codec_type,duration")["streams"]
    assert [s["codec_type"] for s in stream] == ["audio"]
    assert float(stream[0]["duration"]) == pytest.approx(6.0, abs=0.03)
    playlist = (tmp_path / "hls" / "audio_0.m3u8").read_text()
    durations = [float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines()
                 if line.startswith("#EXTINF")]
    assert "audio_0_init.mp4" in playlist and sum(durations) == pytest.approx(6.0, abs=0.05)


def test_no_audio_stream_no_audio_files(media_dir, tmp_path):
    silent = make_clip(media_dir / "silent.mp4", seconds=1, size="128x72", audio=False)
    written = write_audio(silent, tmp_path)
    assert written.audio.index == -1 and written.audio_renditions == []
    assert not (tmp_path / "audio.mp4").exists()


def test_parts_joined_with_the_audio_make_the_whole(source, parts, tmp_path):
    write_audio(source, tmp_path / "a", segment_seconds=2)
    out = tmp_path / "joined.mp4"
    frames = join_parts([p.renditions[0].path for p in parts], tmp_path / "a" / "audio.mp4", out)
    assert frames == 180
    assert times(out) == [round(i / 30, 4) for i in range(180)]
    streams = ffprobe_json(out, "-show_entries", "stream=codec_type,duration,nb_frames")["streams"]
    assert [s["codec_type"] for s in streams] == ["video", "audio"]
    assert abs(float(streams[0]["duration"]) - float(streams[1]["duration"])) < 0.05
    # faststart: the index comes before the media data
    head = out.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or head.find(b"mdat") == -1
    keys = [round(float(f["pts_time"]), 3) for f in video_frames(out) if int(f["key_frame"])]
    assert keys == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_parts_that_overlap_are_refused(parts, tmp_path):
    first = parts[0].renditions[0].path
    with pytest.raises(OutputError, match="overlaps the part before it"):
        join_parts([first, first], None, tmp_path / "twice.mp4")


def test_joining_nothing_or_a_missing_part_fails(tmp_path):
    with pytest.raises(OutputError, match="no parts"):
        join_parts([], None, tmp_path / "none.mp4")
    with pytest.raises(InputError):
        join_parts([tmp_path / "missing.mp4"], None, tmp_path / "x.mp4")


def test_stitched_parts_match_the_whole_encode(media_dir, tmp_path):
    """Three 4 s parts joined against one encode of the same 12 s: the same keyframes, per-rung PSNR
    within 0.1 dB and bitrate within 5 % (rate control restarts at each part's edge). The rate cap's
    buffer holds half a second, so each part is long against it, as 30 s chunks are against the
    usual 2 s: the whole encode's buffer has left its start-of-stream level by the first edge."""
    from framepress.service.split.stitching import assemble
    src = make_clip(media_dir / "stitch_vs_whole.mp4", seconds=12, size="426x240", vf="noise=alls=8:allf=t",
                    extra_video=["-g", "60"])
    ladder = {"name": "q", "gop_seconds": 2, "segment_seconds": 4, "rungs": [
        {"name": "240p", "height": 240, "bitrate": 500_000, "bufsize": 250_000, "preset": "veryfast"},
        {"name": "144p", "height": 144, "bitrate": 200_000, "bufsize": 100_000, "preset": "veryfast"}]}
    whole = framepress.transcode(src, tmp_path / "whole", ladder, hls=True, hwaccel="cpu")
    edges = [0, 4, 8, None]
    parts = [framepress.transcode(src, tmp_path / f"p{i}", ladder, hls=True, hwaccel="cpu", start=a, end=b)
             for i, (a, b) in enumerate(zip(edges, edges[1:]))]
    audio = write_audio(src, tmp_path / "audio", segment_seconds=4)
    rungs = {r.name: (r.width, r.height, r.codec, r.codec_string) for r in parts[0].renditions}
    stitched = assemble([tmp_path / f"p{i}" for i in range(3)], tmp_path / "audio", tmp_path / "out", rungs,
                        audio.audio_renditions)
    for w, s in zip(whole.renditions, stitched.renditions):
        keys = [[round(float(f["pts_time"]), 3) for f in video_frames(p) if int(f["key_frame"])] for p in (w.path, s.path)]
        assert keys[0] == keys[1] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        assert psnr(s.path, src) == pytest.approx(psnr(w.path, src), abs=0.1)
        sizes = [sum(int(p["size"]) for p in ffprobe_json(x, "-select_streams", "v:0", "-show_entries",
                                                           "packet=size")["packets"]) for x in (w.path, s.path)]
        assert sizes[1] == pytest.approx(sizes[0], rel=0.05)
