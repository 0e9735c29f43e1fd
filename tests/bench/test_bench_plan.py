"""The peers' rung plan mirrors the engine's rules, and their commands carry the same settings."""
from __future__ import annotations

from pathlib import Path

from framepress.bench.encoders import cli_args
from framepress.bench.plan import make_plan
from framepress.bench.source import SourceInfo
from framepress.bench.systems import single_rung_command, split_command
from framepress.ladder import load_ladder


def info(w: int, h: int, fps: float = 30.0, audio: bool = True) -> SourceInfo:
    return SourceInfo(path="s.mp4", width=w, height=h, fps=fps, frames=300, seconds=10.0,
                      codec="h264", pix_fmt="yuv420p", has_audio=audio, bitrate=0)


def test_rungs_above_the_source_are_skipped_and_widths_even():
    plan = make_plan(load_ladder("default"), info(1366, 769))
    assert [r.name for r in plan.rungs] == ["720p", "480p", "360p"]
    assert all(r.width % 2 == 0 and r.scaled for r in plan.rungs)
    assert plan.rungs[0].width == 1278


def test_source_rung_is_not_scaled_and_gop_is_two_seconds():
    plan = make_plan(load_ladder("default"), info(1920, 1080, fps=25))
    top = plan.rungs[0]
    assert (top.name, top.scaled, top.gop) == ("1080p", False, 50)
    assert (top.maxrate, top.bufsize) == (top.bitrate, 2 * top.bitrate)


def test_a_small_source_gets_one_rung_at_its_own_size():
    plan = make_plan(load_ladder("default"), info(320, 240))
    assert [(r.height, r.scaled) for r in plan.rungs] == [(240, False)]


def test_cli_peers_get_the_same_encoder_settings():
    plan = make_plan(load_ladder("default"), info(1920, 1080))
    cmd = " ".join(split_command("ffmpeg", "s.mp4", plan, Path("out")))
    assert "split=4" in cmd and "scale=-2:720" in cmd and "scale=-2:1080" not in cmd
    for flag in ("-b:v 5000000 -maxrate 5000000 -bufsize 10000000", "-g 60 -keyint_min 60", "-sc_threshold 0",
                 "-c:a aac -b:a 128000", "-preset veryfast"):
        assert flag in cmd
    single = " ".join(single_rung_command("ffmpeg", "s.mp4", plan, plan.rungs[3], Path("out")))
    assert "-vf scale=-2:360" in single and "-b:v 800000 -maxrate 800000 -bufsize 1600000" in single


def test_hevc_av1_and_crf_rungs_get_the_engines_settings():
    ladder = load_ladder({"name": "mixed", "rungs": [
        {"name": "a", "height": 720, "codec": "hevc", "bitrate": 2000000, "preset": "fast"},
        {"name": "b", "height": 480, "codec": "av1", "bitrate": 1000000, "preset": "veryfast"},
        {"name": "c", "height": 360, "codec": "h264", "crf": 23}]})
    a, b, c = (" ".join(cli_args(r.to_dict())) for r in make_plan(ladder, info(1280, 720)).rungs)
    assert "-c:v libx265" in a and "-maxrate 2000000 -bufsize 4000000" in a
    assert "scenecut=0:open-gop=0" in a and "keyint=60:min-keyint=60" in a and "-tag:v hvc1" in a
    assert "-c:v libsvtav1" in b and "-preset 10" in b and "-b:v 1000000" in b and "maxrate" not in b
    assert "-crf 23" in c and "-b:v" not in c and "-sc_threshold 0" in c
