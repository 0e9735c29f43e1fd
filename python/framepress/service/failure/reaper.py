"""The reaper: finds workers whose heartbeat stopped and requeues their tasks (DESIGN §3, §4).

One round:
1. a worker silent for longer than `worker_timeout` becomes `lost`, with a `worker_lost` event on
   the task it held;
2. a `running` task whose worker is lost, or whose lease ran out long ago, becomes `incomplete`
   (`incomplete` event) and its lease token is bumped: the silent worker, should it wake up
   (SIGCONT after SIGSTOP), is fenced off and uploads nothing;
3. in the same transaction it is `queued` again (`requeued` event) with its message staged in the
   outbox, then published; if the broker is away the relay publishes it later. The lost attempt
   stays counted: the take that started it already counted it;
4. a task still in `retry_wait` long after its retry was due (its delayed message lost, say in
   a broker failure) is published again the same way. A duplicate is harmless: the take sorts
   it out.

Every time is the database's (`db_now`). Silence counts only while the database was reachable:
the reaper notes since when it has reached the database without a gap (and when the server last
started), and a worker is lost only if it stayed silent for `worker_timeout` after that. So a
Postgres outage or restart makes nobody lost: every worker gets a full timeout to beat again.

The reaper runs as `framepress reaper` or inside workers; on Postgres each round is led by the
one process holding a session-level advisory lock on its own connection (`Leadership`), and the
round writes through that very connection: should the session end (the leader stalled past the
idle timeouts, or its connection broke), the lock is released and every later write of that
round fails with it, so two reapers never write at once.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator, Optional

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from framepress.scaling import metrics
from framepress.service import outbox
from framepress.service.db import Database, Task, TaskStatus, Worker, aware, db_now, now_of
from framepress.service.tasks import EventKind, _event

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


class Reaper:
    def __init__(self, db: Database, broker: Any, *,
                 worker_timeout: float = 30.0, lease_grace: float = 10.0,
                 stale_retry_after: float = 600.0, gap_seconds: float = 15.0,
                 reaper_id: str = "reaper") -> None:
        """`broker`: where requeued tasks' messages go (its tasks queue), through the outbox.
        `gap_seconds`: a pause this long between two successful looks at the database counts
        as an outage (`run` sets it from its interval)."""
        self.db = db
        self.queue = broker.tasks_queue
        self.relay = outbox.Relay(db, broker)
        self.worker_timeout = worker_timeout
        self.lease_grace = lease_grace
        self.stale_retry_after = stale_retry_after
        self.gap_seconds = gap_seconds
        self.reaper_id = reaper_id
        #: Database time since which this process has reached the database without a gap
        #: (None: no outage known since the server started).
        self.observed_since: Optional[datetime] = None
        self._last_seen: Optional[datetime] = None
        self._bind: Optional[Connection] = None

    # ---- when was the database reachable --------------------------------------------------------

    def observe(self) -> datetime:
        """Look at the database (every loop, leader or not); returns its time."""
        with self._session() as s:
            return self._observe(s)

    def _observe(self, s: Session) -> datetime:
        now = now_of(s)
        started = self._server_started(s)
        if self._last_seen is None:
            self.observed_since = started
        elif (now - self._last_seen).total_seconds() > self.gap_seconds:
            self.observed_since = now                    # we could not reach it for a while
        if started is not None and (self.observed_since is None or started > self.observed_since):
            self.observed_since = started                # it restarted (a crash, say)
        self._last_seen = now
        return now

    def _server_started(self, s: Session) -> Optional[datetime]:
        if self.db.engine.dialect.name != "postgresql":
            return None
        return aware(s.scalar(text("SELECT pg_postmaster_start_time()")))

    def _silent_since_reachable(self, cutoff: datetime) -> bool:
        """Could a silence that began before `cutoff` have been seen all along?"""
        return self.observed_since is None or self.observed_since < cutoff

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A transaction: on the leader's own connection while leading (see `Leadership`)."""
        if self._bind is None:
            with self.db.session() as s:
                yield s
        else:
            with Session(bind=self._bind, expire_on_commit=False) as s, s.begin():
                yield s

    # ---- a round --------------------------------------------------------------------------------

    def reap_once(self, conn: Optional[Connection] = None) -> ReapReport:
        """One round; with `conn` (the leader's connection) every write goes through it."""
        self._bind = conn
        try:
            return self._round()
        finally:
            self._bind = None

    def _round(self) -> ReapReport:
        report = ReapReport()
        with self._session() as s:
            now = self._observe(s)
        cutoff = now - timedelta(seconds=self.worker_timeout)
        judge = self._silent_since_reachable(cutoff)
        lost: set[str] = set()
        with self._session() as s:
            silent_workers = [] if not judge else s.scalars(
                select(Worker).where(Worker.state.in_(LIVE_STATES), Worker.heartbeat_at < cutoff)
                .with_for_update(skip_locked=True)).all()
            for w in silent_workers:
                silent = (now - aware(w.heartbeat_at)).total_seconds()
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
        with self._session() as s:
            lost_ids = set(lost) | set(s.scalars(select(Worker.id).where(Worker.state == "lost")))
            candidates = s.execute(select(Task.id, Task.worker_id, Task.lease_expires_at)
                                   .where(Task.status == TaskStatus.RUNNING)).all()
        for task_id, holder, expires in candidates:
            expired = judge and expires is not None and aware(expires) < lease_cutoff
            if holder in lost_ids or expired:
                self._requeue(task_id, holder, "worker lost" if holder in lost_ids
                              else "lease expired", report)

        self._republish_overdue_retries(now, report)
        self._export_backlog_age(now)
        return report

    def _export_backlog_age(self, now: datetime) -> None:
        """Age of the oldest task waiting to be taken, for the backlog alert."""
        with self._session() as s:
            oldest = s.scalar(select(Task.created_at).where(Task.status == TaskStatus.QUEUED)
                              .order_by(Task.created_at).limit(1))
        metrics.queue_oldest_age((now - aware(oldest)).total_seconds() if oldest else 0.0)

    def _republish_overdue_retries(self, now: datetime, report: ReapReport) -> None:
        overdue_before = now - timedelta(seconds=self.stale_retry_after)
        with self._session() as s:
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
                outbox.stage_task(s, self.queue, t.id, priority=t.priority)
                todo.append(t.id)
        for task_id in todo:
            report.requeued.append(task_id)
            self.relay.flush(task_id)

    def _requeue(self, task_id: str, holder: Optional[str], why: str, report: ReapReport) -> None:
        with self._session() as s:
            t = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
            if t is None:
                return
            if t.status != TaskStatus.RUNNING or t.worker_id != holder:
                report.skipped.append(task_id)          # taken by another worker meanwhile
                return
            # Incomplete, then queued again with its message staged, in one transaction: the
            # task is never left without a message, whatever the broker does.
            t.lease_token += 1                          # fence the silent worker off
            t.lease_expires_at = None
            t.status = TaskStatus.QUEUED
            t.updated_at = db_now()
            _event(s, t.id, EventKind.INCOMPLETE, worker_id=holder, attempt=t.attempts,
                   message=f"{why}: attempt {t.attempts} did not finish",
                   data={"worker_id": holder, "reason": why, "reaper": self.reaper_id})
            _event(s, t.id, EventKind.REQUEUED, attempt=t.attempts, message=f"requeued ({why})",
                   data={"previous_worker": holder, "reaper": self.reaper_id})
            outbox.stage_task(s, self.queue, t.id, priority=t.priority)
        report.incomplete.append(task_id)
        report.requeued.append(task_id)
        log.warning("task %s requeued (%s)", task_id, why,
                    extra={"task_id": task_id, "kind": EventKind.REQUEUED})
        self.relay.flush(task_id)


