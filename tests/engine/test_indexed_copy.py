"""An MPEG-TS source copied into an MP4 (framepress.parts.copy_to_mp4), so that a time range's
bytes can be read from the copy: the same frames, keyframes, timestamps and audio, no encoding."""
from __future__ import annotations

import subprocess

import pytest

import framepress
from conftest import FFMPEG, ffprobe_json, make_clip, video_frames
from framepress.errors import InputError
from framepress.parts import copy_to_mp4, range_span
from framepress.service.split.source_ranges import file_reader, header_ranges, merge, write_sparse
from support.audio_tracks import TONES, audio_streams, tone
from test_parts import EDGES, LADDER


@pytest.fixture(scope="module")
def broadcast(media_dir):
    # B-frames, a keyframe every 1.5 s, AAC, and a clock that starts ten hours in, as a recording may.
    return make_clip(media_dir / "broadcast.ts", seconds=6, size="256x144",
                     extra_video=["-x264-params", "keyint=45:min-keyint=45:scenecut=0:bframes=3"],
                     extra_out=["-output_ts_offset", "36000"])


@pytest.fixture(scope="module")
def copy(broadcast, tmp_path_factory):
    out = tmp_path_factory.mktemp("copy") / "indexed.mp4"
    return copy_to_mp4(broadcast, out), out


def frames(path) -> list[tuple[float, int]]:
    return [(round(float(f["pts_time"]), 4), int(f["key_frame"])) for f in video_frames(path)]


def test_the_copy_has_the_sources_frames_keyframes_timestamps_and_audio(broadcast, copy):
    made, out = copy
    assert made.video_packets == 180 and made.audio_streams == 1 and made.left_out == []
    got = frames(out)
    assert got == frames(broadcast) and len(got) == 180
    assert [t for t, key in got if key] == pytest.approx([got[0][0] + 1.5 * k for k in range(4)], abs=1e-3)
    assert got[0][0] > 36000     # the source's own clock
    streams = ffprobe_json(out, "-show_entries", "stream=codec_type,codec_name,duration:format=format_name")
    assert streams["format"]["format_name"].startswith("mov,mp4")
    assert [(s["codec_type"], s["codec_name"]) for s in streams["streams"]] == [("video", "h264"), ("audio", "aac")]
    assert float(streams["streams"][1]["duration"]) == pytest.approx(6.0, abs=0.05)


def test_a_range_read_from_the_copys_bytes_selects_the_frames_it_does_in_the_source(broadcast, copy, tmp_path):
    _, out = copy
    size = out.stat().st_size
    for i, (a, b) in enumerate(zip(EDGES, EDGES[1:])):
        span = range_span(out, a, b)
        sparse = tmp_path / f"sparse{i}.mp4"
        with open(out, "rb") as f:
            write_sparse(sparse, size, merge(header_ranges(out) + [(span.first, span.end)]), file_reader(f))
        from_copy = framepress.transcode(sparse, tmp_path / f"c{i}", LADDER, hwaccel="cpu", start=a, end=b)
        from_source = framepress.transcode(broadcast, tmp_path / f"s{i}", LADDER, hwaccel="cpu", start=a, end=b)
        assert from_copy.renditions[0].frames == from_source.renditions[0].frames == 60
        assert frames(from_copy.renditions[0].path) == frames(from_source.renditions[0].path)


def test_audio_mp4_cannot_hold_is_refused(media_dir, tmp_path):
    """SMPTE 302M (broadcast PCM in MPEG-TS) has no MP4 mapping: no copy, the source runs whole."""
    source = media_dir / "pcm_302m.ts"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=30:duration=1",
                    "-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=48000",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "s302m", "-strict", "-2", "-ac", "2", str(source)], check=True)
    with pytest.raises(InputError, match="MP4 cannot hold the source's stream 1 .audio, s302m"):
        copy_to_mp4(source, tmp_path / "copy.mp4")


def test_the_copy_keeps_the_audio_the_policy_keeps_and_leaves_out_other_streams(media_dir, tmp_path):
    """Matroska with an English and a French track and subtitles: a French-only ladder's copy holds
    the video and the French track, each stream left out is named, and the tone is French's."""
    subtitles = tmp_path / "subs.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    source = media_dir / "languages.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(subtitles),
                    "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=30:duration=2",
                    "-f", "lavfi", "-i", f"sine=frequency={TONES['eng']}:duration=2",
                    "-f", "lavfi", "-i", f"sine=frequency={TONES['fra']}:duration=2",
                    "-map", "1:v", "-map", "2:a", "-map", "3:a", "-map", "0:s", "-c:a", "aac", "-c:s", "srt",
                    "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(source)], check=True)
    made = copy_to_mp4(source, tmp_path / "copy.mp4", tracks=["fra"])
    assert made.video_packets == 60 and made.audio_streams == 1
    assert made.left_out == ["stream 1 (audio, aac): the audio policy does not keep it",
                             "stream 3 (subtitle, subrip): not video or audio the ladder uses"]
    assert audio_streams(tmp_path / "copy.mp4") == [("fra", 1)]
    assert tone(tmp_path / "copy.mp4") == pytest.approx(TONES["fra"], abs=2)
    assert len(video_frames(tmp_path / "copy.mp4")) == 60
