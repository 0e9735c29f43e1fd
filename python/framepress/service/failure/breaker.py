"""Circuit breakers, one per dependency (the worker has one for S3 and one for the database).

closed --N consecutive outages--> open --probe interval--> half-open --probe ok--> closed
                                    ^----------------- probe fails -----------'

While any breaker is open the worker takes no new task: tasks stay safely in the queue instead of
each burning retry budget against a dependency that is down. The probe is a cheap call (S3
``list_buckets``, the database's ``SELECT 1``; see `dependencies`) that the worker runs through
``maybe_probe()`` while it holds its next delivery; probe intervals back off (doubling up to a
cap) so a long outage is not hammered.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, Optional

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

Listener = Callable[["CircuitBreaker", str, str], None]   # (breaker, old state, new state)


class CircuitBreaker:
    def __init__(self, name: str, probe: Optional[Callable[[], object]] = None, *,
                 failure_threshold: int = 3, probe_interval: float = 2.0,
                 max_probe_interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Optional[Listener] = None) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.probe = probe
        self.failure_threshold = failure_threshold
        self.probe_interval = probe_interval
        self.max_probe_interval = max_probe_interval
        self._clock = clock
        self._listeners: list[Listener] = [on_change] if on_change else []
        self._lock = threading.RLock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._next_probe_at = 0.0
        self._interval = probe_interval
        self.last_error: str = ""

    # --- state -----------------------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def is_open(self) -> bool:
        """True while calls should not be attempted (open or being probed)."""
        return self.state != CLOSED

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _set(self, new: str) -> None:
        old, self._state = self._state, new
        if old == new:
            return
        log.warning("circuit breaker %s: %s -> %s%s", self.name, old, new,
                    f" ({self.last_error})" if new == OPEN and self.last_error else "")
        for listener in list(self._listeners):
            try:
                listener(self, old, new)
            except Exception:  # a listener's bug must not wedge the breaker
                log.exception("circuit breaker %s listener failed", self.name)

    # --- outcomes reported by callers --------------------------------------------------------
    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._interval = self.probe_interval
            self._set(CLOSED)

    def record_failure(self, error: object = "") -> None:
        """An outage of the dependency (classified ``dependency``). Opens after the threshold."""
        with self._lock:
            self._failures += 1
            if error:
                self.last_error = str(error)[:500]
            if self._state == CLOSED and self._failures >= self.failure_threshold:
                self._open(reset_interval=True)
            elif self._state == HALF_OPEN:
                self._open(reset_interval=False)

    def _open(self, reset_interval: bool) -> None:
        now = self._clock()
        if reset_interval:
            self._interval = self.probe_interval
        else:
            self._interval = min(self.max_probe_interval, self._interval * 2)
        self._opened_at = now
        self._next_probe_at = now + self._interval
        self._set(OPEN)

    # --- probing ---------------------------------------------------------------------------
    def probe_due(self) -> bool:
        with self._lock:
            return self._state == OPEN and self._clock() >= self._next_probe_at

    def seconds_until_probe(self) -> float:
        with self._lock:
            if self._state != OPEN:
                return 0.0
            return max(0.0, self._next_probe_at - self._clock())

    def maybe_probe(self) -> bool:
        """Run the probe if one is due; returns True when the breaker is closed afterwards.

        The probe runs outside the lock (it does network I/O); the half-open state keeps a
        second thread from probing at the same time.
        """
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == HALF_OPEN or self._clock() < self._next_probe_at:
                return False
            self._set(HALF_OPEN)
            probe = self.probe
        try:
            if probe is not None:
                probe()
        except Exception as exc:  # the dependency still does not answer
            self.record_failure(exc)
            return False
        self.record_success()
        return True


class Breakers:
    """The worker's set of breakers; consumption pauses while any is open."""

    def __init__(self, breakers: Iterable[CircuitBreaker] = ()) -> None:
        self._by_name: dict[str, CircuitBreaker] = {}
        self._listeners: list[Listener] = []
        for b in breakers:
            self.add(b)

    def add(self, breaker: CircuitBreaker) -> CircuitBreaker:
        self._by_name[breaker.name] = breaker
        breaker.add_listener(self._relay)
        return breaker

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _relay(self, breaker: CircuitBreaker, old: str, new: str) -> None:
        for listener in list(self._listeners):
            listener(breaker, old, new)

    def __getitem__(self, name: str) -> CircuitBreaker:
        return self._by_name[name]

    def get(self, name: str) -> Optional[CircuitBreaker]:
        return self._by_name.get(name)

    def __iter__(self):
        return iter(list(self._by_name.values()))

    def any_open(self) -> bool:
        return any(b.is_open for b in self)

    def open_names(self) -> list[str]:
        return [b.name for b in self if b.is_open]

    def probe_all(self) -> bool:
        """Probe every breaker that is due; True when all are closed afterwards."""
        for b in self:
            b.maybe_probe()
        return not self.any_open()
