"""`framepress bench pipeline`: where a task's time goes in the service, from its events.

The pipeline helper's `measure_overhead` (in `framepress.bench.pipeline`, or `bench/pipeline.py`
at the repository root) runs it on real RabbitMQ, Postgres and S3 when it is present. Without it,
this module runs one real worker over a batch of tasks on the stack the environment names
(`FRAMEPRESS_*`), embedded mode by default, and splits each task's time by its event timestamps:

    queue wait  created → taken
    database    taken → details_loaded, plus uploaded → succeeded (lease, events, renditions)
    pull        details_loaded → pulled
    engine      pulled → transcoded
    upload      transcoded → uploaded
"""
from __future__ import annotations

import importlib
import importlib.util
import shutil
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

from framepress.bench import machine, source as sources
from framepress.bench.progress import Progress
from framepress.bench.service_run import embedded_env, run_batch
from framepress.bench.systems import newest_ffmpeg, system_ffmpeg

STAGES = ("queue wait", "database", "pull", "engine", "upload")
PIPELINE_CLIP = sources.SourceSpec(width=1280, height=720, fps=30, seconds=4.0)


def helper_measure_overhead() -> Optional[Callable[..., dict]]:
    """The pipeline helper's function, wherever it landed; None until it exists."""
    try:
        return importlib.import_module("framepress.bench.pipeline").measure_overhead
    except (ImportError, AttributeError):
        pass
    repo_file = Path(__file__).resolve().parents[3] / "bench" / "pipeline.py"
    if repo_file.is_file():
        spec = importlib.util.spec_from_file_location("framepress_bench_pipeline", repo_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, "measure_overhead", None)
    return None


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def split_task(status: dict) -> Optional[dict]:
    """Seconds per stage of one succeeded task (the last attempt's events)."""
    at: dict[str, float] = {}
    for e in status["events"]:
        at[e["kind"]] = _t(e["at"])          # later attempts overwrite earlier ones
    needed = ("taken", "details_loaded", "pulled", "transcoded", "uploaded", "succeeded")
    if status.get("status") != "succeeded" or not all(k in at for k in needed):
        return None
    return {"queue wait": at["taken"] - _t(status["created_at"]),
            "database": (at["details_loaded"] - at["taken"]) + (at["succeeded"] - at["uploaded"]),
            "pull": at["pulled"] - at["details_loaded"],
            "engine": at["transcoded"] - at["pulled"],
            "upload": at["uploaded"] - at["transcoded"]}


def median_split(statuses: list[dict]) -> tuple[dict, int]:
    splits = [s for s in (split_task(st) for st in statuses) if s]
    if not splits:
        return {}, 0
    return {k: statistics.median(s[k] for s in splits) for k in STAGES}, len(splits)


def _own_measurement(opts, progress: Progress) -> dict:
    tasks = 3 if opts.quick else 6
    ffmpeg = system_ffmpeg() or newest_ffmpeg()
    src = opts.source or sources.make_source(ffmpeg, sources.QUICK if opts.quick else PIPELINE_CLIP,
                                             opts.work_dir / "sources")
    directory = opts.work_dir / "pipeline"
    shutil.rmtree(directory, ignore_errors=True)
    progress.add(1)
    progress.step(f"pipeline: {tasks} tasks, one at a time, through one worker")
    batch = run_batch(embedded_env(directory), Path(src).absolute().as_uri(), workers=1,
                      tasks=tasks, ladder=opts.ladder, one_at_a_time=True)
    progress.step("pipeline", done=True)
    split, n = median_split(batch.statuses)
    info = sources.probe_source(src)
    return {"split_s": split, "tasks": n, "stack": "embedded (SQLite, local queue, local files)",
            "description": (f"One `framepress worker` in embedded mode (SQLite, the local queue, "
                            f"local files: not RabbitMQ/Postgres/S3), {batch.tasks} tasks submitted "
                            f"one after another to an idle worker, each {info.width}×{info.height} {info.seconds:g} s through "
                            f"`{opts.ladder}` with HLS; medians over {n} tasks.")}


def run_pipeline_bench(opts, progress: Progress = Progress()) -> dict:
    """Real services through the helper when it and they are there; embedded mode otherwise."""
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    helper = helper_measure_overhead()
    why_not_real = "the pipeline helper's measure_overhead is not installed"
    if helper is not None:
        progress.add(1)
        progress.step("pipeline: tasks on RabbitMQ, Postgres and S3")
        try:
            runs = {"small_runs": 3, "reference_runs": 0} if opts.quick else {}
            result = dict(helper(ladder=opts.ladder, **runs))
            progress.step("pipeline", done=True)
            return {"mode": "pipeline", "finished_at": started, "machine": machine.machine_info(),
                    **result}
        except Exception as exc:    # services down: measure what this machine can, and say why
            why_not_real = f"real services unavailable ({type(exc).__name__}: {str(exc)[:200]})"
            progress.step("pipeline", done=True)
    try:
        result = _own_measurement(opts, progress)
    except Exception as exc:        # a broken stack must not lose the other modes' results
        return {"mode": "pipeline", "finished_at": started, "skipped": f"{type(exc).__name__}: {exc}"}
    result["description"] += f" Not on RabbitMQ/Postgres/S3: {why_not_real}."
    return {"mode": "pipeline", "finished_at": started, "machine": machine.machine_info(), **result}
