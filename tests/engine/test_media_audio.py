"""Real-world audio: formats that change mid-stream, rates and layouts AAC does not take, codecs
nothing here decodes, several audio streams. Each transcode runs in a child process, so a crash
shows up as a failed test rather than a dead run."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from conftest import FFMPEG, ffprobe_json

LADDER = {"name": "audio", "gop_seconds": 1, "segment_seconds": 2,
          "rungs": [{"name": "240p", "height": 240, "bitrate": 300_000, "preset": "ultrafast"}]}
VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2"]
FRAME_S = 1 / 30

CHILD = textwrap.dedent("""
    import json, sys
    import framepress
    from framepress.service.failure.classification import classify
    from framepress.errors import FramepressError
    try:
        result = framepress.transcode(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), hwaccel="cpu")
        print(json.dumps({"result": result.to_dict()}))
    except FramepressError as exc:
        print(json.dumps({"error": {"type": type(exc).__name__, "message": str(exc), "transient": exc.transient,
                                    "class": classify(exc, "transcode")}}))
""")


def transcode_isolated(src, out_dir) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(src), str(out_dir), json.dumps(LADDER)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"the transcode died (exit {proc.returncode}): {proc.stderr[-800:]}"
    return json.loads(proc.stdout.splitlines()[-1])


def ffmpeg(*args):
    subprocess.run([FFMPEG, "-y", "-nostdin", "-loglevel", "error", *map(str, args)], check=True)


def ts_segment(path, *, rate: int, channels: int, codec: str = "aac"):
    """2 s of 30 fps video with a tone of `channels` channels at `rate` Hz, as MPEG-TS."""
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", codec, "-ac", channels, "-f", "mpegts", path)
    return path


def joined_ts(path, segments):
    """The segments one after the other in one TS, packets copied: the audio changes where they meet."""
    listing = path.with_suffix(".txt")
    listing.write_text("".join(f"file '{s}'\n" for s in segments))
    ffmpeg("-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", "-f", "mpegts", path)
    return path


def decoded_audio_formats(path) -> list[tuple[int, int]]:
    """(channels, rate) of the decoded audio, one entry per run of frames alike."""
    log = subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-i", str(path), "-map", "0:a:0", "-af", "ashowinfo",
                          "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    runs: list[tuple[int, int]] = []
    for channels, rate in re.findall(r"channels:(\d+) chlayout:\S+ rate:(\d+)", log):
        if not runs or runs[-1] != (int(channels), int(rate)):
            runs.append((int(channels), int(rate)))
    return runs


def video_frame_count(path) -> int:
    s = ffprobe_json(path, "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames")
    return int(s["streams"][0]["nb_read_frames"])


def streams(path) -> dict[str, dict]:
    data = ffprobe_json(path, "-show_entries", "stream=codec_type,sample_rate,channels,start_time,duration")
    return {s["codec_type"]: s for s in data["streams"]}


def end_time(stream: dict) -> float:
    return float(stream["start_time"]) + float(stream["duration"])


def assert_audio_kept(src, outcome, *, rate: int, channels: int):
    """No crash, every video frame, AAC audio at `rate`/`channels` that ends with the video."""
    assert "result" in outcome, outcome
    [r] = outcome["result"]["renditions"]
    frames = video_frame_count(src)
    assert r["frames"] == frames == video_frame_count(r["path"])
    out = streams(r["path"])
    assert "audio" in out and r["has_audio"]
    assert (int(out["audio"]["sample_rate"]), int(out["audio"]["channels"])) == (rate, channels)
    audio = outcome["result"]["audio"]
    assert (audio["sample_rate"], audio["channels"]) == (rate, channels)
    # One AAC frame is shorter than a video frame at these rates: the audio ends within a frame of the video.
    assert abs(end_time(out["audio"]) - end_time(out["video"])) <= FRAME_S, out
    return audio


def test_stereo_to_mono_mid_stream(media_dir, tmp_path):
    src = joined_ts(media_dir / "stereo_mono.ts", [ts_segment(media_dir / "st.ts", rate=48000, channels=2),
                                                   ts_segment(media_dir / "mono.ts", rate=48000, channels=1)])
    assert decoded_audio_formats(src) == [(2, 48000), (1, 48000)]
    audio = assert_audio_kept(src, transcode_isolated(src, tmp_path), rate=48000, channels=2)
    assert audio["index"] == 1 and audio["codec"] == "aac"
    assert any("changed 1 time" in w and "mono" in w for w in audio["warnings"]), audio


def test_ac3_surround_to_stereo_mid_stream(media_dir, tmp_path):
    src = joined_ts(media_dir / "ac3_51_20.ts", [ts_segment(media_dir / "ac3_51.ts", rate=48000, channels=6, codec="ac3"),
                                                 ts_segment(media_dir / "ac3_20.ts", rate=48000, channels=2, codec="ac3")])
    assert decoded_audio_formats(src) == [(6, 48000), (2, 48000)]
    audio = assert_audio_kept(src, transcode_isolated(src, tmp_path), rate=48000, channels=6)
    assert audio["codec"] == "ac3" and audio["channel_layout"] == "5.1"
    assert any("changed 1 time" in w for w in audio["warnings"]), audio


def test_rate_change_mid_stream_keeps_the_duration(media_dir, tmp_path):
    src = joined_ts(media_dir / "44k_48k.ts", [ts_segment(media_dir / "44k.ts", rate=44100, channels=2),
                                               ts_segment(media_dir / "48k.ts", rate=48000, channels=2)])
    assert decoded_audio_formats(src) == [(2, 44100), (2, 48000)]
    audio = assert_audio_kept(src, transcode_isolated(src, tmp_path), rate=44100, channels=2)
    assert any("44100 Hz" in w and "48000 Hz" in w for w in audio["warnings"]), audio


def test_192khz_audio_is_resampled_to_48khz_without_losing_its_tail(media_dir, tmp_path):
    src = media_dir / "192k.mkv"
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=192000:duration=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac", src)
    assert streams(src)["audio"]["sample_rate"] == "192000"
    outcome = transcode_isolated(src, tmp_path)
    audio = assert_audio_kept(src, outcome, rate=48000, channels=1)
    assert "audio resampled from 192000 Hz to 48000 Hz" in audio["warnings"]
    # 2 s in, 2 s out to the sample: what the resampler holds at the end is drained, not dropped.
    out = streams(outcome["result"]["renditions"][0]["path"])["audio"]
    assert abs(float(out["duration"]) - 2.0) < 0.5 / 48000, out


def test_unnamed_ten_channel_audio_is_downmixed_to_stereo(media_dir, tmp_path):
    src = media_dir / "ten_channels.mkv"
    tones = "|".join(f"0.5*sin({300 + 50 * i}*2*PI*t)" for i in range(10))
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", f"aevalsrc=exprs={tones}:sample_rate=48000:duration=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", src)
    s = ffprobe_json(src, "-select_streams", "a:0", "-show_entries", "stream=channels,channel_layout")["streams"][0]
    assert (s["channels"], s.get("channel_layout", "unknown")) == (10, "unknown")
    outcome = transcode_isolated(src, tmp_path)
    audio = assert_audio_kept(src, outcome, rate=48000, channels=2)
    assert "audio downmixed from 10 channels to stereo" in audio["warnings"]
    # The first two channels are kept as they are, not mixed into silence.
    level = subprocess.run([FFMPEG, "-nostdin", "-i", outcome["result"]["renditions"][0]["path"], "-map", "0:a",
                            "-af", "volumedetect", "-f", "null", "-"], capture_output=True, text=True).stderr
    assert float(re.search(r"mean_volume: (-?[\d.]+) dB", level).group(1)) > -20


def test_audio_that_cannot_be_mixed_fails_for_good(media_dir, tmp_path):
    # 100 channels: more than FFmpeg's resampler mixes. The task fails with an error no retry repeats.
    src = media_dir / "hundred_channels.mkv"
    ffmpeg(*VIDEO, "-f", "s16le", "-ar", "48000", "-ac", "100", "-t", "2", "-i", "/dev/zero",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", src)
    assert streams(src)["audio"]["channels"] == 100
    outcome = transcode_isolated(src, tmp_path / "out")
    error = outcome["error"]
    assert error["type"] == "InputError" and "100 channels" in error["message"]
    assert not error["transient"] and error["class"] == "permanent"
    assert not any((tmp_path / "out").iterdir())


def test_undecodable_audio_is_dropped_with_a_warning(media_dir, tmp_path):
    # MPEG-H 3D Audio: FFmpeg muxes and copies it but has no decoder for it. PCM muxed into a MOV
    # and retagged as MPEG-H, then copied into an MP4 by FFmpeg itself.
    pcm = media_dir / "pcm.mov"
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "pcm_s16be", pcm)
    data = pcm.read_bytes()
    assert data.count(b"twos") == 1
    retagged = media_dir / "mpegh.mov"
    retagged.write_bytes(data.replace(b"twos", b"mhm1"))
    src = media_dir / "mpegh.mp4"
    ffmpeg("-i", retagged, "-c", "copy", src)
    assert streams(src)["audio"] and ffprobe_json(src, "-select_streams", "a:0", "-show_entries",
                                                  "stream=codec_name")["streams"][0]["codec_name"] == "mpegh_3d_audio"
    decode = subprocess.run([FFMPEG, "-nostdin", "-i", str(src), "-map", "0:a", "-f", "null", "-"],
                            capture_output=True, text=True)
    assert decode.returncode != 0 and "Decoder (codec mpegh_3d_audio) not found" in decode.stderr

    outcome = transcode_isolated(src, tmp_path)
    assert "result" in outcome, outcome
    [r] = outcome["result"]["renditions"]
    assert r["frames"] == 60 and not r["has_audio"]
    assert set(streams(r["path"])) == {"video"}
    audio = outcome["result"]["audio"]
    assert audio["index"] == -1 and audio["channels"] == 0
    assert audio["warnings"] == ["audio stream 1 (mpegh_3d_audio) dropped: unsupported codec mpegh_3d_audio"]


def test_the_audio_stream_used_is_named_in_the_cli_json(media_dir, tmp_path):
    src = media_dir / "two_languages.mkv"
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=660:duration=2", "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1",
           "language=fra", src)
    tags = {s["index"]: s["tags"]["language"] for s in ffprobe_json(src, "-select_streams", "a", "-show_entries",
                                                                      "stream=index:stream_tags=language")["streams"]}
    assert tags == {1: "eng", 2: "fra"}
    ladder = tmp_path / "ladder.json"
    ladder.write_text(json.dumps(LADDER))
    proc = subprocess.run([sys.executable, "-m", "framepress", "transcode", str(src), "-o", str(tmp_path / "out"),
                           "--ladder", str(ladder), "--hwaccel", "cpu", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    audio = json.loads(proc.stdout)["audio"]
    assert audio["index"] in tags and audio["language"] == tags[audio["index"]]
    assert (audio["codec"], audio["sample_rate"], audio["channels"]) == ("aac", 44100, 1)
    assert audio["warnings"] == []  # both streams are kept (the ladder's default audio policy)
    streams = ffprobe_json(tmp_path / "out" / "240p.mp4", "-select_streams", "a", "-show_streams")["streams"]
    assert [s["tags"]["language"] for s in streams] == ["eng", "fra"]


@pytest.mark.parametrize("layout,kept", [("5.1(side)", "5.1"), ("quad", "stereo")])
def test_surround_layouts_map_to_ones_players_know(media_dir, tmp_path, layout, kept):
    src = media_dir / f"{layout}.mov"
    ffmpeg(*VIDEO, "-f", "lavfi", "-i", "sine=duration=2", "-af", f"pan={layout}|c0=c0|c1=c0",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", src)
    s = ffprobe_json(src, "-select_streams", "a:0", "-show_entries", "stream=channel_layout")["streams"][0]
    assert s["channel_layout"] == layout
    outcome = transcode_isolated(src, tmp_path)
    channels = {"5.1": 6, "stereo": 2}[kept]
    audio = assert_audio_kept(src, outcome, rate=44100, channels=channels)
    assert audio["channel_layout"] == kept
    downmixed = [w for w in audio["warnings"] if "downmixed" in w]
    assert downmixed == ([] if kept == "5.1" else [f"audio downmixed from {layout} to stereo"])
