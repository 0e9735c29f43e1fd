"""Liveness and readiness of a worker, for /healthz and /readyz.

The worker reports facts (a heartbeat happened, the engine made progress, connected, draining);
``healthz()`` and ``readyz()`` turn them into (ok, reason) for ``metrics.start_server``.

- healthz (liveness: restart me if false): the heartbeat thread is alive and beating, and the
  engine is not stuck (the engine stage of a task is running but has made no progress for
  ``stuck_after`` seconds). Pulling and uploading are not timed here: a long transfer is not a
  wedged engine (transfers have their own timeouts).
- readyz (send me work): connected to the broker, not draining, no dependency breaker open.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional


class Health:
    def __init__(self, *, heartbeat_interval: float = 5.0, stuck_after: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.stuck_after = stuck_after
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat: Optional[float] = None
        self._beat_thread: Optional[threading.Thread] = None
        self._task_id: Optional[str] = None
        self._last_progress: Optional[float] = None
        self._connected = False
        self._draining = False
        self._paused_reason = ""
        #: Optional live answer to "connected to the broker?" (overrides set_connected).
        self.connected_fn: Optional[Callable[[], bool]] = None

    # --- facts from the worker ---------------------------------------------------------------
    def beat(self) -> None:
        """Called by the heartbeat thread each round (after writing its workers row)."""
        with self._lock:
            self._last_beat = self._clock()
            self._beat_thread = threading.current_thread()

    def task_started(self, task_id: str) -> None:
        with self._lock:
            self._task_id = str(task_id)
            self._last_progress = None

    def engine_started(self) -> None:
        """The task's engine stage begins: from now on, no progress for long means stuck."""
        with self._lock:
            self._last_progress = self._clock()

    def progress(self) -> None:
        """Called from the engine's progress callback: it is moving."""
        with self._lock:
            if self._last_progress is not None:    # only inside the engine stage
                self._last_progress = self._clock()

    def engine_finished(self) -> None:
        with self._lock:
            self._last_progress = None

    def task_finished(self) -> None:
        with self._lock:
            self._task_id = None
            self._last_progress = None

    def set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected

    def set_draining(self, draining: bool = True) -> None:
        with self._lock:
            self._draining = draining

    def set_paused(self, reason: str = "") -> None:
        """Consumption paused by an open circuit breaker ("" to clear)."""
        with self._lock:
            self._paused_reason = reason

    # --- derived -----------------------------------------------------------------------------
    @property
    def current_task(self) -> Optional[str]:
        with self._lock:
            return self._task_id

    @property
    def draining(self) -> bool:
        with self._lock:
            return self._draining

    @property
    def engine_running(self) -> bool:
        """Inside a task's engine stage (the only time "engine stuck" is measured)."""
        with self._lock:
            return self._last_progress is not None

    def stalled_for(self) -> float:
        """Seconds since the running engine last made progress (0 outside the engine stage)."""
        with self._lock:
            if self._task_id is None or self._last_progress is None:
                return 0.0
            return self._clock() - self._last_progress

    def engine_stuck(self) -> bool:
        return self.stuck_after > 0 and self.stalled_for() > self.stuck_after

    def healthz(self) -> tuple[bool, str]:
        now = self._clock()
        with self._lock:
            last_beat, thread, task = self._last_beat, self._beat_thread, self._task_id
            last_progress = self._last_progress
        if last_beat is None:
            return False, "heartbeat has not started"
        if thread is not None and not thread.is_alive():
            return False, "heartbeat thread died"
        # Three missed rounds: the thread is wedged (e.g. blocked on a dead DB connection).
        late = now - last_beat
        if late > 3 * self.heartbeat_interval:
            return False, f"no heartbeat for {late:.0f}s"
        if task is not None and last_progress is not None and self.stuck_after > 0:
            stalled = now - last_progress
            if stalled > self.stuck_after:
                return False, f"engine stuck: no progress on task {task} for {stalled:.0f}s"
        return True, "ok"

    def readyz(self) -> tuple[bool, str]:
        with self._lock:
            connected, draining, paused = self._connected, self._draining, self._paused_reason
        if self.connected_fn is not None:
            try:
                connected = bool(self.connected_fn())
            except Exception:
                connected = False
        if draining:
            return False, "draining"
        if not connected:
            return False, "not connected to the broker"
        if paused:
            return False, f"paused: {paused}"
        return True, "ok"

    def snapshot(self) -> dict:
        ok, why = self.healthz()
        ready, rwhy = self.readyz()
        return {"healthy": ok, "health_reason": why, "ready": ready, "ready_reason": rwhy,
                "task_id": self.current_task, "stalled_for": round(self.stalled_for(), 1)}