class Leadership:
    """One reaper at a time: a session-level Postgres advisory lock on a connection of its own.

    The lock lives as long as that session, and the leader's round writes through that session
    (`Reaper.reap_once(conn=...)`), so exclusivity cannot lapse mid-round: if the session ends,
    the lock and every later write of the round go with it. A leader that stops (SIGSTOP, a hung
    node) does not block reaping: Postgres ends its idle session after `stall_timeout`
    (`idle_session_timeout`, and `idle_in_transaction_session_timeout` should it stop inside a
    transaction), and the lock with it. Each round starts by checking the lock is still held.
    SQLite (embedded mode, one machine) has no such lock: every caller leads.
    """

    def __init__(self, db: Database, lock_id: int = REAPER_LOCK_ID, *,
                 stall_timeout: float = 30.0) -> None:
        self.db = db
        self.lock_id = lock_id
        self.stall_timeout = stall_timeout
        self._conn: Optional[Connection] = None

    @property
    def supported(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    @property
    def connection(self) -> Optional[Connection]:
        """The leader's connection (None on SQLite, or when not leading)."""
        return self._conn

    def acquire(self) -> bool:
        """True if this process leads the next round (holds the lock, checked just now)."""
        if not self.supported:
            return True
        if self._conn is not None:
            try:
                if self._holds(self._conn):
                    return True
                log.warning("reaper lock no longer held by this session")
            except Exception as exc:
                log.warning("reaper lock session lost: %r", exc)
            self._drop()
        conn = None
        try:
            conn = self.db.engine.connect()
            ms = max(1000, int(self.stall_timeout * 1000))
            conn.exec_driver_sql(f"SET idle_session_timeout = {ms}")
            conn.exec_driver_sql(f"SET idle_in_transaction_session_timeout = {ms}")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": self.lock_id}).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return True
        except Exception as exc:
            log.warning("reaper leadership check failed: %r", exc)
        if conn is not None:
            self._discard(conn)
        return False

    def _holds(self, conn: Connection) -> bool:
        held = conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND objsubid = 1"
            " AND classid::bigint = :hi AND objid::bigint = :lo"),
            {"hi": self.lock_id >> 32, "lo": self.lock_id & 0xFFFFFFFF}).scalar()
        conn.commit()
        return bool(held)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._discard(conn)

    @staticmethod
    def _discard(conn: Connection) -> None:
        # Closed for real, never back to the pool: the session (and any lock it holds) ends,
        # and its timeouts stay out of other work.
        try:
            conn.invalidate()
            conn.close()
        except Exception:
            pass

    def release(self) -> None:
        """Give up leadership (on stop)."""
        self._drop()


def run(reaper: Reaper, stop: threading.Event, *, interval: float = 5.0,
        leadership: Optional[Leadership] = None,
        on_round: Optional[Callable[[ReapReport], None]] = None,
        alongside: Optional[Callable[[], object]] = None) -> None:
    """Reap every `interval` seconds until `stop` is set, when leader. Every process keeps
    looking at the database each interval, so whichever leads knows when it was reachable.
    `alongside` runs every interval whether this process leads or not (the pod-cost step:
    idempotent, never raises)."""
    leadership = leadership or Leadership(reaper.db, stall_timeout=max(10.0, 3 * interval))
    reaper.gap_seconds = max(2.5 * interval, 3.0)
    leading = False
    try:
        while not stop.is_set():
            try:
                reaper.observe()
                now_leading = leadership.acquire()
                if now_leading != leading:
                    log.debug("reaper %s: %s", reaper.reaper_id,
                              "leading" if now_leading else "standing by")
                    leading = now_leading
                if leading:
                    report = reaper.reap_once(conn=leadership.connection)
                    if on_round is not None:
                        on_round(report)
            except Exception as exc:  # the database is down: try again next round
                log.warning("reaper round failed: %r", exc)
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
