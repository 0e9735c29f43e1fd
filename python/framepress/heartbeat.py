"""The worker's background beat: the `workers` row, the task's progress and its lease.

One daemon thread, so neither the engine's callback thread nor the broker's thread ever waits on
the database: the engine only drops its latest progress here. Progress is written at most once a
second; the worker row and the lease every `interval` seconds. If a write finds the lease taken
over, the engine is cancelled at once (a stale worker must not keep working).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from sqlalchemy import update

from .db import Database, Worker, utcnow
from .service_errors import StaleLease
from .tasks import Lease, TaskStore

log = logging.getLogger("framepress.worker")

PROGRESS_MIN_INTERVAL_S = 1.0


class Heartbeat(threading.Thread):
    def __init__(self, db: Database, store: TaskStore, worker_id: str, interval: float,
                 health: Any = None):
        super().__init__(name="framepress-heartbeat", daemon=True)
        self.db, self.store, self.worker_id, self.interval = db, store, worker_id, interval
        self.health = health    # health.Health: liveness facts for /healthz (issue 4)
        self.state = "idle"
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._lease: Optional[Lease] = None
        self._cancel: Any = None
        self._progress: Optional[float] = None
        self._written_progress: Optional[float] = None
        self.lease_lost = False
        self.last_beat = 0.0

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
        last_progress_write = 0.0
        while not self._stop_event.wait(0.25):
            now = time.monotonic()
            if self.health is not None:
                # Beats even when the database is down: liveness is about this thread not being
                # wedged; a DB outage is the breakers' business, not a reason to restart the pod.
                self.health.beat()
            try:
                if (self._lease is not None and self._progress != self._written_progress
                        and now - last_progress_write >= PROGRESS_MIN_INTERVAL_S):
                    last_progress_write = now
                    self._write_progress()
                if now - self.last_beat >= self.interval:
                    self._beat()
            except Exception as exc:  # noqa: BLE001  a database blip must not kill the beat
                log.warning("heartbeat write failed: %r", exc, extra={"worker_id": self.worker_id})

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
                heartbeat_at=utcnow(), state=self.state,
                current_task_id=lease.task_id if lease else None, progress=progress))
        if lease is not None:
            try:
                self.store.renew(lease)
            except StaleLease:
                self._write_progress()  # takes the cancel path above
