"""`framepress bench scale`: tasks per minute with 1, 2, … workers up to the core count.

Real `framepress worker` processes in embedded mode take a batch of identical tasks (a short
720p clip through the chosen ladder, with HLS, as the service does it). The ideal line is one
worker's rate times the number of workers; efficiency is measured ÷ ideal.
"""
from __future__ import annotations

import os
import shutil
import time

from framepress.bench import machine, source as sources
from framepress.bench.progress import Progress
from framepress.bench.service_run import embedded_env, run_batch
from framepress.bench.systems import newest_ffmpeg, system_ffmpeg

SCALE_CLIP = sources.SourceSpec(width=1280, height=720, fps=30, seconds=4.0)


def run_scale_bench(opts, progress: Progress = Progress()) -> dict:
    cores = os.cpu_count() or 1
    max_workers = int(opts.extra.get("max_workers") or cores)
    per_worker = 2 if opts.quick else 3
    spec = sources.QUICK if opts.quick else SCALE_CLIP
    ffmpeg = system_ffmpeg() or newest_ffmpeg()
    src = opts.source or sources.make_source(ffmpeg, spec, opts.work_dir / "sources")
    info = sources.probe_source(src)
    progress.add(max_workers)
    points = []
    for n in range(1, max_workers + 1):
        progress.step(f"scale: {n} worker(s)")
        directory = opts.work_dir / "scale" / f"workers-{n}"
        shutil.rmtree(directory, ignore_errors=True)
        batch = run_batch(embedded_env(directory), src.absolute().as_uri(), workers=n,
                          tasks=n * per_worker, ladder=opts.ladder)
        rate = batch.tasks / batch.wall_s * 60.0
        points.append({"workers": n, "tasks": batch.tasks, "failed": batch.failed,
                       "wall_s": batch.wall_s, "tasks_per_min": rate,
                       "cpu_busy_pct": batch.cpu_busy_pct})
        progress.step(f"scale: {n} worker(s)", done=True)
    base = points[0]["tasks_per_min"]
    for p in points:
        p["ideal_tasks_per_min"] = base * p["workers"]
        p["efficiency"] = p["tasks_per_min"] / p["ideal_tasks_per_min"]
    return {"mode": "scale", "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine.machine_info(), "cores": cores,
            "description": (f"Real `framepress worker` processes in embedded mode (SQLite, local "
                            f"queue, local files), {per_worker} tasks per worker, each task "
                            f"`{info.width}×{info.height}` {info.seconds:g} s through ladder "
                            f"`{opts.ladder}` with HLS, hwaccel cpu. Rate: tasks ÷ (first submit "
                            f"→ last task finished), after every worker has registered. The engine already "
                            f"runs a task's rungs in parallel on every core, so where one worker keeps "
                            f"the CPUs busy, more workers cannot add much; CPU busy is the whole "
                            f"machine's, other work included."),
            "points": points}
