"""Operator actions on tasks: retry, resolve, cancel (`framepress tasks …`).

Each is one transaction on the task row plus an event. Retry and cancel bump the lease token, so
whatever worker still holds an old lease (a cancelled running task, a worker that comes back from
a pause) is fenced off: its next write raises StaleLease and its heartbeat cancels the engine.
Retry stages the task's message in the same transaction (`outbox`) and publishes it after the
commit, so the delivery always finds the task `queued` and a failed publish strands nothing.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select

from framepress.service import outbox
from framepress.service.db import Database, Task, TaskKind, TaskStatus, db_now
from framepress.errors import FramepressError
from framepress.service.errors import TaskNotFound
from framepress.service.tasks import EventKind, _event, stage_leftover_cleanup
from framepress.webhooks import Subscriptions
from framepress.webhooks.staging import stage_status as stage_webhooks

RESOLVED = "resolved"   # event kind: an operator closed an escalated task with a note

RETRYABLE = (TaskStatus.ESCALATED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.INCOMPLETE)
RESOLVABLE = (TaskStatus.ESCALATED, TaskStatus.INCOMPLETE, TaskStatus.RETRY_WAIT, TaskStatus.QUEUED)
CANCELLABLE = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.RETRY_WAIT, TaskStatus.INCOMPLETE,
               TaskStatus.ESCALATED)


class AdminError(FramepressError):
    """The action does not apply to the task in its current status."""


def _load(s, task_id: str) -> Task:
    t = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
    if t is None:
        raise TaskNotFound(f"no task {task_id}")
    return t


def retry(db: Database, broker, task_id: str, *, reset_attempts: bool = False,
          actor: Optional[str] = None, note: str = "") -> dict[str, Any]:
    """Requeue an escalated/failed/cancelled task (`resumed` event, with the operator's `note`).
    Without reset_attempts the task gets one more attempt than it has used; with it, a fresh
    budget."""
    with db.session() as s:
        t = _load(s, task_id)
        if t.status not in RETRYABLE:
            raise AdminError(f"task {task_id} is {t.status}; only {', '.join(RETRYABLE)} tasks "
                             f"can be retried")
        previous, used = t.status, t.attempts
        if reset_attempts:
            t.attempts = 0
        else:
            t.max_attempts = max(t.max_attempts, t.attempts + 1)
        t.status = TaskStatus.QUEUED
        t.lease_token += 1
        t.lease_expires_at = None
        t.next_attempt_at = None
        t.worker_id = None
        t.progress = 0.0
        t.finished_at = None
        t.updated_at = db_now()
        priority = t.priority
        _event(s, t.id, EventKind.RESUMED, worker_id=actor, attempt=t.attempts,
               message=f"retried by an operator (was {previous}"
                       f"{', attempts reset' if reset_attempts else ''})"
                       + (f": {note.strip()}" if note.strip() else ""),
               data={"previous_status": previous, "reset_attempts": reset_attempts,
                     "attempts_used": used, "max_attempts": t.max_attempts,
                     **({"note": note.strip()} if note.strip() else {})})
        out = {"id": t.id, "status": t.status, "previous_status": previous,
               "attempts": t.attempts, "max_attempts": t.max_attempts}
        outbox.stage_task(s, broker.tasks_queue, t.id, priority=priority)
    # Committed with its message staged: if this publish fails, a worker's relay sends it later.
    out["published"] = not outbox.Relay(db, broker).flush(task_id).failed
    return out


def resolve(db: Database, task_id: str, note: str, *, actor: Optional[str] = None,
            webhooks: Optional[Subscriptions] = None) -> dict[str, Any]:
    """Close an escalated task for good: status `failed`, the note in a `resolved` event (and
    its `task.failed` webhooks staged)."""
    if not note.strip():
        raise AdminError("a note is required")
    with db.session() as s:
        t = _load(s, task_id)
        if t.status not in RESOLVABLE:
            raise AdminError(f"task {task_id} is {t.status}; only {', '.join(RESOLVABLE)} tasks "
                             f"can be resolved")
        previous = t.status
        now = db_now()           # the database's clock, like every other time
        t.status = TaskStatus.FAILED
        t.lease_token += 1              # a stray delivery must not pick it up again
        t.lease_expires_at = None
        t.finished_at = now
        t.updated_at = now
        _event(s, t.id, RESOLVED, worker_id=actor, attempt=t.attempts, message=note,
               data={"previous_status": previous, "note": note})
        stage_leftover_cleanup(s, t.id)
        stage_webhooks(s, t.id, webhooks)
        return {"id": t.id, "status": t.status, "previous_status": previous, "note": note}


def cancel(db: Database, task_id: str, *, reason: str = "", actor: Optional[str] = None,
           webhooks: Optional[Subscriptions] = None) -> dict[str, Any]:
    """Cancel a task; if a worker is running it, its lease is revoked so it stops within a
    heartbeat, uploads nothing more and does not mark success."""
    with db.session() as s:
        t = _load(s, task_id)
        if t.status not in CANCELLABLE:
            raise AdminError(f"task {task_id} is {t.status}; it cannot be cancelled")
        previous, holder = t.status, t.worker_id
        now = db_now()           # the database's clock, like every other time
        t.status = TaskStatus.CANCELLED
        t.lease_token += 1
        t.lease_expires_at = None
        t.finished_at = now
        t.updated_at = now
        running_on = holder if previous == TaskStatus.RUNNING else None
        _event(s, t.id, EventKind.CANCELLED, worker_id=actor, attempt=t.attempts,
               message=reason or "cancelled by an operator",
               data={"previous_status": previous, "running_on": running_on})
        # A worker's relay deletes what its attempts uploaded; a running attempt, fenced off by
        # the token bump above, deletes its own when it stops.
        stage_leftover_cleanup(s, t.id)
        if t.kind == TaskKind.PARENT:
            from framepress.service.split import chunks
            chunks.cancel_unsettled(s, t.id, "its parent was cancelled", actor)
        stage_webhooks(s, t.id, webhooks)
        return {"id": t.id, "status": t.status, "previous_status": previous,
                "running_on": running_on}


__all__ = ["retry", "resolve", "cancel", "AdminError", "TaskNotFound", "RESOLVED"]
