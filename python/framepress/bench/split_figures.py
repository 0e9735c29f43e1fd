"""Where a task's wall time went, read from its events: a whole task (one worker, not split), or
a split one (its parent's and its chunks' events).

A run is what `split_mode` records of one task: `submitted_at` (the bench's clock, just before
the submit), the task's `framepress status --json` (`parent`), its chunks' in range order
(`chunks`), when each task's publish job was first seen done (`published_at`, by task id),
which core each worker pid was pinned to (`cores_by_pid`) and each worker's CPU seconds from the
submit to the end (`worker_cpu_s`). Event times come from the database's
clock; the bench runs on the same machine, so the two compare.

The phases of a run follow one another and add up to its wall (submit → `succeeded`).
"""
from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any, Optional

WHOLE_PHASES = ("pickup", "pull", "engine", "upload", "commit")
SPLIT_PHASES = ("pickup", "pull and split", "chunks", "requeue and pickup", "stitch", "upload", "commit")


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _at(status: dict, kind: str, last: bool = True) -> float:
    """When the task's (last or first) event of `kind` happened."""
    found = [e for e in status["events"] if e["kind"] == kind]
    if not found:
        raise ValueError(f"task {status['id']} has no {kind!r} event")
    return _t(found[-1 if last else 0]["at"])


def _data(status: dict, kind: str) -> dict:
    return [e for e in status["events"] if e["kind"] == kind][-1]["data"]


def _published(run: dict, task_id: str, succeeded: float) -> Optional[float]:
    seen = run.get("published_at", {}).get(task_id)
    return None if seen is None else max(0.0, seen - succeeded)


def whole_figures(run: dict) -> dict[str, Any]:
    """A task that one worker transcoded whole."""
    st = run["parent"]
    marks = [run["submitted_at"], _at(st, "taken"), _at(st, "pulled"), _at(st, "transcoded"),
             _at(st, "uploaded"), _at(st, "succeeded")]
    phases = {name: b - a for name, a, b in zip(WHOLE_PHASES, marks, marks[1:])}
    return {"wall_s": marks[-1] - marks[0], "phases": phases,
            "engine_s": _data(st, "succeeded")["engine_seconds"],
            "publish_s": _published(run, st["id"], marks[-1]), **_cpu(run, marks[-1] - marks[0])}


def _cpu(run: dict, wall: float) -> dict[str, Any]:
    """The workers' CPU seconds over the run, and the share of their cores they had: below 1,
    they waited for their cores (other work on them) or for something else (I/O, the services)."""
    cpu = run.get("worker_cpu_s")
    if not cpu:
        return {}
    return {"cpu_s": sum(cpu), "core_share": sum(cpu) / (wall * len(cpu))}


def split_figures(run: dict) -> dict[str, Any]:
    """A split task: its phases, and a row per chunk (see `chunk_rows`)."""
    st = run["parent"]
    if not run["chunks"]:
        raise ValueError(f"task {st['id']} was not split")
    rows = chunk_rows(run)
    split_at = _at(st, "split")
    marks = [run["submitted_at"], _at(st, "taken", last=False), split_at,
             max(r["succeeded_at"] for r in rows), _at(st, "taken"), _at(st, "stitched"),
             _at(st, "uploaded"), _at(st, "succeeded")]
    phases = {name: b - a for name, a, b in zip(SPLIT_PHASES, marks, marks[1:])}
    split = _data(st, "split")
    return {"wall_s": marks[-1] - marks[0], "phases": phases,
            "pull_s": _data(st, "pulled")["seconds"], "split_s": split["seconds"],
            "stitch_s": _data(st, "stitched")["seconds"], "source_s": split["duration"],
            "chunk_seconds": split["chunk_seconds"], "chunk_length_s": _length(split["chunks"][0]),
            "chunks": rows,
            "publish_s": _published(run, st["id"], marks[-1]), **_cpu(run, marks[-1] - marks[0])}


def _length(planned: dict) -> float:
    """A chunk's length as planned: the length asked for, rounded to whole segments."""
    return planned["end"] - planned["start"]


def chunk_rows(run: dict) -> list[dict[str, Any]]:
    """Per chunk: its range, the core it ran on, and seconds of
    - queue wait: created (the split's commit) → taken;
    - gap: the same worker's previous chunk's success (or the chunk's creation, for the worker's
      first chunk) → taken: the message's hop, the take;
    - engine: inside the engine; overhead: the rest of the chunk's wall in its worker (message
      received → success committed: lease, pull of its byte ranges, upload, database)."""
    rows = []
    for c in run["chunks"]:
        taken = [e for e in c["events"] if e["kind"] == "taken"][-1]
        done = _data(c, "succeeded")
        succeeded = _at(c, "succeeded")
        rows.append({"id": c["id"], "range": c["range"], "worker_id": taken["worker_id"],
                     "core": run.get("cores_by_pid", {}).get(taken["data"].get("pid")),
                     "created_at": _t(c["created_at"]), "taken_at": _t(taken["at"]),
                     "succeeded_at": succeeded, "queue_wait_s": _t(taken["at"]) - _t(c["created_at"]),
                     "engine_s": done["engine_seconds"], "wall_s": done["wall_seconds"],
                     "overhead_s": done["wall_seconds"] - done["engine_seconds"]})
    previous: dict[str, float] = {}
    for r in sorted(rows, key=lambda r: r["taken_at"]):
        r["after_previous"] = r["worker_id"] in previous
        r["gap_s"] = r["taken_at"] - max(r["created_at"], previous.get(r["worker_id"], r["created_at"]))
        previous[r["worker_id"]] = r["succeeded_at"]
    return rows


def median_phases(figures: list[dict]) -> dict[str, float]:
    return {k: statistics.median(f["phases"][k] for f in figures) for k in figures[0]["phases"]}


def per_chunk_costs(figures: list[dict]) -> dict[str, Optional[float]]:
    """Medians over every chunk of every split run (the gap: over those that followed another
    on their worker): the fixed costs a chunk adds, and its engine time per second of source
    (chunks may differ in length: the last one takes the rest)."""
    rows = [r for f in figures for r in f["chunks"]]
    # A long source's chunks nearly all follow another on their worker: their gap is the one
    # that repeats (a worker's first chunk only waits for the message).
    later = [r for r in rows if r["after_previous"]] or rows

    def med(key: str, among: list[dict] = rows) -> Optional[float]:
        values = [r[key] for r in among if r[key] is not None]
        return statistics.median(values) if values else None
    engine_rate = statistics.median(sum(r["engine_s"] for r in f["chunks"]) / f["source_s"] for f in figures)
    return {"overhead_s": med("overhead_s"), "gap_s": med("gap_s", later),
            "queue_wait_s": med("queue_wait_s"), "engine_s": med("engine_s"),
            "engine_per_source_s": engine_rate}


__all__ = ["WHOLE_PHASES", "SPLIT_PHASES", "whole_figures", "split_figures", "chunk_rows",
           "median_phases", "per_chunk_costs"]
