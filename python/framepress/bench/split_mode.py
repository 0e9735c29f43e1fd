"""`framepress bench split`: one long source on one worker against the same source split over two.

Real `framepress worker` processes on RabbitMQ, Postgres and S3 (`real_services`), each pinned to
one core with `taskset` to stand for one machine. Each round runs, with fresh workers:
- whole: one worker (core 0), splitting off;
- split: two workers (cores 0 and 1), the source split into chunks of about `chunk_seconds`;
- whole, every core busy: two workers (cores 0 and 1), each given the source whole at once. The
  cores of a VM share their physical core, caches and memory bandwidth: a split's workers slow each
  other down where the lone whole worker had its neighbour idle. This run gives the one-core
  worker's wall under the same neighbours, for a second ratio.
Wall: submit → the task's `succeeded`. Where it went comes from the tasks' events
(`split_figures`); the fixed costs per chunk and the engine time per second of source feed a
projection to a two-hour source on many workers (`split_projection`).
"""
from __future__ import annotations

import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

from framepress.bench import machine, source as sources
from framepress.bench.real_services import Stack, service_stack, settings_env
from framepress.bench.service_run import started_workers
from framepress.bench.split_figures import median_phases, per_chunk_costs, split_figures, whole_figures
from framepress.bench.split_projection import Measured, projection, split_wall
from framepress.bench.stats import summary
from framepress.bench.systems import newest_ffmpeg, system_ffmpeg

SOURCE = sources.SourceSpec(width=1920, height=1080, fps=30, seconds=120.0)   # issue 13's
QUICK_SOURCE = sources.SourceSpec(width=1280, height=720, fps=30, seconds=32.0)
CHUNK_SECONDS, QUICK_CHUNK_SECONDS = 30.0, 8.0
CORES = (0, 1)
GOAL_RATIO = 0.55          # issue 13: two one-core workers' wall ≤ 0.55 × one worker's, unsplit
PROJECTED_SOURCE_S = 2 * 3600.0
PROJECTED_WORKERS = (1, 10, 50, 200)
POLL_S = 0.1
# Split tasks make no thumbnails (no chunk sees the whole source): neither does the whole task here,
# so both runs make the same outputs (MP4s, HLS, DASH).
TASK_OPTIONS = {"hwaccel": "cpu", "thumbnail_seconds": 0}


@dataclass
class SplitBenchOptions:
    work_dir: Path
    source: Optional[Path] = None
    quick: bool = False
    seconds: Optional[float] = None
    chunk_seconds: Optional[float] = None
    ladder: str = "default"
    rounds: int = 1
    cores: tuple[int, ...] = CORES
    timeout_s: float = 3600.0          # per task


def why_not_runnable(cores: tuple[int, ...]) -> Optional[str]:
    if not shutil.which("taskset"):
        return "taskset (util-linux) is not installed: the workers cannot be pinned to cores"
    missing = sorted(set(cores) - os.sched_getaffinity(0))
    if missing:
        return (f"no core {', '.join(map(str, missing))} here to pin a worker to "
                f"(this process may use {sorted(os.sched_getaffinity(0))})")
    return None


def timed_run(stack: Stack, source_uri: str, *, cores: tuple[int, ...], split_seconds: float,
              chunk_seconds: float, log_dir: Path, ladder: str = "default", timeout_s: float = 3600.0
              ) -> dict[str, Any]:
    """Fresh workers, one pinned to each of `cores`, one task submitted once they have
    registered; the task's record (see `split_figures`) once it has succeeded and its outputs
    are published. The workers' output goes to `log_dir`."""
    return timed_runs(stack, source_uri, cores=cores, tasks=1, split_seconds=split_seconds,
                      chunk_seconds=chunk_seconds, log_dir=log_dir, ladder=ladder, timeout_s=timeout_s)[0]


