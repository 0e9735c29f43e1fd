"""DASH manifest over the HLS segments, and I-frame playlists: checked against the files with ffprobe."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import framepress
from conftest import ffprobe_json, make_clip, video_frames

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
LADDER = {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": [
    {"name": "240p", "height": 240, "bitrate": 400_000, "preset": "ultrafast"},
    {"name": "144p", "height": 144, "bitrate": 150_000, "preset": "ultrafast"}]}
SECONDS = 5


@pytest.fixture(scope="module")
def result(media_dir, tmp_path_factory):
    src = make_clip(media_dir / "dash_src.mp4", seconds=SECONDS, size="426x240")
    return framepress.transcode(src, tmp_path_factory.mktemp("dash"), LADDER, dash=True)


def packets(path: Path, kind: str = "v") -> list[dict]:
    return ffprobe_json(path, "-select_streams", f"{kind}:0", "-show_entries",
                        "packet=pts_time,dts_time,flags")["packets"]


def joined(tmp_path: Path, init: Path, data: bytes) -> Path:
    out = tmp_path / f"joined_{len(data)}.mp4"
    out.write_bytes(init.read_bytes() + data)
    return out


def representations(result):
    root = ET.parse(result.dash_manifest).getroot()
    base = Path(result.dash_manifest).parent / root.find("d:BaseURL", NS).text
    for aset in root.iterfind("d:Period/d:AdaptationSet", NS):
        for rep in aset.iterfind("d:Representation", NS):
            yield root, aset, rep, base


def expand(rep) -> tuple[str, list[tuple[str, int, int]], int]:
    """(init name, [(segment name, t, d)], timescale) from the SegmentTemplate and its timeline."""
    tmpl = rep.find("d:SegmentTemplate", NS)
    number = int(tmpl.get("startNumber"))
    width = int(re.search(r"\$Number%0(\d+)d\$", tmpl.get("media")).group(1))
    segments, t = [], None
    for s in tmpl.iterfind("d:SegmentTimeline/d:S", NS):
        t = int(s.get("t", t if t is not None else 0))
        for _ in range(int(s.get("r", "0")) + 1):
            name = re.sub(r"\$Number%0\d+d\$", f"{number:0{width}d}", tmpl.get("media"))
            segments.append((name, t, int(s.get("d"))))
            t += int(s.get("d"))
            number += 1
    return tmpl.get("initialization"), segments, int(tmpl.get("timescale"))


def test_mpd_references_the_hls_segments_and_nothing_else(result):
    root = ET.parse(result.dash_manifest).getroot()
    assert root.get("type") == "static"
    assert float(root.get("mediaPresentationDuration")[2:-1]) == pytest.approx(SECONDS, abs=0.05)
    assert root.find("d:BaseURL", NS).text == "../hls/"
    dash_dir = Path(result.dash_manifest).parent
    assert sorted(p.name for p in dash_dir.iterdir()) == ["manifest.mpd"]
    hls_files = {p.name for p in (dash_dir.parent / "hls").iterdir()}
    listed = set()
    for _, _, rep, _ in representations(result):
        init, segments, _ = expand(rep)
        listed |= {init} | {name for name, _, _ in segments}
    assert listed == {f for f in hls_files if f.endswith((".mp4", ".m4s"))}


def test_timeline_matches_the_segments_sample_by_sample(result, tmp_path):
    renditions = {r.name: r for r in result.renditions}
    kinds = []
    for _, aset, rep, base in representations(result):
        kind = aset.get("contentType")
        kinds.append(kind)
        init, segments, timescale = expand(rep)
        frames, peak, end = 0, 0.0, 0
        for name, t, d in segments:
            assert t == end, name  # the timeline has no gap or overlap
            end = t + d
            seg = base / name
            pk = packets(joined(tmp_path, base / init, seg.read_bytes()), kind[0])
            assert pk[0]["flags"].startswith("K"), name
            dts = [float(p["dts_time"]) for p in pk]
            # The segment is shown from t (its keyframe's time) and lasts d.
            assert float(pk[0]["pts_time"]) == pytest.approx(t / timescale, abs=1e-4), name
            assert dts[-1] + (dts[-1] - dts[-2]) - dts[0] == pytest.approx(d / timescale, abs=1e-4), name
            frames += len(pk)
            peak = max(peak, seg.stat().st_size * 8 * timescale / d)
        assert sum(d for _, _, d in segments) / timescale == pytest.approx(SECONDS, abs=0.05)
        assert peak <= int(rep.get("bandwidth")) <= peak + 1
        if kind == "video":
            r = renditions[rep.get("id")]
            assert (int(rep.get("width")), int(rep.get("height"))) == (r.width, r.height)
            assert frames == r.frames == SECONDS * 30
        else:
            rate = int(rep.get("audioSamplingRate"))
            assert frames == pytest.approx(SECONDS * rate / 1024, abs=2)  # AAC frames of 1024 samples
    assert kinds == ["video", "video", "audio"]


def test_codecs_and_frame_rate_match_the_streams(result, tmp_path):
    master = Path(result.hls_master).read_text()
    for _, aset, rep, base in representations(result):
        init, segments, _ = expand(rep)
        first = joined(tmp_path, base / init, (base / segments[0][0]).read_bytes())
        stream = ffprobe_json(first, "-show_streams")["streams"][0]
        if aset.get("contentType") == "audio":
            assert stream["codec_name"] == "aac" and stream["profile"] == "LC"
            assert rep.get("codecs") == "mp4a.40.2" and rep.get("audioSamplingRate") == str(stream["sample_rate"])
            channels = rep.find("d:AudioChannelConfiguration", NS).get("value")
            assert channels == str(stream["channels"])
            continue
        assert stream["codec_name"] == "h264"
        profile = {"High": 0x64, "Main": 0x4D, "Constrained Baseline": 0x42, "Baseline": 0x42}[stream["profile"]]
        assert rep.get("codecs").split(",")[0].lower().startswith(f"avc1.{profile:02x}")
        assert f'CODECS="{rep.get("codecs")},mp4a.40.2"' in master
        assert aset.get("frameRate") == "30"


def iframe_entries(playlist: Path) -> tuple[str, list[tuple[float, int, int, str]]]:
    lines = playlist.read_text().splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-I-FRAMES-ONLY" in lines and lines[-1] == "#EXT-X-ENDLIST"
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.read_text()).group(1)
    entries = []
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            length, offset = map(int, re.fullmatch(r"#EXT-X-BYTERANGE:(\d+)@(\d+)", lines[i + 1]).groups())
            entries.append((float(line[8:].rstrip(",")), length, offset, lines[i + 2]))
    return init, entries


def test_iframe_playlists_address_one_decodable_keyframe_per_segment(result, tmp_path):
    hls = Path(result.hls_master).parent
    master = Path(result.hls_master).read_text()
    listed = re.findall(r'#EXT-X-I-FRAME-STREAM-INF:.*URI="([^"]+)"', master)
    assert sorted(listed) == sorted(f"{r.name}_iframes.m3u8" for r in result.renditions)
    for r in result.renditions:
        attrs = re.search(rf'#EXT-X-I-FRAME-STREAM-INF:(.*URI="{r.name}_iframes.m3u8")', master).group(1)
        assert f"RESOLUTION={r.width}x{r.height}" in attrs and f'CODECS="{r.codec_string}"' in attrs
        init, entries = iframe_entries(hls / f"{r.name}_iframes.m3u8")
        media = Path(r.playlist).read_text()
        assert [e[3] for e in entries] == [l for l in media.splitlines() if l and not l.startswith("#")]
        assert sum(e[0] for e in entries) == pytest.approx(SECONDS, abs=0.05)
        peak = 0.0
        for duration, length, offset, uri in entries:
            data = (hls / uri).read_bytes()
            assert offset == 0 and length < len(data)
            frames = video_frames(joined(tmp_path, hls / init, data[offset:offset + length]))
            whole = video_frames(joined(tmp_path, hls / init, data))
            assert len(frames) == 1 and int(frames[0]["key_frame"]) == 1
            assert frames[0]["pts_time"] == whole[0]["pts_time"]
            peak = max(peak, length * 8 / duration)
        assert int(re.search(r"(?<!-)BANDWIDTH=(\d+)", attrs).group(1)) == pytest.approx(peak, rel=0.01)


def test_b_frames_delay_no_representation(media_dir, tmp_path):
    """x264 with B-frames puts the first picture after the fragment's decode start; the offset
    brings it to the period's start, where the audio starts too."""
    src = make_clip(media_dir / "dash_bframes.mp4", seconds=3, size="256x144")
    ladder = {**LADDER, "rungs": [{"name": "144p", "height": 144, "bitrate": 150_000, "preset": "veryfast"}]}
    result = framepress.transcode(src, tmp_path, ladder, dash=True)
    offsets = {}
    for _, aset, rep, base in representations(result):
        tmpl = rep.find("d:SegmentTemplate", NS)
        first = tmpl.find("d:SegmentTimeline/d:S", NS)
        assert first.get("t") == tmpl.get("presentationTimeOffset")
        init, segments, timescale = expand(rep)
        pk = packets(joined(tmp_path, base / init, (base / segments[0][0]).read_bytes()), aset.get("contentType")[0])
        # (ffprobe applies the init segment's edit list, a few ticks; DASH players do not)
        assert min(float(p["pts_time"]) for p in pk) == pytest.approx(int(first.get("t")) / timescale, abs=1e-3)
        offsets[aset.get("contentType")] = int(first.get("t")) / timescale
    assert offsets["video"] > 0 and offsets["audio"] == 0  # the case this is about
