"""The fMP4 reader and the manifest writers refuse files that are not what the engine writes."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import framepress
from conftest import make_clip
from framepress.dash import AudioStream, VideoStream, write_dash_manifest
from framepress.fmp4 import Fmp4Error, read_fragments, read_init, segment_info
from framepress.iframes import write_iframe_playlist
from framepress.media_playlist import read_media_playlist

LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 1, "rungs": [
    {"name": "144p", "height": 144, "bitrate": 150_000, "preset": "ultrafast"}]}


@pytest.fixture(scope="module")
def hls(media_dir, tmp_path_factory) -> Path:
    src = make_clip(media_dir / "manifest_errors.mp4", seconds=2, size="256x144")
    out = tmp_path_factory.mktemp("manifest_errors")
    return Path(framepress.transcode(src, out, LADDER, hls=True).hls_master).parent


@pytest.fixture
def copy(hls, tmp_path) -> Path:
    return Path(shutil.copytree(hls, tmp_path / "hls"))


def video(copy: Path) -> VideoStream:
    return VideoStream(id="144p", playlist=copy / "144p.m3u8", codecs="avc1.42c00c", width=256, height=144)


def test_a_truncated_segment_is_refused(copy):
    seg = copy / "144p_00000.m4s"
    seg.write_bytes(seg.read_bytes()[:-10])
    with pytest.raises(Fmp4Error, match="runs past its container"):
        list(read_fragments(seg, read_init(copy / "144p_init.mp4")))


def test_a_media_segment_is_no_init_segment(hls):
    with pytest.raises(Fmp4Error, match="has no moov box"):
        read_init(hls / "144p_00000.m4s")


def test_fragments_of_tracks_the_init_segment_lacks_are_refused(hls):
    audio_tracks = {99: next(iter(read_init(hls / "audio_0_init.mp4").values()))}
    with pytest.raises(Fmp4Error, match="which the init segment does not declare"):
        list(read_fragments(hls / "144p_00000.m4s", audio_tracks))


def test_a_segment_without_the_track_asked_for_is_refused(hls):
    tracks = read_init(hls / "144p_init.mp4")
    tracks[7] = next(iter(tracks.values()))
    with pytest.raises(Fmp4Error, match="has no samples of track 7"):
        segment_info(hls / "144p_00000.m4s", tracks, 7)


def test_a_master_playlist_is_no_media_playlist(hls):
    with pytest.raises(ValueError, match="is not an HLS playlist of fMP4 segments"):
        read_media_playlist(hls / "master.m3u8")


def test_trick_play_needs_a_video_track(copy):
    with pytest.raises(ValueError, match="audio_0_init.mp4 has no video track"):
        write_iframe_playlist(copy / "audio_0.m3u8")


def test_dash_refuses_audio_given_as_video_and_a_manifest_without_video(copy, tmp_path):
    as_video = VideoStream(id="a", playlist=copy / "audio_0.m3u8", codecs="mp4a.40.2", width=2, height=2)
    with pytest.raises(ValueError, match="has no video track"):
        write_dash_manifest(tmp_path / "dash", copy, [as_video], [], 30.0)
    audio = AudioStream(id="audio_0", playlist=copy / "audio_0.m3u8", codecs="mp4a.40.2", sample_rate=44100, channels=1)
    with pytest.raises(ValueError, match="at least one video stream"):
        write_dash_manifest(tmp_path / "dash", copy, [], [audio], 30.0)
    assert not (tmp_path / "dash").exists()


def test_dash_needs_numbered_segments(copy, tmp_path):
    (copy / "144p_00001.m4s").rename(copy / "144p_extra.m4s")
    playlist = copy / "144p.m3u8"
    playlist.write_text(playlist.read_text().replace("144p_00001.m4s", "144p_extra.m4s"))
    with pytest.raises(ValueError, match="144p_extra.m4s breaks the numbering"):
        write_dash_manifest(tmp_path / "dash", copy, [video(copy)], [], 30.0)
