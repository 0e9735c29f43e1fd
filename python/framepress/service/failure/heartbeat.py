"""The worker's background beat: the `workers` row, the task's progress and its lease.

One daemon thread writes, so neither the engine's callback thread nor the broker's thread ever
waits on the database: the engine only drops its latest progress here. Progress is written at
most once a second; the worker row and the lease every `interval` seconds, stamped with the
database's clock. If a write finds the lease taken over, the engine is cancelled at once (a stale
worker must not keep working).

The liveness beat (`health.beat()`, for /healthz) comes from a second small thread, so a write
waiting on an unreachable database (bounded by the engine's timeouts) never makes a live worker
look dead; only a write stuck past `WRITE_STUCK_S` does.

`reachable_since` is the database time since which this worker's beats have been getting through
without a gap: a worker that reaches the database only since a moment ago cannot tell whether
another's silence before that moment was death or an outage (see `TaskStore.take`).
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import update

from framepress.service.db import Database, Worker, db_now, now_of
from framepress.service.errors import StaleLease
from framepress.service.tasks import Lease, TaskStore

log = logging.getLogger("framepress.worker")

PROGRESS_MIN_INTERVAL_S = 1.0
#: A single database write in flight for longer than this means the writer is wedged.
WRITE_STUCK_S = 60.0
#: "Reachable since" when no beat has got through yet: as if the database had just come back.
UNKNOWN = datetime.max.replace(tzinfo=timezone.utc)


class Heartbeat(threading.Thread):
    def __init__(self, db: Database, store: TaskStore, worker_id: str, interval: float,
                 health: Any = None):
        super().__init__(name="framepress-heartbeat", daemon=True)
        self.db, self.store, self.worker_id, self.interval = db, store, worker_id, interval
        self.health = health    # health.Health: liveness facts for /healthz
        self.state = "idle"
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._lease: Optional[Lease] = None
        self._cancel: Any = None
        self._progress: Optional[float] = None
        self._written_progress: Optional[float] = None
        self.lease_lost = False
        self.last_beat = 0.0
        self._last_ok: Optional[datetime] = None      # database time of the last beat written
        self._reachable_since: Optional[datetime] = None
        self._write_started: Optional[float] = None   # monotonic, while a write is in flight

    @property
    def reachable_since(self) -> datetime:
        """Database time since which every beat got through (`UNKNOWN` before the first)."""
        return self._reachable_since or UNKNOWN

    # ---- called by the worker and the engine ------------------------------------------------

    def begin_task(self, lease: Lease, cancel_token: Any) -> None:
        with self._lock:
            self._lease, self._cancel = lease, cancel_token
            self._progress = self._written_progress = 0.0
            self.lease_lost = False
            self.state = "draining" if self.state == "draining" else "busy"
        if self.health is not None:
            self.health.task_started(lease.task_id)

    def end_task(self) -> None:
        with self._lock:
            self._lease = self._cancel = None
            self._progress = None
            self.state = "draining" if self.state == "draining" else "idle"
        if self.health is not None:
            self.health.task_finished()

    def engine_stage(self, running: bool) -> None:
        """The engine stage started or ended: only it is timed for "engine stuck"."""
        if self.health is not None:
            (self.health.engine_started if running else self.health.engine_finished)()

    def report_progress(self, fraction: float) -> None:
        self._progress = fraction  # a float store: safe from the engine's thread
        if self.health is not None:
            self.health.progress()

    def stop(self, state: str = "stopped") -> None:
        self.state = state
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
        try:
            self._beat()  # the row says "stopped" at once instead of going silent
        except Exception as exc:  # noqa: BLE001  shutting down anyway; the reaper will notice
            log.warning("last heartbeat not written: %r", exc, extra={"worker_id": self.worker_id})

    # ---- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        if self.health is not None:
            threading.Thread(target=self._liveness, name="framepress-liveness", daemon=True).start()
        last_progress_write = 0.0
        while not self._stop_event.wait(0.25):
            now = time.monotonic()
            try:
                if (self._lease is not None and self._progress != self._written_progress
                        and now - last_progress_write >= PROGRESS_MIN_INTERVAL_S):
                    last_progress_write = now
                    self._timed(self._write_progress)
                if now - self.last_beat >= self.interval:
                    self._timed(self._beat)
            except Exception as exc:  # noqa: BLE001  a database blip must not kill the beat
                self._last_ok = None          # the database was not reachable just now
                log.warning("heartbeat write failed: %r", exc, extra={"worker_id": self.worker_id})

    def _timed(self, write) -> None:
        self._write_started = time.monotonic()
        try:
            write()
        finally:
            self._write_started = None

    def _liveness(self) -> None:
        # Beats even when the database is down: liveness is about the writer not being wedged;
        # a DB outage is the breakers' business, not a reason to restart the pod.
        while not self._stop_event.wait(0.25):
            started = self._write_started
            if self.is_alive() and (started is None or time.monotonic() - started < WRITE_STUCK_S):
                self.health.beat()

    def _write_progress(self) -> None:
        with self._lock:
            lease, progress, cancel = self._lease, self._progress, self._cancel
        if lease is None or progress is None:
            return
        try:
            self.store.progress(lease, progress)
            self._written_progress = progress
        except StaleLease as exc:
            self.lease_lost = True
            log.warning("%s; cancelling the engine", exc,
                        extra={"worker_id": self.worker_id, "task_id": lease.task_id})
            if cancel is not None:
                cancel.cancel()

    def _beat(self) -> None:
        self.last_beat = time.monotonic()
        with self._lock:
            lease, progress = self._lease, self._progress
        with self.db.session() as s:
            s.execute(update(Worker).where(Worker.id == self.worker_id).values(
                heartbeat_at=db_now(), state=self.state,
                current_task_id=lease.task_id if lease else None, progress=progress))
            now = now_of(s)
        last, self._last_ok = self._last_ok, now
        if last is None or (now - last).total_seconds() > 2.5 * self.interval:
            self._reachable_since = now       # a gap: count from here
        if lease is not None:
            try:
                self.store.renew(lease)
            except StaleLease:
                self._write_progress()  # takes the cancel path above
