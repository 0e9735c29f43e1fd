"""Bad input: clear errors, no crash, no reading of other files."""
from __future__ import annotations

import pytest

import framepress
from framepress.errors import HardwareError, InputError, LadderError


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as info:
        framepress.probe(tmp_path / "nope.mp4")
    assert "does not exist" in str(info.value)


def test_garbage_file(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 1000)
    with pytest.raises(InputError) as info:
        framepress.transcode(junk, tmp_path / "out", "default")
    assert info.value.step in ("open", "probe") and info.value.ffmpeg_message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_audio_only_file_has_no_video(tmp_path):
    import subprocess
    wav = tmp_path / "tone.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(wav)], check=True)
    with pytest.raises(InputError, match="no video stream"):
        framepress.transcode(wav, tmp_path / "out", "default")


@pytest.mark.parametrize("name,body", [
    ("playlist.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n"),
    ("concat.mp4", "ffconcat version 1.0\nfile '{target}'\n"),
    ("list.m3u8", "#EXTM3U\n#EXTINF:10,\nfile://{target}\n"),
])
def test_playlists_posing_as_video_cannot_read_local_files(clip, tmp_path, name, body):
    evil = tmp_path / name
    evil.write_text(body.format(target=clip))
    with pytest.raises(InputError):
        framepress.probe(evil)
    with pytest.raises(InputError):
        framepress.transcode(evil, tmp_path / "out", "default")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_url_like_names_are_local_paths(tmp_path):
    with pytest.raises(InputError):
        framepress.probe("http://127.0.0.1:9/video.mp4")


def test_invalid_ladders_are_refused_before_any_work(clip, tmp_path):
    for bad in ({"rungs": []}, {"rungs": [{"name": "x", "height": 0, "bitrate": 1}]},
                {"rungs": [{"name": "x", "height": 240, "codec": "vp8", "bitrate": 1}]},
                {"rungs": [{"name": "x", "height": 240}]}, "no-such-ladder", "{not json"):
        with pytest.raises(LadderError):
            framepress.transcode(clip, tmp_path / "out", bad)
    assert not (tmp_path / "out").exists()


def test_bad_hwaccel_value(clip, tmp_path):
    with pytest.raises(HardwareError):
        framepress.transcode(clip, tmp_path, "default", hwaccel="quantum")
