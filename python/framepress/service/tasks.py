"""Task rows and their event log, with the lease and fencing rules of DESIGN §4.

A worker *takes* a task: the take increments `lease_token` and returns a `Lease`. Every later
write of that worker (progress, events, renditions, the outcome) runs in a transaction that first
updates the task row guarded by `lease_token = <its token>`; if another worker took the task
meanwhile the guard matches no row and `StaleLease` is raised, so a stale worker can never finish.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from framepress.service import outbox
from framepress.service.db import (Database, RenditionRow, Task, TaskEvent, TaskKind, TaskStatus, Worker, aware,
                 db_now, iso, now_of)
from framepress.service.errors import StaleLease
from framepress.webhooks import Subscriptions
from framepress.webhooks.staging import stage_status as stage_webhooks


class EventKind:
    TAKEN = "taken"
    DETAILS_LOADED = "details_loaded"
    PULLED = "pulled"
    TRANSCODED = "transcoded"
    UPLOADED = "uploaded"
    SUCCEEDED = "succeeded"
    ERROR = "error"
    RETRY_SCHEDULED = "retry_scheduled"
    ESCALATED = "escalated"
    RESUMED = "resumed"
    WORKER_LOST = "worker_lost"
    INCOMPLETE = "incomplete"
    REQUEUED = "requeued"
    DUPLICATE_DELIVERY = "duplicate_delivery"
    CANCELLED = "cancelled"
    SPLIT = "split"          # a parent task was split into chunk tasks
    STITCHED = "stitched"    # a parent's outputs were put together from its chunks'
    NOT_SPLIT = "not_split"  # a source long enough to split was transcoded whole, and why


@dataclass(frozen=True)
class Lease:
    task_id: str
    token: int
    attempt: int
    worker_id: str


@dataclass
class TakeResult:
    """What a delivery found. Exactly one of: `lease` set (work it), or `outcome` explains why not."""
    outcome: str   # "taken" | "unknown" | "settled" | "busy" | "not_due" | "exhausted" (escalated)
    lease: Optional[Lease] = None
    spec: Optional["TaskSpec"] = None   # the task's details, read in the same transaction
    status: Optional[str] = None
    holder: Optional[str] = None  # worker holding a live lease ("busy")
    holder_heartbeat_at: Optional[datetime] = None  # its last heartbeat ("busy")
    holder_alive: bool = False    # "busy", and the holder was seen beating since (set by callers)
    took_over_from: Optional[str] = None
    due_in_s: Optional[float] = None  # seconds until a retry is due ("not_due")


@dataclass
class TaskSpec:
    id: str
    source_uri: str
    output_uri: str
    ladder: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 5
    kind: str = TaskKind.WHOLE
    parent_id: Optional[str] = None
    range_start: Optional[float] = None
    range_end: Optional[float] = None


class TaskStore:
    def __init__(self, db: Database, lease_seconds: float = 60.0,
                 takeover_seconds: Optional[float] = None):
        """`takeover_seconds`: heartbeat silence after which a holder is presumed dead at take
        time (workers pass two heartbeats and a margin; by default the lease time)."""
        self.db = db
        self.lease_seconds = lease_seconds
        self.takeover_seconds = lease_seconds if takeover_seconds is None else takeover_seconds
        #: The notices of an escalation (`escalation.notices`), staged in the transaction that
        #: escalates; a worker sets it, with its escalations queue and webhook.
        self.escalation_notices: Callable[[dict[str, Any]], list[outbox.Outgoing]] = lambda m: []
        #: The settings' webhook subscriptions; a settled task's event is staged for them (and
        #: for the task's own URL) in the transaction that settles it.
        self.webhooks = Subscriptions()

    # ---- clients ------------------------------------------------------------------------------

    def create(self, source_uri: str, output_uri: str, ladder: dict[str, Any], *, priority: int = 0,
               max_attempts: int = 5, options: Optional[dict[str, Any]] = None,
               task_id: Optional[str] = None, queue: Optional[str] = None) -> str:
        """Insert a queued task; with `queue`, its message is staged in the same transaction
        (outbox), so the task never exists without one."""
        task_id = task_id or str(uuid.uuid4())
        with self.db.session() as s:
            now = now_of(s)
            s.add(Task(id=task_id, source_uri=source_uri, output_uri=output_uri, ladder=ladder,
                       options=options or {}, status=TaskStatus.QUEUED, attempts=0,
                       max_attempts=max_attempts, priority=priority, progress=0.0, lease_token=0,
                       created_at=now, updated_at=now))
            s.flush()
            if queue:
                outbox.stage_task(s, queue, task_id, priority=priority)
        return task_id

    def get(self, task_id: str) -> Optional[TaskSpec]:
        with self.db.session() as s:
            t = s.get(Task, task_id)
            return None if t is None else _spec(t)

    # ---- taking a task ------------------------------------------------------------------------

    def take(self, task_id: str, worker_id: str, details: dict[str, Any], *,
             reachable_since: Optional[datetime] = None) -> TakeResult:
        """Try to lease the task for `worker_id`; writes `taken` (or why not).

        A task held by another worker is taken over only when that worker is gone: its row says
        lost or stopped, or it has not beaten for `takeover_seconds` while the database was
        reachable (`reachable_since`: since when the caller's own heartbeats have been getting
        through, so a database outage is not mistaken for the holder's death). A holder with no
        workers row at all is judged by its lease. A live holder is never displaced."""
        with self.db.session() as s:
            now = now_of(s)
            t = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
            if t is None:
                return TakeResult("unknown")
            if t.status in TaskStatus.SETTLED:
                _event(s, t.id, EventKind.DUPLICATE_DELIVERY, worker_id=worker_id, attempt=t.attempts,
                       message=f"task is already {t.status}; nothing to do",
                       data={"status": t.status})
                return TakeResult("settled", status=t.status)
            if (t.status == TaskStatus.RETRY_WAIT and t.next_attempt_at is not None
                    and aware(t.next_attempt_at) > now):
                # A copy arriving before the backoff ran out (a duplicate, or a republish).
                due_in = (aware(t.next_attempt_at) - now).total_seconds()
                _event(s, t.id, EventKind.DUPLICATE_DELIVERY, worker_id=worker_id,
                       attempt=t.attempts, message=f"retry not due for {due_in:.1f} s",
                       data={"status": t.status, "due_in_s": round(due_in, 3)})
                return TakeResult("not_due", status=t.status, due_in_s=due_in, spec=_spec(t))
            if t.kind == TaskKind.PARENT and t.status == TaskStatus.RUNNING and t.worker_id is None:
                # Split: its chunks are running, and the last of them to succeed queues it again.
                _event(s, t.id, EventKind.DUPLICATE_DELIVERY, worker_id=worker_id, attempt=t.attempts,
                       message="its chunks are running; nothing to do", data={"status": t.status})
                return TakeResult("settled", status=t.status)
            took_over_from = None
            if t.status == TaskStatus.RUNNING:
                # Our own earlier attempt (we run one task at a time) died before recording
                # anything: take it again. Someone else's: only if it is gone.
                if t.worker_id != worker_id:
                    holder = s.get(Worker, t.worker_id) if t.worker_id else None
                    if not self._holder_gone(t, holder, now, reachable_since):
                        return TakeResult("busy", status=t.status, holder=t.worker_id,
                                          holder_heartbeat_at=aware(holder.heartbeat_at)
                                          if holder else None)
                took_over_from = t.worker_id
            if t.attempts >= t.max_attempts:
                # A message that keeps coming back (e.g. it crashes its workers) stops here. The
                # token moves on, so a partitioned holder can no longer turn this into success.
                message = "delivered again with no attempts left"
                t.lease_token += 1
                t.status = TaskStatus.ESCALATED
                t.last_error = message
                t.lease_expires_at = None
                t.updated_at = t.finished_at = now
                _event(s, t.id, EventKind.ESCALATED, worker_id=worker_id, attempt=t.attempts,
                       message=message, data={"escalation": "exhausted",
                                              "previous_holder": took_over_from})
                stage_leftover_cleanup(s, t.id)
                self._stage_notices(s, t, stage="taken", error=message, kind="exhausted",
                                    reason="attempts exhausted", worker_id=worker_id)
                stage_webhooks(s, t.id, self.webhooks)
                if t.kind == TaskKind.CHUNK:
                    from framepress.service.split import chunks
                    chunks.escalate_parent(self, s, t.id, message)
                return TakeResult("exhausted", status=t.status, took_over_from=took_over_from)
            t.lease_token += 1
            t.attempts += 1
            t.status = TaskStatus.RUNNING
            t.worker_id = worker_id
            t.progress = 0.0
            t.started_at = now
            t.updated_at = now
            t.next_attempt_at = None
            t.lease_expires_at = now + timedelta(seconds=self.lease_seconds)
            lease = Lease(task_id=t.id, token=t.lease_token, attempt=t.attempts, worker_id=worker_id)
            data = dict(details)
            if took_over_from:
                data["took_over_from"] = took_over_from
            _event(s, t.id, EventKind.TAKEN, worker_id=worker_id, attempt=t.attempts, data=data,
                   message=f"attempt {t.attempts} of {t.max_attempts}")
            return TakeResult("taken", lease=lease, status=TaskStatus.RUNNING,
                              took_over_from=took_over_from, spec=_spec(t))

    def _holder_gone(self, t: Task, holder: Optional[Worker], now: datetime,
                     reachable_since: Optional[datetime]) -> bool:
        if holder is None:
            return t.lease_expires_at is None or aware(t.lease_expires_at) <= now
        if holder.state in ("lost", "stopped"):
            return True
        silent_from = aware(holder.heartbeat_at)
        if reachable_since is not None:
            silent_from = max(silent_from, reachable_since)
        return (now - silent_from).total_seconds() > self.takeover_seconds

    def record_duplicate(self, task_id: str, worker_id: str, message: str,
                         data: Optional[dict[str, Any]] = None) -> None:
        """A `duplicate_delivery` event: a copy of the task's message that was dropped."""
        with self.db.session() as s:
            attempt = s.scalar(select(Task.attempts).where(Task.id == task_id))
            _event(s, task_id, EventKind.DUPLICATE_DELIVERY, worker_id=worker_id,
                   attempt=attempt, message=message, data=data)

    # ---- writes under a lease -----------------------------------------------------------------

    def _guard(self, s: Session, lease: Lease, **values: Any) -> None:
        values.setdefault("updated_at", db_now())
        values.setdefault("lease_expires_at", db_now(self.lease_seconds))
        res = s.execute(update(Task).where(Task.id == lease.task_id, Task.lease_token == lease.token)
                        .values(**values))
        if res.rowcount != 1:
            raise StaleLease(f"task {lease.task_id}: lease {lease.token} of {lease.worker_id} was "
                             f"taken over; not writing", step="fencing")

    def event(self, lease: Lease, kind: str, *, stage: Optional[str] = None, message: str = "",
              data: Optional[dict[str, Any]] = None) -> None:
        with self.db.session() as s:
            self._guard(s, lease)
            _event(s, lease.task_id, kind, stage=stage, worker_id=lease.worker_id,
                   attempt=lease.attempt, message=message, data=data)

    def progress(self, lease: Lease, fraction: float) -> None:
        with self.db.session() as s:
            self._guard(s, lease, progress=float(min(max(fraction, 0.0), 1.0)))

    @contextmanager
    def guarded(self, lease: Lease, **values: Any) -> Iterator[Session]:
        """A transaction that first updates the task row under `lease` (with `values`), for
        writes of several rows that must stand or fall with the lease."""
        with self.db.session() as s:
            self._guard(s, lease, **values)
            yield s

    def renew(self, lease: Lease) -> None:
        with self.db.session() as s:
            self._guard(s, lease)

    def check(self, lease: Lease) -> None:
        """Raise `StaleLease` unless `lease` still holds the task."""
        self.renew(lease)

    def succeed(self, lease: Lease, renditions: Iterable[dict[str, Any]], data: dict[str, Any],
                outgoing: Iterable[outbox.Outgoing] = (),
                then: Optional[Callable[[Session], None]] = None) -> None:
        """Renditions, status, the `succeeded` event and `outgoing` (the job publishing the
        attempt's objects) in one transaction (one outcome, once); `then(session)` adds to it
        (a chunk's success may queue its parent)."""
        with self.db.session() as s:
            now = now_of(s)
            self._guard(s, lease, status=TaskStatus.SUCCEEDED, progress=1.0, finished_at=now,
                        last_error=None, lease_expires_at=None)
            s.query(RenditionRow).filter(RenditionRow.task_id == lease.task_id).delete()
            for r in renditions:
                s.add(RenditionRow(task_id=lease.task_id, created_at=now, **r))
            _event(s, lease.task_id, EventKind.SUCCEEDED, worker_id=lease.worker_id,
                   attempt=lease.attempt, data=data)
            outbox.stage_all(s, lease.task_id, outgoing)
            stage_webhooks(s, lease.task_id, self.webhooks)
            if then is not None:
                then(s)

    def succeeded_under(self, lease: Lease) -> bool:
        """Whether `lease`'s success is committed (a retried commit may have landed before)."""
        with self.db.session() as s:
            row = s.execute(select(Task.status, Task.lease_token)
                            .where(Task.id == lease.task_id)).first()
        return row is not None and row.status == TaskStatus.SUCCEEDED and row.lease_token == lease.token

    def fail(self, lease: Lease, *, status: str, error_event: dict[str, Any],
             follow_up: Optional[dict[str, Any]] = None, retry_in_s: Optional[float] = None,
             give_back_attempt: bool = False, outgoing: Iterable[outbox.Outgoing] = ()) -> None:
        """Record a failure: the `error` event, the new status and the follow-up event
        (`retry_scheduled` / `escalated`) in one transaction. `retry_in_s`: the backoff, from
        the database's clock (`next_attempt_at`). `give_back_attempt`: the failure was a
        dependency's, not the task's, so it does not use up the retry budget. `outgoing`:
        messages that must follow this outcome (the retry's message, escalation notices), staged
        in the same transaction."""
        extra: dict[str, Any] = {"attempts": Task.attempts - 1} if give_back_attempt else {}
        with self.db.session() as s:
            self._guard(s, lease, status=status, last_error=error_event.get("message"),
                        next_attempt_at=None if retry_in_s is None else db_now(retry_in_s),
                        lease_expires_at=None,
                        finished_at=db_now() if status in TaskStatus.SETTLED else None, **extra)
            _event(s, lease.task_id, EventKind.ERROR, worker_id=lease.worker_id,
                   attempt=lease.attempt, **error_event)
            if follow_up:
                _event(s, lease.task_id, worker_id=lease.worker_id, attempt=lease.attempt,
                       **follow_up)
            outbox.stage_all(s, lease.task_id, outgoing)
            if status in TaskStatus.SETTLED:
                stage_leftover_cleanup(s, lease.task_id)
                stage_webhooks(s, lease.task_id, self.webhooks)
            if status == TaskStatus.ESCALATED and s.get(Task, lease.task_id).kind == TaskKind.CHUNK:
                from framepress.service.split import chunks
                chunks.escalate_parent(self, s, lease.task_id, error_event.get("message", ""))
            if status == TaskStatus.ESCALATED:
                follow = follow_up or {}
                self._stage_notices(s, s.get(Task, lease.task_id), stage=error_event.get("stage"),
                                    error=error_event.get("message", ""),
                                    kind=(follow.get("data") or {}).get("escalation", ""),
                                    reason=follow.get("message"), worker_id=lease.worker_id)

    def _stage_notices(self, s: Session, t: Task, *, stage: Optional[str], error: str, kind: str,
                       reason: Optional[str], worker_id: Optional[str]) -> None:
        from framepress.service.failure.escalation import build_message
        message = build_message(t.id, stage, error, t.attempts, at=now_of(s), kind=kind,
                                reason=reason, max_attempts=t.max_attempts, worker_id=worker_id)
        outbox.stage_all(s, t.id, self.escalation_notices(message))

    # ---- reading ------------------------------------------------------------------------------

    def status(self, task_id: str) -> Optional[dict[str, Any]]:
        """The `framepress status --json` shape of DESIGN §3."""
        with self.db.session() as s:
            t = s.get(Task, task_id)
            return None if t is None else status_json(s, t)

    def age_s(self, task_id: str) -> Optional[float]:
        """Seconds since the task was submitted, by the database's clock (None: no such task)."""
        with self.db.session() as s:
            created = s.scalar(select(Task.created_at).where(Task.id == task_id))
            return None if created is None else (now_of(s) - aware(created)).total_seconds()

    def last_retry_delay(self, task_id: str) -> Optional[float]:
        """The delay (seconds) of the task's latest scheduled retry, for decorrelated backoff."""
        with self.db.session() as s:
            recent = s.scalars(select(TaskEvent.data).where(
                TaskEvent.task_id == task_id, TaskEvent.kind == EventKind.RETRY_SCHEDULED)
                .order_by(TaskEvent.id.desc()).limit(20)).all()
        for data in recent:            # deferrals (outages) are not backoff steps
            delay = (data or {}).get("delay_s")
            if not (data or {}).get("deferred") and isinstance(delay, (int, float)):
                return float(delay)
        return None

    def list(self, status: Optional[str] = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.session() as s:
            q = select(Task).order_by(Task.created_at.desc()).limit(limit)
            if status:
                q = q.where(Task.status == status)
            return [task_summary(t) for t in s.scalars(q).all()]


def _spec(t: Task) -> TaskSpec:
    return TaskSpec(id=t.id, source_uri=t.source_uri, output_uri=t.output_uri, ladder=t.ladder,
                    options=t.options or {}, priority=t.priority, attempts=t.attempts,
                    max_attempts=t.max_attempts, kind=t.kind or TaskKind.WHOLE, parent_id=t.parent_id,
                    range_start=t.range_start, range_end=t.range_end)


def status_json(s: Session, t: Task) -> dict[str, Any]:
    """The `framepress status --json` shape of DESIGN §3, read in the caller's session."""
    events = s.scalars(select(TaskEvent).where(TaskEvent.task_id == t.id)
                       .order_by(TaskEvent.id)).all()
    rends = s.scalars(select(RenditionRow).where(RenditionRow.task_id == t.id)
                      .order_by(RenditionRow.height.desc())).all()
    out = task_summary(t)
    if t.kind == TaskKind.PARENT:
        from framepress.service.split import chunks
        out.update(chunks.summaries(s, t))
    out["events"] = [{"kind": e.kind, "at": iso(e.at), "stage": e.stage,
                      "worker_id": e.worker_id, "attempt": e.attempt, "message": e.message,
                      "data": e.data or {}} for e in events]
    out["renditions"] = [{"name": r.name, "uri": r.uri, "playlist_uri": r.playlist_uri,
                          "width": r.width, "height": r.height, "frames": r.frames,
                          "bytes": r.bytes, "bitrate": r.bitrate, "codec": r.codec,
                          "codec_string": r.codec_string, "target_bitrate": r.target_bitrate,
                          "choice": r.choice, "psnr": r.psnr, "ssim": r.ssim} for r in rends]
    return out


def task_summary(t: Task) -> dict[str, Any]:
    return {"id": t.id, "status": t.status, "attempts": t.attempts,
            "max_attempts": t.max_attempts, "priority": t.priority, "progress": t.progress,
            "last_error": t.last_error, "worker_id": t.worker_id, "source_uri": t.source_uri,
            "output_uri": t.output_uri, "ladder": (t.ladder or {}).get("name"),
            "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
            "started_at": iso(t.started_at), "finished_at": iso(t.finished_at),
            "kind": t.kind or TaskKind.WHOLE, "parent_id": t.parent_id,
            "range": None if t.range_start is None else [t.range_start, t.range_end]}


def stage_leftover_cleanup(s: Session, task_id: str) -> None:
    """The task settled without publishing (escalated, failed, cancelled): stage the deletion of
    whatever its attempts uploaded, crashed ones included."""
    from framepress.service.attempt_output import attempts_root, task_prefix
    output_uri = s.scalar(select(Task.output_uri).where(Task.id == task_id))
    if output_uri:
        outbox.stage_all(s, task_id, [outbox.Outgoing.delete_objects(
            attempts_root(task_prefix(output_uri, task_id)))])


def _event(s: Session, task_id: str, kind: str, *, stage: Optional[str] = None,
           worker_id: Optional[str] = None, attempt: Optional[int] = None, message: str = "",
           data: Optional[dict[str, Any]] = None) -> None:
    s.add(TaskEvent(task_id=task_id, at=db_now(), kind=kind, stage=stage, worker_id=worker_id,
                    attempt=attempt, message=message or None, data=data or {}))
    # Flush per event so ids (the timeline order) follow the order of the calls.
    s.flush()


__all__ = ["TaskStore", "Lease", "TakeResult", "TaskSpec", "EventKind", "task_summary", "status_json"]
