"""The systems under test: the engine and its peers, each a command line doing the same work.

Every system reads one source and writes `<out>/<rung>.mp4` for each rung of the same plan, in
its own process tree, so wall time, CPU time and peak memory are measured the same way for all.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from framepress.bench.encoders import cli_args
from framepress.bench.plan import Plan, RungJob

SYSTEM_FFMPEG = "/usr/bin/ffmpeg"

# The engine in a fresh interpreter, like PyAV; its result (per-rung fps, stage seconds) on stdout.
ENGINE_SNIPPET = """
import json, sys
import framepress
src, out, ladder, hwaccel = sys.argv[1:5]
players = "outputs" in sys.argv[5:]  # what players and CDNs get: HLS, DASH, trick play, thumbnails
result = framepress.transcode(src, out, ladder=ladder, hls=players, dash=players, thumbnails=10 if players else 0,
                              quality="quality" in sys.argv[5:], hwaccel=hwaccel)
json.dump(result.to_dict(), sys.stdout)
"""


def system_ffmpeg() -> Optional[str]:
    return shutil.which("ffmpeg") or (SYSTEM_FFMPEG if Path(SYSTEM_FFMPEG).exists() else None)


def newest_ffmpeg() -> Optional[str]:
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def output_args(rung: RungJob, plan: Plan) -> list[str]:
    """One output's encoder settings, identical for every CLI peer."""
    args = cli_args(rung.to_dict())
    if plan.has_audio:
        args += ["-c:a", "aac", "-b:a", str(plan.audio_bitrate)]
    return args + ["-movflags", "+faststart"]


def _ffmpeg_head(ffmpeg: str, source: str) -> list[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", source]


def _audio_map(plan: Plan) -> list[str]:
    return ["-map", "0:a:0"] if plan.has_audio else []


def split_command(ffmpeg: str, source: str, plan: Plan, out: Path) -> list[str]:
    """One process: decode once, `split` to every rung, `scale` (bicubic) where the size differs."""
    n = len(plan.rungs)
    graph = [f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n))] if n > 1 else []
    labels = []
    for i, rung in enumerate(plan.rungs):
        feed = f"[s{i}]" if n > 1 else "[0:v]"
        if rung.scaled:
            graph.append(f"{feed}scale=-2:{rung.height}[v{i}]")
            labels.append(f"[v{i}]")
        elif n > 1:
            labels.append(feed)
        else:
            graph.append(f"{feed}null[v{i}]")
            labels.append(f"[v{i}]")
    cmd = _ffmpeg_head(ffmpeg, source) + ["-filter_complex", ";".join(graph)]
    for rung, label in zip(plan.rungs, labels):
        cmd += ["-map", label, *_audio_map(plan), *output_args(rung, plan), str(out / f"{rung.name}.mp4")]
    return cmd


def single_rung_command(ffmpeg: str, source: str, plan: Plan, rung: RungJob, out: Path) -> list[str]:
    scale = ["-vf", f"scale=-2:{rung.height}"] if rung.scaled else []
    return (_ffmpeg_head(ffmpeg, source) + ["-map", "0:v:0", *_audio_map(plan), *scale,
                                            *output_args(rung, plan), str(out / f"{rung.name}.mp4")])


@dataclass
class System:
    name: str                  # short key used in tables and JSON
    label: str                 # what it is, for the report
    commands: Callable[[str, Plan, Path], list[list[str]]]
    unavailable: str = ""      # why it cannot run here ("" when it can)
    is_engine: bool = False    # the system the others are compared with
    prints_result: bool = False   # writes the engine's result JSON on stdout
    adds: str = ""             # the engine doing more than the plain engine run: what it adds


def engine_system(hwaccel: str = "cpu", python: str = sys.executable, *, name: str = "engine",
                  is_engine: bool = True, outputs: bool = False, quality: bool = False) -> System:
    """The engine writing MP4s; with `outputs`, also HLS, DASH, I-frame playlists and thumbnails;
    with `quality`, measuring each rendition's PSNR and SSIM as it encodes."""
    def commands(source: str, plan: Plan, out: Path) -> list[list[str]]:
        return [[python, "-c", ENGINE_SNIPPET, source, str(out), plan.ladder.to_json(), hwaccel]
                + (["outputs"] if outputs else []) + (["quality"] if quality else [])]
    adds = ", ".join(what for what, on in (("HLS, DASH, I-frame playlists and thumbnails", outputs),
                                            ("PSNR and SSIM per rendition (x264 rungs: by x264, SSIM of luma)", quality)) if on)
    return System(name, f"framepress engine (hwaccel={hwaccel}): MP4s" + (f", {adds}" if adds else ""), commands,
                  is_engine=is_engine, prints_result=True, adds=adds)


def peer_systems(python: str = sys.executable) -> list[System]:
    peers = []
    sys_ff, new_ff = system_ffmpeg(), newest_ffmpeg()

    def cli(ffmpeg):
        return lambda source, plan, out: [split_command(ffmpeg, source, plan, out)]

    peers.append(System("ffmpeg", "system ffmpeg CLI, one process (split + scale)",
                        cli(sys_ff), unavailable="" if sys_ff else "no ffmpeg on PATH"))
    peers.append(System("ffmpeg-new", "newest ffmpeg CLI (imageio-ffmpeg), one process",
                        cli(new_ff), unavailable="" if new_ff else "imageio-ffmpeg is not installed"))
    script = str(Path(__file__).with_name("pyav_ladder.py"))
    peers.append(System("pyav", "PyAV: decode once, encode every rung (default reformat)",
                        lambda source, plan, out: [[python, script, source, str(out),
                                                    json.dumps(plan.to_dict())]]))
    peers.append(System("ffmpeg-x4", "system ffmpeg, one process per rung, concurrent",
                        lambda source, plan, out: [single_rung_command(sys_ff, source, plan, r, out)
                                                   for r in plan.rungs],
                        unavailable="" if sys_ff else "no ffmpeg on PATH"))
    return peers