def timed_runs(stack: Stack, source_uri: str, *, cores: tuple[int, ...], tasks: int, split_seconds: float,
               chunk_seconds: float, log_dir: Path, ladder: str = "default", timeout_s: float = 3600.0
               ) -> list[dict[str, Any]]:
    """As `timed_run`, with `tasks` tasks submitted at once: a record for each. With a task for
    every worker, a record's CPU seconds are those of the worker that took it."""
    settings = stack.settings.with_(split_seconds=split_seconds, chunk_seconds=chunk_seconds)
    env = {**os.environ, **settings_env(settings)}
    log_dir.mkdir(parents=True, exist_ok=True)
    with started_workers(env, stack.client.db, len(cores), cores=cores, log_dir=log_dir) as procs:
        load = os.getloadavg()[0]
        cpu_before = [_cpu_s(p.pid) for p in procs]
        submitted = time.time()
        task_ids = [stack.client.submit(source_uri, ladder=ladder, options=TASK_OPTIONS) for _ in range(tasks)]
        published = {tid: _wait_published(stack.client.db, tid, submitted + timeout_s) for tid in task_ids}
        cpu = {p.pid: _cpu_s(p.pid) - before for p, before in zip(procs, cpu_before)}
    records = []
    for tid in task_ids:
        parent = stack.client.status(tid)
        if parent["status"] != "succeeded":
            raise RuntimeError(f"task {tid} {parent['status']}: {parent['last_error']}")
        chunks = [stack.client.status(c["id"]) for c in parent.get("chunks", [])]
        _delete_outputs(stack, tid)      # moto keeps objects in memory
        taker = [e for e in parent["events"] if e["kind"] == "taken"][-1]["data"].get("pid")
        records.append({"submitted_at": submitted, "parent": parent, "chunks": chunks, "published_at": published[tid],
                        "cores_by_pid": {p.pid: c for p, c in zip(procs, cores)},
                        "worker_cpu_s": [cpu[taker]] if tasks == len(procs) and taker in cpu else list(cpu.values()),
                        "load_before": load})
    return records


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def _wait_published(db, task_id: str, deadline: float) -> dict[str, float]:
    """Polls the task and its chunks until it settles and, if it succeeded, its publish job is
    done; returns when each task's publish job was first seen done."""
    from sqlalchemy import or_, select
    from framepress.service.db import OutboxRow, Task, TaskStatus
    from framepress.service.outbox import PUBLISH
    published: dict[str, float] = {}
    while True:
        with db.session() as s:
            states = dict(s.execute(select(Task.id, Task.status).where(
                or_(Task.id == task_id, Task.parent_id == task_id))).all())
            pending = set(s.scalars(select(OutboxRow.task_id).where(
                OutboxRow.task_id.in_(list(states)), OutboxRow.kind == PUBLISH)))
        now = time.time()
        for tid, status in states.items():
            if status == TaskStatus.SUCCEEDED and tid not in pending:
                published.setdefault(tid, now)
        top = states[task_id]
        if top in TaskStatus.SETTLED and (top != TaskStatus.SUCCEEDED or task_id in published):
            return published
        if now > deadline:
            raise TimeoutError(f"task {task_id} still {top} at its deadline")
        time.sleep(POLL_S)


def _delete_outputs(stack: Stack, task_id: str) -> None:
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=f"out/{task_id}/")
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            stack.s3.delete_objects(Bucket=stack.bucket, Delete={"Objects": keys})


def measured_model(whole: list[dict], split: list[dict]) -> Measured:
    """The projection's inputs: medians over the rounds."""
    phases = median_phases(split)
    costs = per_chunk_costs(split)
    return Measured(source_s=split[0]["source_s"], chunk_s=split[0]["chunk_length_s"],
                    whole_wall_s=summary(f["wall_s"] for f in whole)["median"],
                    pickup_s=phases["pickup"], pull_and_split_s=phases["pull and split"],
                    engine_per_source_s=costs["engine_per_source_s"],
                    fixed_per_chunk_s=costs["overhead_s"] + costs["gap_s"],
                    requeue_s=phases["requeue and pickup"],
                    stitch_and_upload_s=phases["stitch"] + phases["upload"], commit_s=phases["commit"])


def summarise(rounds: list[dict], workers: int = len(CORES)) -> dict[str, Any]:
    whole = [r["whole"] for r in rounds]
    split = [r["split"] for r in rounds]
    ratio = summary(r["ratio"] for r in rounds)
    m = measured_model(whole, split)
    busy = [f for r in rounds for f in r.get("busy_whole", [])]
    with_busy = {"busy_whole_wall_s": summary(f["wall_s"] for f in busy),
                 "busy_whole_core_share": summary(f["core_share"] for f in busy if "core_share" in f),
                 "busy_ratio": summary(r["busy_ratio"] for r in rounds)} if busy else {}
    return {**with_busy, "whole_wall_s": summary(f["wall_s"] for f in whole),
            "split_wall_s": summary(f["wall_s"] for f in split),
            "whole_cpu_s": summary(f["cpu_s"] for f in whole if "cpu_s" in f),
            "split_cpu_s": summary(f["cpu_s"] for f in split if "cpu_s" in f),
            "whole_core_share": summary(f["core_share"] for f in whole if "core_share" in f),
            "split_core_share": summary(f["core_share"] for f in split if "core_share" in f),
            "ratio": ratio, "goal_ratio": GOAL_RATIO, "goal_met": ratio["median"] <= GOAL_RATIO,
            "whole_phases": median_phases(whole), "split_phases": median_phases(split),
            "per_chunk": per_chunk_costs(split), "measured": m.to_dict(),
            "workers": workers, "model_at_measured": [split_wall(m, m.source_s, n) for n in range(1, max(4, workers) + 1)],
            "projection": projection(m, PROJECTED_SOURCE_S, PROJECTED_WORKERS)}


