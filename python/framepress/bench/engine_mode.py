"""`framepress bench engine`: the engine and its peers on one source, in alternating rounds.

Each round runs every system once, in the same order, so slow drifts of a shared machine hit all
of them alike; ratios pair the engine with each peer round by round. Quality is measured once per
system, on the last round's renditions, after the timed rounds (it would disturb them).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import av

from framepress.ladder import load_ladder
from framepress.bench import machine, quality, source as sources, stats
from framepress.bench.measurement import run_measured
from framepress.bench.plan import Plan, make_plan
from framepress.bench.progress import Progress
from framepress.bench.systems import System, engine_system, newest_ffmpeg, peer_systems, system_ffmpeg


@dataclass
class EngineBenchOptions:
    work_dir: Path
    source: Optional[Path] = None          # None: generate DESIGN §5's clip (or the quick one)
    quick: bool = False
    seconds: Optional[float] = None        # length of a generated clip (overrides the default)
    ladder: str = "default"
    rounds: int = 3
    systems: Optional[list[str]] = None    # a subset by name; None: all
    hwaccel: str = "cpu"
    measure_quality: bool = True
    extra_systems: list[System] = field(default_factory=list)
    system_list: Optional[list[System]] = None   # replaces the default engine + peers


def _source(opts: EngineBenchOptions) -> Path:
    if opts.source:
        return Path(opts.source)
    spec = sources.QUICK if opts.quick else sources.REFERENCE
    if opts.seconds:
        spec = sources.SourceSpec(spec.width, spec.height, spec.fps, opts.seconds)
    ffmpeg = system_ffmpeg() or newest_ffmpeg()
    if not ffmpeg:
        raise RuntimeError("generating the reference clip needs an ffmpeg binary")
    return sources.make_source(ffmpeg, spec, opts.work_dir / "sources")


def _select(opts: EngineBenchOptions) -> list[System]:
    # engine-outputs and engine-quality: the plain engine doing more; their ratios to it are the
    # cost of the player outputs and of measuring quality.
    every = opts.system_list or [engine_system(opts.hwaccel),
                                 engine_system(opts.hwaccel, name="engine-outputs", is_engine=False, outputs=True),
                                 engine_system(opts.hwaccel, name="engine-quality", is_engine=False, quality=True)
                                 ] + peer_systems()
    every = every + list(opts.extra_systems)
    if opts.systems:
        unknown = set(opts.systems) - {s.name for s in every}
        if unknown:
            raise ValueError(f"unknown systems: {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(s.name for s in every)})")
        every = [s for s in every if s.name in opts.systems]
    return every


def _why(stderr: str) -> str:
    """A Python traceback's last line (the exception), or FFmpeg's last few lines."""
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    keep = lines[-1:] if "Traceback (most recent call last)" in stderr else lines[-3:]
    return " | ".join(keep)[-600:]


def _one_round(system: System, src: str, plan: Plan, out: Path, frames: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    load = os.getloadavg()[0]          # a shared machine's other work shows up in wall times
    m = run_measured(system.commands(src, plan, out))
    if not m.ok:
        raise RuntimeError(f"exit {m.returncodes}: {_why(m.stderr_tail)}")
    missing = [r.name for r in plan.rungs if not (out / f"{r.name}.mp4").is_file()]
    if missing:
        raise RuntimeError(f"no output for rungs {', '.join(missing)}")
    row = {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb,
           "fps": frames / m.wall_s, "cores_busy": m.cpu_s / m.wall_s, "load_before": load}
    # Per-rung fps: the engine reports each rung's encode rate; separate processes each have their
    # own wall time; systems that encode all rungs together give every rung the ladder's rate.
    if system.prints_result and m.stdout.strip():
        result = json.loads(m.stdout)
        row["rung_fps"] = {r["name"]: r.get("encode_fps", 0.0) for r in result["renditions"]}
        row["stage_seconds"] = result.get("seconds", {})
        row["hwaccel_used"] = result.get("hwaccel_used", "")
    elif len(m.process_wall_s) == len(plan.rungs) > 1:
        row["rung_fps"] = {r.name: frames / t for r, t in zip(plan.rungs, m.process_wall_s)}
    else:
        row["rung_fps"] = {r.name: row["fps"] for r in plan.rungs}
    return row


def _rendition_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        seconds = float(c.duration / av.time_base) if c.duration else 0.0
        return {"width": v.codec_context.width, "height": v.codec_context.height,
                "frames": v.frames, "bytes": path.stat().st_size,
                "video_kbps": (v.bit_rate or 0) / 1000.0,
                "total_kbps": path.stat().st_size * 8 / seconds / 1000.0 if seconds else 0.0,
                "has_audio": bool(c.streams.audio)}


def _quality_job(rendition: str, src: str) -> dict:
    return quality.compare(rendition, src).to_dict()


def run_engine_bench(opts: EngineBenchOptions, progress: Progress = Progress()) -> dict:
    opts.work_dir.mkdir(parents=True, exist_ok=True)
    systems = _select(opts)             # bad names fail before any work
    ladder = load_ladder(opts.ladder)
    progress.step("preparing the source")
    src_path = _source(opts)
    info = sources.probe_source(src_path)
    plan = make_plan(ladder, info)
    active = [s for s in systems if not s.unavailable]
    results: dict[str, dict] = {
        s.name: {"label": s.label, "is_engine": s.is_engine, "adds": s.adds, "rounds": [], "error": s.unavailable,
                 "skipped": bool(s.unavailable)} for s in systems}
    progress.add(opts.rounds * len(active) + (len(active) * len(plan.rungs) if opts.measure_quality else 0))

    started = time.time()
    for rnd in range(opts.rounds):
        for s in list(active):
            progress.step(f"round {rnd + 1}/{opts.rounds}: {s.name}")
            try:
                row = _one_round(s, str(src_path), plan, opts.work_dir / "outputs" / s.name, info.frames)
                results[s.name]["rounds"].append(row)
            except (RuntimeError, ValueError, OSError, TimeoutError) as exc:
                results[s.name]["error"] = f"round {rnd + 1}: {exc}"
                active.remove(s)
            progress.step(f"round {rnd + 1}/{opts.rounds}: {s.name}", done=True)

    if opts.measure_quality and active:
        _measure_quality(active, plan, src_path, opts.work_dir, results, progress)

    versions = {"system_ffmpeg": machine.ffmpeg_version(system_ffmpeg()),
                "newest_ffmpeg": machine.ffmpeg_version(newest_ffmpeg()),
                "pyav": machine.pyav_version(), "engine_ffmpeg": machine.engine_ffmpeg()}
    for s in active:
        first = opts.work_dir / "outputs" / s.name / f"{plan.rungs[0].name}.mp4"
        results[s.name]["encoder"] = machine.encoder_version(first)
    for r in results.values():
        r["summary"] = stats.summarise_rounds(r["rounds"]) if r["rounds"] else {}
    engine = next((r for r in results.values() if r["is_engine"] and r["rounds"]), None)
    ratios, costs = {}, {}
    if engine:
        for name, r in results.items():
            if r["adds"] and r["rounds"]:      # what the extra work costs: variant ÷ engine
                costs[name] = stats.paired_ratios(r["rounds"], engine["rounds"])
            elif not r["is_engine"] and r["rounds"]:
                ratios[name] = stats.paired_ratios(engine["rounds"], r["rounds"])
    return {
        "mode": "engine",
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "elapsed_s": time.time() - started,
        "machine": machine.machine_info(),
        "versions": versions,
        "source": {**info.to_dict(), "path": os.path.basename(info.path),
                   "generated": opts.source is None},
        "settings": {"ladder": ladder.name, "rounds": opts.rounds, "hwaccel": opts.hwaccel,
                     "order": [s.name for s in systems if not s.unavailable],
                     "plan": plan.to_dict(), "gop_seconds": ladder.gop_seconds},
        "systems": results,
        "ratios": ratios,
        "costs": costs,
    }


def _measure_quality(active: list[System], plan: Plan, src_path: Path, work: Path,
                     results: dict, progress: Progress) -> None:
    jobs = {}
    with ProcessPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        for s in active:
            if not results[s.name]["rounds"]:
                continue
            for r in plan.rungs:
                path = work / "outputs" / s.name / f"{r.name}.mp4"
                jobs[(s.name, r.name)] = pool.submit(_quality_job, str(path), str(src_path))
        for s in active:
            rungs = []
            for r in plan.rungs:
                if (s.name, r.name) not in jobs:
                    continue
                progress.step(f"quality: {s.name} {r.name}")
                path = work / "outputs" / s.name / f"{r.name}.mp4"
                rung_fps = [row["rung_fps"].get(r.name, 0.0) for row in results[s.name]["rounds"]]
                rungs.append({"name": r.name, **_rendition_facts(path),
                              **jobs[(s.name, r.name)].result(),
                              "fps": stats.summary(rung_fps).get("median", 0.0)})
                progress.step(f"quality: {s.name} {r.name}", done=True)
            results[s.name]["rungs"] = rungs
