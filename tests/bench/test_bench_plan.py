"""The peers' rung plan mirrors the engine's rules, and their commands carry the same settings."""
from __future__ import annotations

from pathlib import Path

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
    for flag in ("-b:v 5000000 -maxrate 5000000 -bufsize 10000000", "-g 60 -keyint_min 60 -sc_threshold 0",
                 "-c:a aac -b:a 128000", "-preset veryfast"):
        assert flag in cmd
    single = " ".join(single_rung_command("ffmpeg", "s.mp4", plan, plan.rungs[3], Path("out")))
    assert "-vf scale=-2:360" in single and "-b:v 800000 -maxrate 800000 -bufsize 1600000" in single
