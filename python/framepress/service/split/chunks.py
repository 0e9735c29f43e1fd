"""Chunk tasks in the database: made by the split, counted by their parent, listed in its status.

A parent is split under its lease: the chunk rows and their messages (outbox) are committed with
the parent's `split` event, and the parent is left `running` with no holder while its chunks run
(a copy of its message meanwhile is a duplicate). The chunk whose success completes the set
queues the parent again in that same transaction, the parent row locked so that two chunks
finishing together cannot both miss it; the parent's next take stitches.

Failures: a chunk retries alone (it is a task like any other). One that escalates escalates its
parent and cancels its unsettled siblings (fencing any worker still on one); cancelling a parent
cancels its chunks. An operator's retry of an escalated parent requeues only the chunks that did
not succeed, with a fresh budget of attempts, and the parent waits for them again.
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
from framepress.service.tasks import EventKind, Lease, TaskSpec, TaskStore, _event, stage_leftover_cleanup
from framepress.webhooks.staging import stage_status as stage_webhooks

CHUNKS_DIR = ".chunks"
UNSETTLED = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.RETRY_WAIT, TaskStatus.INCOMPLETE)


def chunks_root(parent: TaskSpec) -> str:
    """Where a parent's chunks put their outputs, and its split step the audio: scratch, removed
    when the parent settles."""
    return join_uri(task_prefix(parent.output_uri, parent.id), CHUNKS_DIR)


def audio_prefix(parent: TaskSpec) -> str:
    return join_uri(chunks_root(parent), "audio")


def source_copy_uri(parent: TaskSpec) -> str:
    """Where the split puts its MP4 copy of a source that has no sample index, for the chunks."""
    return join_uri(chunks_root(parent), "source.mp4")


def create(store: TaskStore, lease: Lease, parent: TaskSpec, chunks: list[dict[str, Any]], queue: str,
           event: dict[str, Any]) -> list[str]:
    """Commit the chunk tasks (each `{"start", "end", "ladder", "options"}`, and a `source_uri`
    when they read a copy of the parent's source), their messages and the parent's
    `split` event under the parent's lease, which it gives up: the chunks hold the work now."""
    ids = [str(uuid.uuid4()) for _ in chunks]
    with store.guarded(lease, progress=0.0, worker_id=None, lease_expires_at=None) as s:
        now = now_of(s)
        for chunk_id, c in zip(ids, chunks):
            s.add(Task(id=chunk_id, source_uri=c.get("source_uri", parent.source_uri),
                       output_uri=chunks_root(parent),
                       ladder=c["ladder"], options={**_inherited(parent.options), **c["options"]},
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


def escalate_parent(store: TaskStore, s: Session, chunk_id: str, error: str) -> None:
    """In the transaction that escalates chunk `chunk_id`: escalate its parent (notices staged as
    for any escalation) and cancel the parent's other unsettled chunks."""
    chunk = s.get(Task, chunk_id)
    parent = s.execute(select(Task).where(Task.id == chunk.parent_id).with_for_update()).scalar_one_or_none()
    if parent is None or parent.status != TaskStatus.RUNNING or parent.worker_id is not None:
        return  # already settled, or stitching
    end = "end" if chunk.range_end is None else f"{chunk.range_end:g} s"
    message = f"chunk {chunk.range_start:g} s to {end} escalated: {error}"
    now = now_of(s)
    parent.status = TaskStatus.ESCALATED
    parent.lease_token += 1
    parent.last_error = message
    parent.finished_at = parent.updated_at = now
    _event(s, parent.id, EventKind.ESCALATED, stage="chunk", attempt=parent.attempts, message=message,
           data={"escalation": "chunk", "chunk_id": chunk.id})
    cancel_unsettled(s, parent.id, f"chunk {chunk.id} escalated: its parent is escalated")
    store._stage_notices(s, parent, stage="chunk", error=message, kind="chunk", reason="a chunk escalated",
                         worker_id=None)
    stage_webhooks(s, parent.id, store.webhooks)


def cancel_unsettled(s: Session, parent_id: str, reason: str, actor: Optional[str] = None) -> list[str]:
    """Cancel the parent's chunks that have not settled; a worker still on one is fenced off (the
    token moves on) and stops within a heartbeat."""
    now = now_of(s)
    ids = []
    for c in s.scalars(select(Task).where(Task.parent_id == parent_id, Task.status.in_(UNSETTLED))
                       .with_for_update()).all():
        previous = c.status
        c.status = TaskStatus.CANCELLED
        c.lease_token += 1
        c.lease_expires_at = None
        c.finished_at = c.updated_at = now
        _event(s, c.id, EventKind.CANCELLED, worker_id=actor, attempt=c.attempts, message=reason,
               data={"previous_status": previous, "parent_id": parent_id})
        stage_leftover_cleanup(s, c.id)
        ids.append(c.id)
    return ids


def unfinished(store: TaskStore, parent_id: str) -> list[str]:
    with store.db.session() as s:
        return list(s.scalars(select(Task.id).where(Task.parent_id == parent_id,
                                                    Task.status != TaskStatus.SUCCEEDED)).all())


def requeue_unfinished(store: TaskStore, lease: Lease, parent: TaskSpec, queue: str) -> list[str]:
    """The parent, retried, waits again for the chunks that did not succeed: they are requeued
    with a fresh budget of attempts (and fenced from any old holder); succeeded ones are kept."""
    with store.guarded(lease, progress=0.0, worker_id=None, lease_expires_at=None) as s:
        now = now_of(s)
        ids = []
        for c in s.scalars(select(Task).where(Task.parent_id == parent.id, Task.status != TaskStatus.SUCCEEDED)
                           .order_by(Task.range_start).with_for_update()).all():
            previous = c.status
            c.status = TaskStatus.QUEUED
            c.lease_token += 1
            c.attempts = 0
            c.worker_id = c.next_attempt_at = c.lease_expires_at = c.finished_at = None
            c.progress = 0.0
            c.updated_at = now
            _event(s, c.id, EventKind.RESUMED, attempt=0, message="requeued by its parent's retry",
                   data={"previous_status": previous, "parent_id": parent.id})
            outbox.stage_task(s, queue, c.id, priority=c.priority)
            ids.append(c.id)
        _event(s, parent.id, EventKind.REQUEUED, stage="chunks", worker_id=lease.worker_id, attempt=lease.attempt,
               message=f"{len(ids)} chunks that had not succeeded requeued; the others are kept",
               data={"chunks": ids})
    return ids


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


__all__ = ["CHUNKS_DIR", "chunks_root", "audio_prefix", "source_copy_uri", "create", "queue_parent_when_done",
           "escalate_parent", "cancel_unsettled", "unfinished", "requeue_unfinished", "of_parent", "summaries"]
