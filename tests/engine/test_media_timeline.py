"""Source timelines: outputs start at zero and run on evenly whatever the source's clock does.

A TS that starts at 10 h, one whose clock goes back or leaps forward at a splice, one whose 33-bit
PTS wraps, timestamps below zero, a hole in the audio. Every source is checked with ffprobe to
really have the property first.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import framepress
from conftest import FFMPEG, ffprobe_json, keyframe_times, video_frames

FPS = 30
FRAME = 1 / FPS
LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2,
          "rungs": [{"name": "180p", "height": 180, "bitrate": 300_000, "preset": "ultrafast"}]}
TS_PTS_WRAP = 2**33 / 90_000  # seconds


def make_ts(path: Path, *, seconds: float, offset: float = 0, tone: int = 440, container: str = "mpegts",
            audio_filter: str = "") -> Path:
    """H.264 with B-frames (so decode and presentation order differ) and AAC, the clock at `offset`."""
    cmd = [FFMPEG, "-y", "-loglevel", "error",
           "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency={tone}:duration={seconds}"]
    if audio_filter:
        cmd += ["-af", audio_filter]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "15", "-c:a", "aac", "-b:a", "64k",
            "-f", container]
    if offset:
        cmd += ["-output_ts_offset", str(offset), "-avoid_negative_ts", "disabled"]
    subprocess.run(cmd + [str(path)], check=True)
    return path


def joined(path: Path, *parts: Path) -> Path:
    """Byte-wise concatenation, as the concat protocol reads it: the second clock runs on unchanged."""
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def packet_times(path: Path, stream: str) -> list[float]:
    data = ffprobe_json(path, "-select_streams", stream, "-show_entries", "packet=pts_time,dts_time")
    return [float(p.get("dts_time", p["pts_time"])) for p in data["packets"]]


def timings(path: Path | str) -> dict:
    data = ffprobe_json(path, "-show_entries", "format=start_time,duration:stream=codec_type,start_time,duration")
    out = {"start": float(data["format"]["start_time"]), "duration": float(data["format"]["duration"])}
    for s in data["streams"]:  # (start, duration); Matroska gives no stream durations
        out[s["codec_type"]] = (float(s["start_time"]), float(s.get("duration", "nan")))
    return out


def transcode(src: Path, out: Path):
    result = framepress.transcode(src, out, LADDER, hls=True)
    return result, result.renditions[0]


def segment_durations(playlist: Path | str) -> list[float]:
    return [float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", Path(playlist).read_text())]


def assert_continuous_from_zero(rendition, seconds: float):
    """Every frame kept, evenly spaced from zero; audio with it to the end; keyframes on the grid."""
    times = [float(f["pts_time"]) for f in video_frames(rendition.path)]
    assert rendition.frames == len(times) == round(seconds * FPS)
    assert times[0] == 0
    steps = [b - a for a, b in zip(times, times[1:])]
    assert min(steps) > 0.5 * FRAME and max(steps) < 1.9 * FRAME, (min(steps), max(steps))

    t = timings(rendition.path)
    assert t["start"] == 0 and t["video"][0] == 0 and t["audio"][0] == 0
    assert t["video"][1] == pytest.approx(seconds, abs=FRAME)
    assert t["duration"] == pytest.approx(seconds, abs=FRAME)
    # A/V in step at the end: the audio ends with the last video frame.
    assert sum(t["audio"]) == pytest.approx(times[-1] + FRAME, abs=FRAME)

    keys = keyframe_times(rendition.path)
    assert len(keys) == round(seconds)
    assert keys == pytest.approx(list(range(round(seconds))), abs=FRAME / 2)

    segments = segment_durations(rendition.playlist)
    assert sum(segments) == pytest.approx(seconds, abs=FRAME)
    assert segments[:-1] == pytest.approx([2.0] * (len(segments) - 1), abs=FRAME)  # cut on the grid


def test_ts_starting_at_ten_hours_gives_outputs_from_zero(media_dir, tmp_path):
    src = make_ts(media_dir / "ten_hours.ts", seconds=4, offset=36_000)
    assert timings(src)["start"] > 36_000
    result, r = transcode(src, tmp_path)
    assert result.decoded_frames == 120
    assert result.audio.warnings == []
    assert_continuous_from_zero(r, 4)


def test_ts_whose_clock_goes_back_keeps_frame_spacing(media_dir, tmp_path):
    first = make_ts(media_dir / "before_splice.ts", seconds=3)
    second = make_ts(media_dir / "after_splice.ts", seconds=3, offset=1, tone=880)
    src = joined(media_dir / "back.ts", first, second)
    dts = packet_times(src, "v:0")
    assert min(b - a for a, b in zip(dts, dts[1:])) < -1.5  # the clock really goes back ~2 s
    result, r = transcode(src, tmp_path)
    assert result.decoded_frames == 180
    assert_continuous_from_zero(r, 6)


def test_ts_whose_clock_leaps_forward_has_no_hole(media_dir, tmp_path):
    first = make_ts(media_dir / "before_leap.ts", seconds=3)
    second = make_ts(media_dir / "after_leap.ts", seconds=3, offset=100, tone=880)
    src = joined(media_dir / "leap.ts", first, second)
    dts = packet_times(src, "v:0")
    assert max(b - a for a, b in zip(dts, dts[1:])) > 90
    _, r = transcode(src, tmp_path)
    assert_continuous_from_zero(r, 6)


def test_ts_whose_pts_wraps_runs_on(media_dir, tmp_path):
    src = make_ts(media_dir / "wrap.ts", seconds=4, offset=TS_PTS_WRAP - 3.5)
    # The raw 33-bit PTS of the first packets are near the wrap; the demuxer reads the clip as one
    # run through zero.
    start = timings(src)["start"]
    assert -3 < start < 0
    _, r = transcode(src, tmp_path)
    assert_continuous_from_zero(r, 4)


@pytest.mark.timeout(120)
def test_matroska_whose_timestamps_leap_by_centuries_runs_on(media_dir, tmp_path):
    """Found by the fuzzer: a leap of 10^10 s stepped the keyframe grid one GOP at a time (a hang),
    then no MP4 could hold the gap. Past an hour a gap in the video is a broken clock, removed as in
    a TS."""
    src = tmp_path / "leap.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "15",
                    "-bsf:v", f"setts=ts=if(gte(N\\,{FPS})\\,PTS+1e13\\,PTS)", str(src)], check=True)
    times = packet_times(src, "v:0")
    assert max(b - a for a, b in zip(times, times[1:])) > 1e9  # Matroska's milliseconds cap it
    _, rendition = transcode(src, tmp_path / "out")
    times = [float(f["pts_time"]) for f in video_frames(rendition.path)]
    assert rendition.frames == len(times) == 2 * FPS
    assert max(b - a for a, b in zip(times, times[1:])) < 1.9 * FRAME
    assert keyframe_times(rendition.path) == [0, 1.0]


def test_negative_timestamps_get_keyframes_on_the_grid_only(media_dir, tmp_path):
    src = make_ts(media_dir / "negative.ts", seconds=4, offset=-10)
    assert timings(src)["start"] < -8
    assert [float(f["pts_time"]) < 0 for f in video_frames(src)] == [True] * 120
    _, r = transcode(src, tmp_path)
    assert_continuous_from_zero(r, 4)
    assert sum(int(f["key_frame"]) for f in video_frames(r.path)) == 4


def silences(path: Path | str) -> list[tuple[float, float]]:
    err = subprocess.run([FFMPEG, "-i", str(path), "-vn", "-af", "silencedetect=n=-50dB:d=0.2", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    starts = [float(v) for v in re.findall(r"silence_start: ([-0-9.]+)", err)]
    ends = [float(v) for v in re.findall(r"silence_end: ([-0-9.]+)", err)]
    return list(zip(starts, ends))


# An MPEG-TS audio stream that pauses for longer than a clock leap (10 s) while the video goes on
# has a hole, not a leap: the streams stay together.
@pytest.mark.parametrize("container,seconds,hole", [("matroska", 4, (1.5, 2.5)), ("mpegts", 4, (1.5, 2.5)),
                                                    ("mpegts", 14, (1.5, 12.5))])
def test_hole_in_the_audio_is_filled_and_keeps_sync(media_dir, tmp_path, container, seconds, hole):
    # A tone with a part missing: the audio packets' clock skips it.
    src = make_ts(media_dir / f"audio_hole_{seconds}.{container}", seconds=seconds, container=container,
                  audio_filter=f"aselect='not(between(t,{hole[0]},{hole[1]}))'")
    audio = packet_times(src, "a:0")
    holes = [(a, b) for a, b in zip(audio, audio[1:]) if b - a > 0.5]
    assert len(holes) == 1
    video_start = timings(src)["video"][0]
    hole_end = holes[0][1] - video_start  # where the tone comes back, from the first frame
    assert hole_end == pytest.approx(hole[1], abs=0.05)

    result, r = transcode(src, tmp_path)
    assert_continuous_from_zero(r, seconds)
    # The tone comes back where it did in the source, not a hole's length early.
    (quiet_from, quiet_to), = silences(r.path)
    assert quiet_to == pytest.approx(hole_end, abs=FRAME)
    assert quiet_to - quiet_from == pytest.approx(holes[0][1] - holes[0][0], abs=0.06)
    (warning,) = result.audio.warnings
    filled = re.fullmatch(r"audio had 1 hole\(s\), filled with ([0-9.]+) s of silence \(first at ([0-9.]+) s\)",
                          warning)
    assert filled, warning
    assert float(filled.group(1)) == pytest.approx(hole[1] - hole[0], abs=0.06)
    assert float(filled.group(2)) == pytest.approx(quiet_from, abs=0.03)


def test_audio_long_before_the_first_video_frame_is_cut(media_dir, tmp_path):
    # 90 s of audio (more packets than the engine holds back) before the video starts; a quiet
    # half second at 91 s marks where the audio must land.
    src = media_dir / "late_video.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-itsoffset", "90",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=92",
                    "-af", "volume=enable='between(t,91,91.5)':volume=0",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "32k", str(src)], check=True)
    video_start = packet_times(src, "v:0")[0]
    assert video_start > 90
    assert silences(src) == [pytest.approx((91, 91.5), abs=0.05)]
    assert sum(1 for t in packet_times(src, "a:0") if t < video_start) > 4096

    result, r = transcode(src, tmp_path)
    assert result.audio.warnings == []  # audio before the video is cut, not a repair
    t = timings(r.path)
    assert r.frames == 60
    assert t["start"] == 0 and t["video"][0] == 0 and t["audio"][0] == 0
    assert sum(t["audio"]) == pytest.approx(2.0, abs=FRAME)
    (src_from, src_to), = silences(src)
    (quiet_from, quiet_to), = silences(r.path)
    assert quiet_from == pytest.approx(src_from - video_start, abs=FRAME)
    assert quiet_to == pytest.approx(src_to - video_start, abs=FRAME)


def test_audio_clock_leaping_by_hours_is_not_filled(media_dir, tmp_path):
    # Outside MPEG-TS a leap is kept as a gap; one of two hours in the audio alone is not a pause
    # to fill with silence but a broken clock: the audio runs on with the video.
    src = make_ts(media_dir / "audio_leap.mkv", seconds=4, container="matroska",
                  audio_filter="asetpts='if(gte(T,2),PTS+7200/TB,PTS)'")
    audio = packet_times(src, "a:0")
    assert max(b - a for a, b in zip(audio, audio[1:])) > 7000
    result, r = transcode(src, tmp_path)
    assert_continuous_from_zero(r, 4)
    assert silences(r.path) == []
    (warning,) = result.audio.warnings
    assert re.fullmatch(r"audio timestamps leapt 1 time\(s\) by more than 600 s \(first at 2\.0\d\d s\): "
                        r"not believed, the audio runs on", warning), warning


def test_audio_starting_after_the_video_is_padded_to_zero(media_dir, tmp_path):
    src = media_dir / "late_audio.mkv"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration=3",
                    "-itsoffset", "1", "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(src)], check=True)
    audio_start = packet_times(src, "a:0")[0] - timings(src)["video"][0]
    assert audio_start == pytest.approx(1, abs=0.05)

    result, r = transcode(src, tmp_path)
    assert result.audio.warnings == []  # a late start is no hole
    assert_continuous_from_zero(r, 3)
    (quiet_from, quiet_to), = silences(r.path)
    assert quiet_from == 0
    assert quiet_to == pytest.approx(audio_start, abs=FRAME)
