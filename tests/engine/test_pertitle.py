"""Per-title ladders: bitrates chosen from trial encodes of the source, within each rung's limits."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import framepress
from framepress.errors import InputError, LadderError
from framepress.ladder import Ladder, Rung, load_ladder
from framepress.pertitle import choose_ladder
from framepress.pertitle.decision import MIN_STEP, decide
from framepress.pertitle.sampling import stretches
from framepress.pertitle.trials import Trials

from conftest import FFMPEG, ffprobe_json

# A per-title ladder small enough for 360p test sources.
SMALL = {"name": "small-auto", "per_title": True, "gop_seconds": 1, "segment_seconds": 2,
         "rungs": [{"name": "360p", "height": 360, "bitrate": 900000, "preset": "veryfast",
                    "min_bitrate": 100000, "max_bitrate": 1200000},
                   {"name": "180p", "height": 180, "bitrate": 300000, "preset": "veryfast",
                    "min_bitrate": 50000, "max_bitrate": 400000}]}


def lavfi(path, graph: str, seconds: float):
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", graph, "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "16", "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    return path


@pytest.fixture(scope="module")
def easy(media_dir):
    """Slides: a test card that changes once a second, held in between."""
    return lavfi(media_dir / "slides.mp4", "testsrc=size=640x360:rate=1,fps=30", 2)


@pytest.fixture(scope="module")
def hard(media_dir):
    return lavfi(media_dir / "grain.mp4", "testsrc2=size=640x360:rate=30,noise=alls=30:allf=t+u", 2)


def chosen(choice) -> dict[str, int]:
    return {r.name: r.bitrate for r in choice.ladder.rungs}


def test_the_same_source_gives_the_same_ladder(hard):
    # In processes of their own: right after a cancelled job in the same process, a two-thread
    # x264 encode has been seen to differ by a few bytes in a hundred thousand (cause not found).
    code = ("import json, sys; from framepress.pertitle import choose_ladder; "
            "c = choose_ladder(sys.argv[1], json.loads(sys.argv[2])); "
            "print(json.dumps([[r.name, r.bitrate] for r in c.ladder.rungs] + [[r.reason for r in c.rungs]]))")
    runs = [subprocess.run([sys.executable, "-c", code, str(hard), json.dumps(SMALL)], capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and len(json.loads(runs[0])) == 3
    first = choose_ladder(hard, SMALL)
    assert first.ladder.per_title is False and first.ladder.name == "small-auto"


def test_easy_content_gets_fewer_bits_than_hard(easy, hard):
    e, h = chosen(choose_ladder(easy, SMALL)), chosen(choose_ladder(hard, SMALL))
    assert set(e) == set(h) == {"360p", "180p"}
    assert all(e[name] < h[name] for name in e), (e, h)
    assert e["360p"] < 900000            # below the fixed bitrate: the easy content needs less


def test_limits_are_respected(easy, hard):
    tight = json.loads(json.dumps(SMALL))
    tight["rungs"][0].update(min_bitrate=500000, max_bitrate=600000)
    tight["rungs"][1].update(min_bitrate=150000, max_bitrate=160000)
    for source, word in ((easy, "raised"), (hard, "limited")):
        choice = choose_ladder(source, tight)
        for rung, limits in zip(choice.ladder.rungs, tight["rungs"]):
            assert limits["min_bitrate"] <= rung.bitrate <= limits["max_bitrate"]
        assert all(word in r.reason for r in choice.rungs), [r.reason for r in choice.rungs]


def test_a_one_second_source_is_analysed_whole(media_dir):
    src = lavfi(media_dir / "one.mp4", "testsrc2=size=640x360:rate=30", 1)
    choice = choose_ladder(src, SMALL)
    assert choice.trials["whole_source"] and choice.trials["spans"] == [(0.0, pytest.approx(1.0, abs=0.1))]
    assert set(chosen(choice)) == {"360p", "180p"}


def test_a_source_smaller_than_every_rung_gets_one_rung_at_its_size(media_dir, tmp_path):
    src = lavfi(media_dir / "tiny.mp4", "testsrc2=size=256x144:rate=30", 1)
    result = framepress.transcode(src, tmp_path, "auto", hwaccel="cpu")
    [r] = result.renditions
    assert (r.name, r.width, r.height) == ("144p", 256, 144)
    kept = [c for c in result.per_title["rungs"] if c["kept"]]
    assert [c["name"] for c in kept] == ["144p"]
    assert 0 < kept[0]["bitrate"] == kept[0]["needed"] <= 800000   # CRF's bits, within the lowest rung's maximum
    assert all("above the source" in c["reason"] for c in result.per_title["rungs"] if not c["kept"])


@pytest.fixture(scope="module")
def still(media_dir):
    """One test card held for 2 s."""
    src = media_dir / "still.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=1",
                    "-frames:v", "1", str(media_dir / "still.png")], check=True)
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-loop", "1", "-i", str(media_dir / "still.png"),
                    "-t", "2", "-r", "30", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(src)], check=True)
    return src


def test_a_still_image_video_is_raised_to_the_minimum(still, tmp_path):
    floors = json.loads(json.dumps(SMALL))
    floors["rungs"][0]["min_bitrate"], floors["rungs"][1]["min_bitrate"] = 200000, 120000
    result = framepress.transcode(still, tmp_path, floors, hwaccel="cpu")
    assert [c["bitrate"] for c in result.per_title["rungs"]] == [200000, 120000]
    assert all(c["needed"] < c["min_bitrate"] for c in result.per_title["rungs"])
    assert all("raised to the rung's minimum" in c["reason"] for c in result.per_title["rungs"])
    frames = {r.name: r.frames for r in result.renditions}
    assert frames == {"360p": 60, "180p": 60}
    assert result.seconds["analysis"] > 0


def test_a_still_image_video_on_auto_gets_what_crf_spends(still, tmp_path):
    # `auto` has no floors: the still picture gets the bits CRF spent on it, a small part of the
    # fixed ladder's 800 kb/s, and the encode spends about that.
    result = framepress.transcode(still, tmp_path, "auto", hwaccel="cpu")
    [rung] = [c for c in result.per_title["rungs"] if c["kept"]]
    assert rung["name"] == "360p" and rung["min_bitrate"] == 0
    assert 0 < rung["bitrate"] == rung["needed"] < 0.25 * 800000, rung
    assert "capped there" in rung["reason"]
    [r] = result.renditions
    assert r.frames == 60
    stream = ffprobe_json(r.path, "-select_streams", "v:0", "-show_entries", "stream=bit_rate")["streams"][0]
    assert int(stream["bit_rate"]) < 1.35 * rung["bitrate"], (stream, rung)


def test_transcode_encodes_the_chosen_bitrates(hard, tmp_path):
    result = framepress.transcode(hard, tmp_path, SMALL, hwaccel="cpu")
    wanted = {c["name"]: c["bitrate"] for c in result.per_title["rungs"] if c["kept"]}
    for r in result.renditions:
        stream = ffprobe_json(r.path, "-select_streams", "v:0", "-show_entries", "stream=bit_rate")["streams"][0]
        assert abs(int(stream["bit_rate"]) - wanted[r.name]) < 0.35 * wanted[r.name], (r.name, stream, wanted)


def test_a_source_without_video_cannot_be_analysed(media_dir):
    src = media_dir / "tone.m4a"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:a", "aac", str(src)], check=True)
    with pytest.raises(InputError, match="no video stream"):
        choose_ladder(src, SMALL)


def test_transcode_cli_with_ladder_auto(easy, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "framepress", "transcode", str(easy), "-o", str(tmp_path),
                           "--ladder", "auto", "--hwaccel", "cpu", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [r["name"] for r in result["renditions"]] == ["360p"]
    [rung] = [c for c in result["per_title"]["rungs"] if c["kept"]]
    assert rung["name"] == "360p" and 0 < rung["bitrate"] == rung["needed"] < 800000
    assert result["per_title"]["template"] == "auto" and "CRF 23" in rung["reason"]


# ---- the decision alone, on given trial figures ----------------------------------------------

def trials(bitrates: dict[int, float]) -> Trials:
    return Trials(crf=23, preset="veryfast", bitrates=bitrates, spans=[(0.0, 1.0)], whole_source=False)


def test_sampling_is_bounded_and_spread():
    assert stretches(3.0, 2.0) == [(0.0, 3.0)]
    assert stretches(0.0, 2.0) == [(0.0, 0.0)]
    assert stretches(10.0, 2.0) == [(4.0, 6.0)]
    assert stretches(60.0, 2.0) == [(14.0, 16.0), (44.0, 46.0)]
    long = stretches(3600.0, 2.0)
    assert len(long) == 6 and long[0] == (299.0, 301.0) and long[-1][1] < 3600


@pytest.fixture(scope="module")
def long_source(media_dir):
    return lavfi(media_dir / "long.mp4", "testsrc2=size=320x180:rate=15", 12)


def test_a_longer_source_is_sampled(long_source):
    choice = choose_ladder(long_source, SMALL)
    assert choice.trials["whole_source"] is False and choice.trials["spans"] == [(5.5, 6.5)]
    [span] = choice.trials["per_span"]
    assert span["bitrates"]["180"] > 0


def test_a_rung_too_close_to_the_one_above_is_dropped():
    # bits ~ height^1 (the 360p trial's 800 kb/s): 2400, 1600, 1067, 800 kb/s; a floor of 1400 kb/s
    # on 480p brings it within MIN_STEP of 720p, so 480p goes and the lowest rung stays.
    rungs = tuple(r if r.name != "480p" else Rung("480p", 480, bitrate=1500000, min_bitrate=1400000,
                                                   max_bitrate=1950000) for r in load_ladder("auto").rungs)
    choice = decide(Ladder("floor", rungs, per_title=True), trials({360: 800000, 180: 400000}), 1080)
    assert chosen(choice) == {"1080p": 2400000, "720p": 1600000, "360p": 800000}
    dropped = next(r for r in choice.rungs if r.name == "480p")
    assert not dropped.kept and "dropped: 720p costs only 1.14×" in dropped.reason
    assert 1600000 < dropped.bitrate * MIN_STEP


def test_auto_gives_a_still_picture_only_what_crf_needs():
    # The bench's slides at 1080p: CRF 23 spent 116 kb/s at 1080p and 51 kb/s at 360p. Every rung
    # gets its need on the power law through them (k = 0.75), far under the fixed ladder; 480p is
    # within MIN_STEP of 360p, the lowest, and goes.
    choice = decide(load_ladder("auto"), trials({1080: 116000, 360: 51000}), 1080)
    assert chosen(choice) == {"1080p": 116000, "720p": 86000, "360p": 51000}
    assert all(r.bitrate == r.needed and "capped there" in r.reason for r in choice.rungs)
    assert all(r.min_bitrate == 0 for r in choice.rungs)
    assert not next(r for r in choice.rungs if r.name == "480p").kept


def test_a_fixed_ladder_switched_to_per_title_never_spends_more():
    fixed = load_ladder("default")
    ladder = Ladder("mine", fixed.rungs, per_title=True)
    choice = decide(ladder, trials({360: 5e6, 180: 1.25e6}), 1080)   # very hard content
    assert chosen(choice) == {r.name: r.bitrate for r in fixed.rungs}
    assert all("limited" in r.reason for r in choice.rungs)


def test_constant_quality_rungs_are_left_alone():
    ladder = Ladder("mixed", (Rung("hi", 360, bitrate=800000), Rung("cq", 180, crf=28)), per_title=True)
    choice = decide(ladder, trials({360: 100000, 180: 40000}), 360)
    assert choice.ladder.rungs[1] == Rung("cq", 180, crf=28)
    assert "constant quality" in choice.rungs[1].reason


@pytest.mark.parametrize("rung, match", [
    ({"min_bitrate": 500, "max_bitrate": 400}, "is above max_bitrate"),
    ({"min_bitrate": -1}, "cannot be negative"),
])
def test_bad_limits_are_refused(rung, match):
    with pytest.raises(LadderError, match=match):
        load_ladder({"per_title": True, "rungs": [{"name": "a", "height": 240, "bitrate": 1000, **rung}]})


def test_per_title_survives_the_json_round_trip():
    auto = load_ladder("auto")
    assert auto.per_title and load_ladder(auto.to_json()) == auto
    assert "per_title" not in load_ladder("default").to_dict()
