"""The reaper: finds workers whose heartbeat stopped and requeues their tasks (DESIGN §3, §4).

One round:
1. a worker silent for longer than `worker_timeout` becomes `lost`, with a `worker_lost` event on
   the task it held;
2. a `running` task whose worker is lost, or whose lease ran out long ago, becomes `incomplete`
   (`incomplete` event) and its lease token is bumped: the silent worker, should it wake up
   (SIGCONT after SIGSTOP), is fenced off and uploads nothing;
3. it is then `queued` again (`requeued` event) and its ID published, unless a worker has taken
   it meanwhile (the broker redelivered it when the dead worker's connection dropped). The lost
   attempt stays counted: the take that started it already counted it;
4. a task still in `retry_wait` long after its retry was due (its delayed message lost, say in
   a broker failure) is published again. A duplicate is harmless: the take sorts it out.

The reaper runs as `framepress reaper` or inside workers; on Postgres each round is led by the
one process that gets an advisory lock, the others stand by.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Optional

from sqlalchemy import select, text

from . import metrics
from .db import Database, Task, TaskStatus, Worker, utcnow
from .tasks import EventKind, _event

log = logging.getLogger("framepress.reaper")

REAPER_LOCK_ID = 0x66707270  # "fprp": any constant shared by every framepress process
LIVE_STATES = ("starting", "idle", "busy", "draining", "paused")


@dataclass
class ReapReport:
    lost_workers: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)       # taken by another worker meanwhile

    def to_dict(self) -> dict[str, Any]:
        return {"lost_workers": self.lost_workers, "incomplete": self.incomplete,
                "requeued": self.requeued, "skipped": self.skipped}

    def __bool__(self) -> bool:
        return bool(self.lost_workers or self.incomplete or self.requeued)


def _aware(dt: Optional[datetime]) -> Optional[datetime]:
    from datetime import timezone
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class Reaper:
    def __init__(self, db: Database, publish: Callable[[str, int], None], *,
                 worker_timeout: float = 30.0, lease_grace: float = 10.0,
                 stale_retry_after: float = 600.0,
                 clock: Callable[[], datetime] = utcnow, reaper_id: str = "reaper") -> None:
        """`publish(task_id, priority)` puts a task ID on the tasks queue (broker.publish_task)."""
        self.db = db
        self.publish = publish
        self.worker_timeout = worker_timeout
        self.lease_grace = lease_grace
        self.stale_retry_after = stale_retry_after
        self.clock = clock
        self.reaper_id = reaper_id

    def reap_once(self) -> ReapReport:
        report = ReapReport()
        now = self.clock()
        cutoff = now - timedelta(seconds=self.worker_timeout)
        lost: set[str] = set()
        with self.db.session() as s:
            for w in s.scalars(select(Worker).where(Worker.state.in_(LIVE_STATES),
                                                    Worker.heartbeat_at < cutoff)
                               .with_for_update(skip_locked=True)).all():
                silent = (now - _aware(w.heartbeat_at)).total_seconds()
                w.state = "lost"
                lost.add(w.id)
                report.lost_workers.append(w.id)
                metrics.worker_lost()
                log.warning("worker %s silent for %.0f s: lost", w.id, silent,
                            extra={"worker_id": w.id, "task_id": w.current_task_id,
                                   "kind": EventKind.WORKER_LOST})
                if w.current_task_id and s.get(Task, w.current_task_id) is not None:
                    _event(s, w.current_task_id, EventKind.WORKER_LOST, worker_id=w.id,
                           message=f"worker {w.id} silent for {silent:.0f} s",
                           data={"worker_id": w.id, "hostname": w.hostname, "pod": w.pod,
                                 "pid": w.pid, "heartbeat_at": w.heartbeat_at.isoformat(),
                                 "silent_seconds": round(silent, 1), "reaper": self.reaper_id})

        # Running tasks whose holder is lost, or whose lease expired well ago (a holder that
        # never registered, or one whose row was already marked lost in an earlier round).
        lease_cutoff = now - timedelta(seconds=self.lease_grace)
        with self.db.session() as s:
            lost_ids = set(lost) | set(s.scalars(select(Worker.id).where(Worker.state == "lost")))
            candidates = s.execute(select(Task.id, Task.worker_id, Task.lease_expires_at)
                                   .where(Task.status == TaskStatus.RUNNING)).all()
        for task_id, holder, expires in candidates:
            expired = expires is not None and _aware(expires) < lease_cutoff
            if holder in lost_ids or expired:
                self._requeue(task_id, holder, "worker lost" if holder in lost_ids
                              else "lease expired", report)

        # A requeue whose publish failed left the task `incomplete`: publish again once it has
        # sat there a while (not racing a requeue that is in progress).
        with self.db.session() as s:
            stranded = s.scalars(select(Task.id).where(Task.status == TaskStatus.INCOMPLETE,
                                                       Task.updated_at < lease_cutoff)).all()
        for task_id in stranded:
            if task_id not in report.incomplete:
                self._requeue(task_id, None, "stranded incomplete task", report)
        self._republish_overdue_retries(now, report)
        self._export_backlog_age(now)
        return report

    def _export_backlog_age(self, now: datetime) -> None:
        """Age of the oldest task waiting to be taken, for the backlog alert."""
        with self.db.session() as s:
            oldest = s.scalar(select(Task.created_at).where(Task.status == TaskStatus.QUEUED)
                              .order_by(Task.created_at).limit(1))
        metrics.queue_oldest_age((now - _aware(oldest)).total_seconds() if oldest else 0.0)

    def _republish_overdue_retries(self, now: datetime, report: ReapReport) -> None:
        overdue_before = now - timedelta(seconds=self.stale_retry_after)
        with self.db.session() as s:
            rows = s.scalars(select(Task).where(Task.status == TaskStatus.RETRY_WAIT,
                                                Task.next_attempt_at < overdue_before)
                             .with_for_update(skip_locked=True)).all()
            todo = []
            for t in rows:
                # Push the due time on, so a long queue gets one extra copy per period, not one
                # per round.
                t.next_attempt_at = now
                _event(s, t.id, EventKind.REQUEUED, attempt=t.attempts,
                       message=f"retry overdue by more than {self.stale_retry_after:.0f} s: "
                               f"published again", data={"reaper": self.reaper_id})
                todo.append((t.id, t.priority))
        for task_id, priority in todo:
            try:
                self.publish(task_id, priority)
                report.requeued.append(task_id)
            except Exception as exc:
                log.warning("could not republish task %s: %r", task_id, exc,
                            extra={"task_id": task_id})

    def _requeue(self, task_id: str, holder: Optional[str], why: str, report: ReapReport) -> None:
        with self.db.session() as s:
            t = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
            if t is None:
                return
            if t.status == TaskStatus.RUNNING:
                if t.worker_id != holder:               # taken by another worker meanwhile
                    report.skipped.append(task_id)
                    return
                t.status = TaskStatus.INCOMPLETE
                t.lease_token += 1                      # fence the silent worker off
                t.lease_expires_at = None
                t.updated_at = self.clock()
                _event(s, t.id, EventKind.INCOMPLETE, worker_id=holder, attempt=t.attempts,
                       message=f"{why}: attempt {t.attempts} did not finish",
                       data={"worker_id": holder, "reason": why, "reaper": self.reaper_id})
                report.incomplete.append(task_id)
            elif t.status != TaskStatus.INCOMPLETE:
                report.skipped.append(task_id)
                return
            token, priority = t.lease_token, t.priority
        try:
            self.publish(task_id, priority)
        except Exception as exc:  # the broker is down: stays incomplete, next round retries
            log.warning("could not requeue task %s: %r", task_id, exc, extra={"task_id": task_id})
            return
        with self.db.session() as s:
            t = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
            # If a worker already took the new message, the task is running: leave it be.
            if t is not None and t.status == TaskStatus.INCOMPLETE and t.lease_token == token:
                t.status = TaskStatus.QUEUED
                t.updated_at = self.clock()
            _event(s, task_id, EventKind.REQUEUED, worker_id=None,
                   attempt=t.attempts if t is not None else None,
                   message=f"requeued ({why})",
                   data={"previous_worker": holder, "reaper": self.reaper_id})
        report.requeued.append(task_id)
        log.warning("task %s requeued (%s)", task_id, why,
                    extra={"task_id": task_id, "kind": EventKind.REQUEUED})


class Leadership:
    """One reaper per round: a transaction-level Postgres advisory lock, held for the round.

    Per round rather than for the process's life, so a leader that stops (SIGSTOP, a hung node)
    does not block reaping: its lock goes when its transaction ends, and a transaction left
    open by a stopped process is ended by Postgres after `idle_in_transaction_session_timeout`.
    SQLite (embedded mode, one machine) has no such lock: every caller leads.
    """

    def __init__(self, db: Database, lock_id: int = REAPER_LOCK_ID, *,
                 stall_timeout: float = 30.0) -> None:
        self.db = db
        self.lock_id = lock_id
        self.stall_timeout = stall_timeout
        self._conn = None

    @property
    def supported(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    def acquire(self) -> bool:
        """Start a round: True if this process leads it (call `release()` after the round)."""
        if not self.supported:
            return True
        self.release()
        conn = None
        try:
            conn = self.db.engine.connect()
            ms = max(1000, int(self.stall_timeout * 1000))
            conn.exec_driver_sql(f"SET idle_in_transaction_session_timeout = {ms}")
            got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:id)"),
                               {"id": self.lock_id}).scalar()
            if got:
                self._conn = conn          # the transaction stays open: the lock with it
                return True
        except Exception as exc:
            log.warning("reaper leadership check failed: %r", exc)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.rollback()            # ends the transaction: the lock is released
                conn.close()
            except Exception:
                pass


def run(reaper: Reaper, stop: threading.Event, *, interval: float = 5.0,
        leadership: Optional[Leadership] = None,
        on_round: Optional[Callable[[ReapReport], None]] = None,
        alongside: Optional[Callable[[], object]] = None) -> None:
    """Reap every `interval` seconds until `stop` is set, when leader. `alongside` runs every
    interval whether this process leads or not (the pod-cost step: idempotent, never raises)."""
    leadership = leadership or Leadership(reaper.db, stall_timeout=max(10.0, 3 * interval))
    leading = False
    try:
        while not stop.is_set():
            try:
                now_leading = leadership.acquire()
                if now_leading != leading:
                    log.debug("reaper %s: %s", reaper.reaper_id,
                              "leading" if now_leading else "standing by")
                    leading = now_leading
                if leading:
                    report = reaper.reap_once()
                    if on_round is not None:
                        on_round(report)
            except Exception as exc:  # the database is down: try again next round
                log.warning("reaper round failed: %r", exc)
            finally:
                leadership.release()
            if alongside is not None:
                alongside()
            stop.wait(interval)
    finally:
        leadership.release()


def start_thread(reaper: Reaper, stop: threading.Event, *, interval: float = 5.0) -> threading.Thread:
    """The reaper inside a worker: a daemon thread, leader-elected like the standalone one."""
    t = threading.Thread(target=run, args=(reaper, stop), kwargs={"interval": interval},
                         name="framepress-reaper", daemon=True)
    t.start()
    return t


__all__ = ["Reaper", "ReapReport", "Leadership", "run", "start_thread", "REAPER_LOCK_ID"]
