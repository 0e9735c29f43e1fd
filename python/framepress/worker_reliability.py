"""Everything issue 4 adds to a worker, in one object the worker holds (`worker.reliability`):

- the failure policy (backoff, escalation notices) behind the worker's policy seam;
- circuit breakers for S3 and the database, with probes; `wait_for_dependencies()` holds the
  next delivery (prefetch 1, so the rest stay queued for healthy workers) while any is open;
- health facts for /healthz and /readyz;
- the SIGTERM drain state machine;
- the in-worker reaper thread (leader-elected on Postgres).

Its settings are `Settings` fields (each an environment variable and a CLI flag): retry_*,
escalation_webhook, engine_stuck_seconds, drain_timeout, breaker_*, worker_reaper,
worker_timeout and max_task_seconds (keep it below RabbitMQ's consumer_timeout, or raise both
together); docs/service.md lists them with their defaults.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from . import metrics
from .breaker import Breakers, CircuitBreaker
from .drain import Drainer
from .escalation import escalations_queue_for
from .failure_policy import BackoffPolicy, dependency_of_error
from .health import Health
from .errors import FramepressError
from .retry import DEPENDENCY, RetryPolicy, classify

log = logging.getLogger("framepress.worker")


def worker_timeout(settings) -> float:
    """Heartbeat silence before a worker is lost: the setting, else 3 heartbeats (at least the
    lease, so a lease is never taken over while its worker may still be alive)."""
    hb = settings.heartbeat_seconds or 5.0
    return settings.worker_timeout or max(3 * hb, settings.lease_seconds or 60.0)


def s3_probe() -> None:
    """Does the S3 endpoint answer at all? Any HTTP answer (even AccessDenied) counts as up."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    client = boto3.client("s3", config=Config(retries={"max_attempts": 1}, connect_timeout=2,
                                              read_timeout=5))
    try:
        client.list_buckets()
    except ClientError:
        pass


class TaskTimeout(FramepressError):
    """The task ran past FRAMEPRESS_MAX_TASK_SECONDS and was cancelled. Retried: a busy node may
    be the cause; a task that always overruns escalates when its attempts run out."""

    transient = True


class TaskWatch:
    """Cancels the engine when a task runs past its time limit."""

    def __init__(self, token, limit: float) -> None:
        self.limit = limit
        self.expired = False
        self._timer: Optional[threading.Timer] = None
        if limit > 0:
            self._timer = threading.Timer(limit, self._expire, args=(token,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, token) -> None:
        self.expired = True
        log.warning("task ran past %.0f s (FRAMEPRESS_MAX_TASK_SECONDS): cancelling", self.limit)
        token.cancel()

    def explain(self, exc: BaseException) -> BaseException:
        """The error to record: a TaskTimeout instead of the engine's Cancelled."""
        if not self.expired:
            return exc
        err = TaskTimeout(f"task exceeded the {self.limit:.0f} s limit "
                          f"(FRAMEPRESS_MAX_TASK_SECONDS) and was cancelled", step="timeout")
        err.__cause__ = exc
        return err

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class WorkerReliability:
    def __init__(self, settings, worker_id: str, db, broker, *,
                 s3_probe: Callable[[], None] = s3_probe) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.db = db
        self.broker = broker
        self.retry = RetryPolicy.from_settings(settings)
        self.health = Health(heartbeat_interval=settings.heartbeat_seconds or 5.0,
                             stuck_after=settings.engine_stuck_seconds)
        kw = dict(failure_threshold=settings.breaker_threshold,
                  probe_interval=settings.breaker_probe_seconds,
                  max_probe_interval=settings.breaker_max_probe_seconds)
        self.breakers = Breakers([CircuitBreaker("s3", s3_probe, **kw),
                                  CircuitBreaker("database", self._db_probe, **kw)])
        self.breakers.add_listener(self._on_breaker)
        if hasattr(broker, "consuming"):          # RabbitMQ: ready only while consuming
            self.health.connected_fn = lambda: bool(getattr(broker, "consuming", False))
        self.escalations_queue = escalations_queue_for(broker.tasks_queue)
        self.policy = BackoffPolicy(self.retry, breakers=self.breakers)
        self.drainer = Drainer(drain_timeout=settings.drain_timeout)
        self.max_task_seconds = settings.max_task_seconds
        self._reaper_stop = threading.Event()

    # --- dependencies --------------------------------------------------------------------------
    def _db_probe(self) -> None:
        with self.db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def _on_breaker(self, breaker: CircuitBreaker, old: str, new: str) -> None:
        open_names = self.breakers.open_names()
        self.health.set_paused(", ".join(f"{n} unavailable" for n in open_names))
        if new == "open" and old == "closed":
            log.warning("%s unavailable (%s): pausing consumption", breaker.name,
                        breaker.last_error, extra={"worker_id": self.worker_id})
        elif new == "closed":
            log.info("%s answers again: resuming", breaker.name,
                     extra={"worker_id": self.worker_id})

    def record_unhandled(self, exc: BaseException) -> None:
        """A delivery failed outside a task attempt (e.g. the database down at take)."""
        if classify(exc) == DEPENDENCY:
            breaker = self.breakers.get(dependency_of_error(exc, default="database"))
            if breaker is not None:
                breaker.record_failure(exc)

    def record_success(self) -> None:
        for b in self.breakers:
            if b.consecutive_failures:
                b.record_success()

    def wait_for_dependencies(self, stop: threading.Event, poll: float = 0.25) -> bool:
        """Block while any breaker is open, probing when due. False if `stop` was set first."""
        while self.breakers.any_open():
            if stop.is_set():
                return False
            self.breakers.probe_all()
            if self.breakers.any_open():
                stop.wait(poll)
        return not stop.is_set()

    def watch_task(self, token) -> TaskWatch:
        return TaskWatch(token, self.max_task_seconds)

    # --- health and drain --------------------------------------------------------------------------
    def start_metrics(self, port: int) -> None:
        if port:
            metrics.start_server(port, health=self.health.healthz, ready=self.health.readyz)

    def install_drain(self, on_drain: Callable[[], None], on_force: Callable[[], None]) -> None:
        def drain() -> None:
            self.health.set_draining(True)
            metrics.set_draining(True)
            on_drain()
        self.drainer.on_drain = drain
        self.drainer.on_force = on_force
        if threading.current_thread() is threading.main_thread():
            self.drainer.install()

    @property
    def forced(self) -> bool:
        return self.drainer.state in ("forced",) or (self.drainer.state == "stopped"
                                                     and self.drainer.exit_code == 1)

    # --- reaper --------------------------------------------------------------------------------------
    def start_reaper(self) -> Optional[threading.Thread]:
        if not self.settings.worker_reaper:
            return None
        from . import reaper
        timeout = worker_timeout(self.settings)
        r = reaper.Reaper(self.db, self.broker, worker_timeout=timeout,
                          lease_grace=min(timeout, 10.0), reaper_id=self.worker_id)
        return reaper.start_thread(r, self._reaper_stop,
                                   interval=max(1.0, (self.settings.heartbeat_seconds or 5.0)))

    def close(self) -> None:
        self._reaper_stop.set()
        self.drainer.uninstall()


__all__ = ["WorkerReliability", "TaskWatch", "TaskTimeout", "escalations_queue_for",
           "worker_timeout"]
