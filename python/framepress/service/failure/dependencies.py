"""The worker's dependencies (S3 and the database) as circuit breakers with probes.

An outage (classified `dependency`) counts against the dependency's breaker; while any breaker is
open the worker holds its next delivery (prefetch 1, so the rest stay queued) and probes the
dependency until it answers.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from framepress.service.failure.breaker import Breakers, CircuitBreaker
from framepress.service.failure.classification import DEPENDENCY, classify, dependency_of

log = logging.getLogger("framepress.worker")


def s3_probe() -> None:
    """Does the S3 endpoint answer? Any answer counts as up (even AccessDenied: the credentials
    are the tasks' business) except the ones that say it is down: 5xx, SlowDown, throttling."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    client = boto3.client("s3", config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                              read_timeout=5))
    try:
        client.list_buckets()
    except ClientError as exc:
        if classify(exc) == DEPENDENCY:
            raise


class Dependencies:
    """Breakers for "s3" and "database"; `on_change(open_names)` hears every change."""

    def __init__(self, db, *, failure_threshold: int = 3, probe_interval: float = 2.0,
                 max_probe_interval: float = 30.0, s3_probe: Callable[[], None] = s3_probe,
                 on_change: Optional[Callable[[list[str]], None]] = None) -> None:
        self.db = db
        kw = dict(failure_threshold=failure_threshold, probe_interval=probe_interval,
                  max_probe_interval=max_probe_interval)
        self.breakers = Breakers([CircuitBreaker("s3", s3_probe, **kw),
                                  CircuitBreaker("database", self._db_probe, **kw)])
        self.on_change = on_change
        self.breakers.add_listener(self._changed)

    @classmethod
    def from_settings(cls, settings, db, **kw) -> "Dependencies":
        return cls(db, failure_threshold=settings.breaker_threshold,
                   probe_interval=settings.breaker_probe_seconds,
                   max_probe_interval=settings.breaker_max_probe_seconds, **kw)

    def _db_probe(self) -> None:
        with self.db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def _changed(self, breaker: CircuitBreaker, old: str, new: str) -> None:
        if new == "open" and old == "closed":
            log.warning("%s unavailable (%s): pausing consumption", breaker.name,
                        breaker.last_error)
        elif new == "closed":
            log.info("%s answers again: resuming", breaker.name)
        if self.on_change is not None:
            self.on_change(self.breakers.open_names())

    def get(self, name: str) -> Optional[CircuitBreaker]:
        return self.breakers.get(name)

    def __getitem__(self, name: str) -> CircuitBreaker:
        return self.breakers[name]

    def record_outage(self, error: BaseException, default: str = "database") -> Optional[str]:
        """Count `error` against its dependency's breaker if it is an outage; returns the
        dependency's name, or None when the error is not an outage."""
        if classify(error) != DEPENDENCY:
            return None
        name = dependency_of(error, default)
        breaker = self.breakers.get(name)
        if breaker is not None:
            breaker.record_failure(error)
        return name

    def record_success(self) -> None:
        for b in self.breakers:
            if b.consecutive_failures:
                b.record_success()

    def any_open(self) -> bool:
        return self.breakers.any_open()

    def wait(self, stop: threading.Event, *, give_up: Optional[Callable[[], bool]] = None,
             give_up_every: float = 5.0, poll: float = 0.25) -> bool:
        """Block while any breaker is open, probing when due. False if `stop` was set first, or
        if `give_up()` (asked every `give_up_every` seconds while waiting) says so."""
        asked = time.monotonic()
        while self.breakers.any_open():
            if stop.is_set():
                return False
            if give_up is not None and time.monotonic() - asked >= give_up_every:
                asked = time.monotonic()
                if give_up():
                    return False
            self.breakers.probe_all()
            if self.breakers.any_open():
                stop.wait(poll)
        return not stop.is_set()
