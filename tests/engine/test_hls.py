"""HLS output: master and media playlists parse, and every segment starts on a keyframe."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import framepress
from conftest import make_clip, video_frames

LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "360p", "height": 360, "bitrate": 600_000, "preset": "ultrafast"},
    {"name": "180p", "height": 180, "bitrate": 200_000, "preset": "ultrafast"}]}


@pytest.fixture(scope="module")
def result(media_dir, tmp_path_factory):
    src = make_clip(media_dir / "hls_src.mp4", seconds=5)
    return framepress.transcode(src, tmp_path_factory.mktemp("hls"), LADDER, hls=True)


def parse_master(path: Path) -> list[tuple[dict, str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "#EXTM3U"
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            variants.append((attrs, lines[i + 1]))
    return variants


def test_master_lists_every_variant_with_required_attributes(result):
    variants = parse_master(Path(result.hls_master))
    assert [uri for _, uri in variants] == ["360p.m3u8", "180p.m3u8"]
    for attrs, _ in variants:
        assert int(attrs["BANDWIDTH"]) >= int(attrs["AVERAGE-BANDWIDTH"]) > 0
        assert re.fullmatch(r"\d+x\d+", attrs["RESOLUTION"])
        assert attrs["CODECS"].startswith('"avc1.') and "mp4a.40.2" in attrs["CODECS"]
        assert float(attrs["FRAME-RATE"]) == pytest.approx(30.0)


def test_media_playlists_and_segments_start_on_keyframes(result):
    hls = Path(result.hls_master).parent
    for r in result.renditions:
        text = Path(r.playlist).read_text()
        assert "#EXT-X-ENDLIST" in text and "#EXT-X-PLAYLIST-TYPE:VOD" in text
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
        segments = [l for l in text.splitlines() if l and not l.startswith("#")]
        durations = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+)", text)]
        assert len(segments) >= 2 and sum(durations) == pytest.approx(5.0, abs=0.1)
        total = 0
        for seg in segments:
            joined = hls / f"check_{seg}.mp4"
            joined.write_bytes((hls / init).read_bytes() + (hls / seg).read_bytes())
            frames = video_frames(joined)
            joined.unlink()
            assert frames and int(frames[0]["key_frame"]) == 1, seg
            total += len(frames)
        assert total == r.frames == 150