def run_split_bench(opts: SplitBenchOptions, say: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    finished = lambda: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())  # noqa: E731
    why = why_not_runnable(opts.cores)
    if why:
        return {"mode": "split", "finished_at": finished(), "skipped": why}
    spec = QUICK_SOURCE if opts.quick else SOURCE
    if opts.seconds:
        spec = sources.SourceSpec(spec.width, spec.height, spec.fps, opts.seconds)
    chunk_s = opts.chunk_seconds or (QUICK_CHUNK_SECONDS if opts.quick else CHUNK_SECONDS)
    if opts.source is None:
        say(f"split: making the {spec.width}x{spec.height} {spec.seconds:g} s source (once)")
    src = opts.source or sources.make_source(system_ffmpeg() or newest_ffmpeg(), spec,
                                             opts.work_dir / "sources")
    info = sources.probe_source(src)
    rounds = []
    logs = opts.work_dir / "split-logs"
    with service_stack(hwaccel="cpu", log_level="WARNING") as stack:
        key = f"sources/{Path(src).name}"
        stack.s3.upload_file(str(src), stack.bucket, key)
        uri = f"s3://{stack.bucket}/{key}"
        for i in range(opts.rounds):
            say(f"split: round {i + 1}/{opts.rounds}, one worker, whole")
            whole = timed_run(stack, uri, cores=opts.cores[:1], split_seconds=0.0, chunk_seconds=chunk_s,
                              ladder=opts.ladder, timeout_s=opts.timeout_s, log_dir=logs / f"round{i + 1}-whole")
            say(f"split: round {i + 1}/{opts.rounds}, {len(opts.cores)} workers, split")
            split = timed_run(stack, uri, cores=opts.cores, split_seconds=chunk_s, chunk_seconds=chunk_s,
                              ladder=opts.ladder, timeout_s=opts.timeout_s, log_dir=logs / f"round{i + 1}-split")
            say(f"split: round {i + 1}/{opts.rounds}, the source whole on each of {len(opts.cores)} workers at once")
            busy = timed_runs(stack, uri, cores=opts.cores, tasks=len(opts.cores), split_seconds=0.0,
                              chunk_seconds=chunk_s, ladder=opts.ladder, timeout_s=opts.timeout_s,
                              log_dir=logs / f"round{i + 1}-busy")
            w, s, b = whole_figures(whole), split_figures(split), [whole_figures(r) for r in busy]
            busy_wall = statistics.mean(f["wall_s"] for f in b)
            rounds.append({"whole": w, "split": s, "ratio": s["wall_s"] / w["wall_s"],
                           "busy_whole": b, "busy_ratio": s["wall_s"] / busy_wall,
                           "load_before": [whole["load_before"], split["load_before"], busy[0]["load_before"]]})
            say(f"split: whole {w['wall_s']:.1f} s, split {s['wall_s']:.1f} s, ratio {rounds[-1]['ratio']:.3f}; "
                f"whole with every core busy {busy_wall:.1f} s, ratio {rounds[-1]['busy_ratio']:.3f}")
    return {"mode": "split", "finished_at": finished(), "machine": machine.machine_info(),
            "source": {**info.to_dict(), "path": Path(src).name, "generated": opts.source is None},
            "settings": {"ladder": Path(opts.ladder).name, "chunk_seconds": chunk_s, "options": TASK_OPTIONS,
                         "split_seconds": chunk_s, "cores": list(opts.cores), "rounds": opts.rounds,
                         "quick": opts.quick, "poll_s": POLL_S},
            "rounds": rounds, "summary": summarise(rounds, len(opts.cores))}


__all__ = ["SplitBenchOptions", "run_split_bench", "timed_run", "timed_runs", "summarise",
           "why_not_runnable", "measured_model"]
