"""Chunk tasks in the database: made by the split, counted by their parent, listed in its status.

A parent is split under its lease: the chunk rows and their messages (outbox) are committed with
the parent's `split` event, and the parent is left `running` with no holder while its chunks run
(a copy of its message meanwhile is a duplicate). The chunk whose success completes the set
queues the parent again in that same transaction, the parent row locked so that two chunks
finishing together cannot both miss it; the parent's next take stitches.
"""
from __future__ import annotations

import uuid
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from framepress.service import outbox
from framepress.service.attempt_output import task_prefix
from framepress.service.db import Task, TaskKind, TaskStatus, iso, now_of
from framepress.service.storage import join_uri
from framepress.service.tasks import EventKind, Lease, TaskSpec, TaskStore, _event

CHUNKS_DIR = ".chunks"


def chunks_root(parent: TaskSpec) -> str:
    """Where a parent's chunks put their outputs, and its split step the audio: scratch, removed
    when the parent settles."""
    return join_uri(task_prefix(parent.output_uri, parent.id), CHUNKS_DIR)


def audio_prefix(parent: TaskSpec) -> str:
    return join_uri(chunks_root(parent), "audio")


def create(store: TaskStore, lease: Lease, parent: TaskSpec, chunks: list[dict[str, Any]], queue: str,
           event: dict[str, Any]) -> list[str]:
    """Commit the chunk tasks (each `{"start", "end", "options"}`), their messages and the parent's
    `split` event under the parent's lease, which it gives up: the chunks hold the work now."""
    ids = [str(uuid.uuid4()) for _ in chunks]
    with store.guarded(lease, progress=0.0, worker_id=None, lease_expires_at=None) as s:
        now = now_of(s)
        for chunk_id, c in zip(ids, chunks):
            s.add(Task(id=chunk_id, source_uri=parent.source_uri, output_uri=chunks_root(parent),
                       ladder=parent.ladder, options={**_inherited(parent.options), **c["options"]},
                       status=TaskStatus.QUEUED, attempts=0, max_attempts=parent.max_attempts,
                       priority=parent.priority, progress=0.0, lease_token=0, created_at=now,
                       updated_at=now, kind=TaskKind.CHUNK, parent_id=parent.id, range_start=c["start"],
                       range_end=c["end"]))
        s.flush()
        parent_row = s.get(Task, parent.id)
        parent_row.kind = TaskKind.PARENT
        plan = [{"id": i, "start": c["start"], "end": c["end"], **c.get("plan", {})} for i, c in zip(ids, chunks)]
        _event(s, parent.id, EventKind.SPLIT, stage="split", worker_id=lease.worker_id, attempt=lease.attempt,
               message=f"split into {len(ids)} chunks", data={**event, "chunks": plan})
        for chunk_id in ids:
            outbox.stage_task(s, queue, chunk_id, priority=parent.priority)
    return ids


def _inherited(options: dict[str, Any]) -> dict[str, Any]:
    """What a chunk takes of its parent's options: not its webhook (the parent's events are what
    its subscriber asked for), nor the split settings (a chunk is never split)."""
    return {k: v for k, v in options.items() if k not in ("webhook", "split_seconds", "chunk_seconds")}


def queue_parent_when_done(queue: str, chunk: TaskSpec):
    """For `TaskStore.succeed(then=…)`: with this chunk's success in the transaction, queue the
    parent if every one of its chunks has now succeeded."""
    def then(s: Session) -> None:
        parent = s.execute(select(Task).where(Task.id == chunk.parent_id).with_for_update()).scalar_one_or_none()
        if parent is None or parent.status != TaskStatus.RUNNING or parent.worker_id is not None:
            return  # cancelled, escalated, or already stitching
        left = s.scalar(select(func.count()).select_from(Task).where(
            Task.parent_id == parent.id, Task.status != TaskStatus.SUCCEEDED))
        if left:
            return
        parent.status = TaskStatus.QUEUED
        parent.updated_at = now_of(s)
        _event(s, parent.id, EventKind.REQUEUED, stage="stitch", attempt=parent.attempts,
               message="every chunk succeeded: queued to stitch")
        outbox.stage_task(s, queue, parent.id, priority=parent.priority)
    return then


def of_parent(s: Session, parent_id: str) -> list[Task]:
    return list(s.scalars(select(Task).where(Task.parent_id == parent_id).order_by(Task.range_start)).all())


def summaries(s: Session, parent: Task) -> dict[str, Any]:
    """The chunks of a parent for its status, and its progress: the chunks' while they run."""
    rows = of_parent(s, parent.id)
    out: dict[str, Any] = {"chunks": [{"id": c.id, "status": c.status, "progress": c.progress,
                                       "attempts": c.attempts, "worker_id": c.worker_id,
                                       "range": [c.range_start, c.range_end], "last_error": c.last_error,
                                       "finished_at": iso(c.finished_at)} for c in rows]}
    if rows and parent.status == TaskStatus.RUNNING and parent.worker_id is None:
        out["progress"] = sum(c.progress or 0.0 for c in rows) / len(rows)
    return out


__all__ = ["CHUNKS_DIR", "chunks_root", "audio_prefix", "create", "queue_parent_when_done", "of_parent",
           "summaries"]
