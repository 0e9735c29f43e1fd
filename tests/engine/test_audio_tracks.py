"""Every audio stream of a source kept by default, each in CMAF segments of its own for HLS and DASH
and all of them in the MP4s, with languages and the default track; the ladder's audio policy keeps
fewer. Each track's content is checked by its tone (440 Hz English, 660 Hz French)."""
from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import framepress
from conftest import FFMPEG, ffprobe_json
from framepress.errors import LadderError
from framepress.languages import bcp47
from support.audio_tracks import DASH_NS, TONES, audio_streams, dash_audio_sets, tone, two_language_args

BCP47 = {"eng": "en", "fra": "fr"}  # what manifests say
RUNGS = [{"name": "144p", "height": 144, "bitrate": 150_000, "preset": "ultrafast"}]


def ladder(tracks="all") -> dict:
    return {"name": "t", "gop_seconds": 1, "segment_seconds": 2, "rungs": RUNGS, "audio": {"tracks": tracks}}


@pytest.fixture(scope="module")
def two_languages(media_dir) -> Path:
    src = media_dir / "two_languages_tracks.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=30:duration=4",
                    *two_language_args(4), "-c:v", "libx264", "-preset", "ultrafast", str(src)], check=True)
    return src


@pytest.fixture(scope="module")
def result(two_languages, tmp_path_factory):
    return framepress.transcode(two_languages, tmp_path_factory.mktemp("tracks"), ladder(), dash=True)


def joined_rendition(playlist: Path, out: Path) -> Path:
    text = playlist.read_text()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
    parts = [init] + [l for l in text.splitlines() if l and not l.startswith("#")]
    out.write_bytes(b"".join((playlist.parent / p).read_bytes() for p in parts))
    return out


def test_mp4s_carry_every_track_with_its_language(result):
    for r in result.renditions:
        streams = ffprobe_json(r.path, "-select_streams", "a", "-show_streams")["streams"]
        assert [s["tags"]["language"] for s in streams] == ["eng", "fra"]
        assert [tone(Path(r.path), i) for i in range(2)] == pytest.approx([440, 660], abs=2)
    assert result.audio.warnings == []


def test_each_track_has_its_own_hls_rendition_in_one_audio_group(result, tmp_path):
    tracks = result.audio_renditions
    assert [(a.name, a.language) for a in tracks] == [("audio_0", "eng"), ("audio_1", "fra")]
    assert [a.default for a in tracks].count(True) == 1
    assert next(a for a in tracks if a.default).index == result.audio.index
    master = Path(result.hls_master).read_text()
    media = re.findall(r"#EXT-X-MEDIA:(.*)", master)
    assert len(media) == 2
    for line, a in zip(media, tracks):
        assert 'TYPE=AUDIO,GROUP-ID="audio"' in line and f'LANGUAGE="{BCP47[a.language]}"' in line
        assert f'NAME="{a.language}"' in line and f'URI="audio_{tracks.index(a)}.m3u8"' in line
        assert f'DEFAULT={"YES" if a.default else "NO"}' in line
        joined = joined_rendition(Path(a.playlist), tmp_path / f"{a.name}.mp4")
        streams = ffprobe_json(joined, "-show_streams")["streams"]
        assert [s["codec_type"] for s in streams] == ["audio"]
        assert streams[0]["tags"]["language"] == a.language
        assert tone(joined) == pytest.approx(TONES[a.language], abs=2)
    for variant in re.findall(r"#EXT-X-STREAM-INF:(.*)", master):
        assert 'AUDIO="audio"' in variant
    # The video segments carry no audio.
    video = joined_rendition(Path(result.renditions[0].playlist), tmp_path / "video.mp4")
    assert [s["codec_type"] for s in ffprobe_json(video, "-show_streams")["streams"]] == ["video"]


def test_dash_has_an_adaptation_set_per_language(result):
    root = ET.parse(result.dash_manifest).getroot()
    sets = [a for a in root.iterfind("d:Period/d:AdaptationSet", DASH_NS) if a.get("contentType") == "audio"]
    assert [a.get("lang") for a in sets] == ["en", "fr"]
    roles = [a.find("d:Role", DASH_NS).get("value") for a in sets]
    assert sorted(roles) == ["alternate", "main"]
    default = next(a for a in result.audio_renditions if a.default)
    assert roles[[a.get("lang") for a in sets].index(BCP47[default.language])] == "main"
    for aset, a in zip(sets, result.audio_renditions):
        assert aset.find("d:Representation", DASH_NS).get("id") == a.name


def test_policy_first_keeps_the_best_stream_only(two_languages, tmp_path):
    result = framepress.transcode(two_languages, tmp_path, ladder("first"), hls=True)
    assert len(result.audio_renditions) == 1 and result.audio_renditions[0].default
    assert result.audio.warnings == [f"the source has 2 audio streams; only stream {result.audio.index} is kept"]
    streams = ffprobe_json(result.renditions[0].path, "-select_streams", "a", "-show_streams")["streams"]
    assert len(streams) == 1 and streams[0]["tags"]["language"] == result.audio.language


def test_policy_by_language(two_languages, tmp_path):
    result = framepress.transcode(two_languages, tmp_path / "fra", ladder(["fra"]), hls=True)
    [track] = result.audio_renditions
    assert (track.language, track.default, result.audio.language) == ("fra", True, "fra")
    assert tone(Path(result.renditions[0].path)) == pytest.approx(660, abs=2)
    assert result.audio.warnings == [f"the source has 2 audio streams; only stream {track.index} is kept"]
    missing = framepress.transcode(two_languages, tmp_path / "deu", ladder(["deu"]))
    assert missing.audio.warnings == [f"no audio stream is in deu; stream {missing.audio.index} is kept"]


@pytest.mark.parametrize("tracks,message", [("some", "must be all, first or a list of languages"),
                                            ([], "must be language tags"), (["e1"], "must be language tags")])
def test_bad_policies_are_refused_before_any_work(tmp_path, tracks, message):
    with pytest.raises(LadderError, match=message):
        framepress.transcode(tmp_path / "never-read.mp4", tmp_path, ladder(tracks))


def test_manifest_languages_are_bcp47():
    assert [bcp47(t) for t in ("eng", "fre", "fra", "ger", "yue", "", "und")] == ["en", "fr", "fr", "de", "yue", "", "und"]


@pytest.mark.parametrize("tracks", ["all", "first", ["fra"]])
def test_parts_stitched_keep_the_tracks_a_whole_transcode_keeps(two_languages, tmp_path, tracks):
    """A source made in parts (a split task's chunks) has its audio encoded once, apart: the same
    tracks, languages and default track as the whole source's outputs, in the MP4s, HLS and DASH."""
    from framepress.parts import write_audio
    from framepress.service.split.stitching import assemble
    whole = framepress.transcode(two_languages, tmp_path / "whole", ladder(tracks), dash=True)
    parts = [framepress.transcode(two_languages, tmp_path / f"p{i}", ladder(tracks), hls=True, start=a, end=b)
             for i, (a, b) in enumerate([(0, 2), (2, None)])]
    audio = write_audio(two_languages, tmp_path / "audio", segment_seconds=2, tracks=tracks)
    assert audio.audio == whole.audio

    def described(renditions):
        return [(a.name, a.index, a.language, a.default, a.sample_rate, a.channels) for a in renditions]
    assert described(audio.audio_renditions) == described(whole.audio_renditions)
    rungs = {r.name: (r.width, r.height, r.codec, r.codec_string) for r in parts[0].renditions}
    stitched = assemble([tmp_path / "p0", tmp_path / "p1"], tmp_path / "audio", tmp_path / "out", rungs,
                        audio.audio_renditions)
    mp4 = Path(stitched.renditions[0].path)
    assert audio_streams(mp4) == audio_streams(whole.renditions[0].path)
    assert [tone(mp4, i) for i in range(len(audio.audio_renditions))] == pytest.approx(
        [TONES[a.language] for a in audio.audio_renditions], abs=2)
    media = [re.findall(r"#EXT-X-MEDIA:.*", Path(m).read_text()) for m in (stitched.hls_master, whole.hls_master)]
    assert media[0] == media[1] and len(media[0]) == len(audio.audio_renditions)
    assert dash_audio_sets(stitched.dash_manifest) == dash_audio_sets(whole.dash_manifest)
    for a in stitched.audio:
        joined = joined_rendition(Path(a.playlist), tmp_path / f"{a.name}.mp4")
        assert tone(joined) == pytest.approx(TONES[a.language], abs=2)
