"""`framepress worker`: take task IDs off the broker and run them, one at a time.

Per delivery: parse → take the task (lease + fencing) → run its steps (`pipeline.TaskRun`) →
record the outcome → settle the message. Every delivery ends as one `Outcome`
(`service.outcomes`) that says how its message is settled, and it is settled only after the
outcome is committed. Nothing a single task does can stop the loop: an exception that escapes a
delivery's handling is logged with its traceback and the message handed back.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Optional

from framepress.service import dead_letters
from framepress.scaling import metrics
from framepress.service.broker import Broker, Delivery, open_broker
from framepress.config import Settings, new_worker_id, worker_timeout
from framepress.service.db import Database, TaskStatus, Worker as WorkerRow, connect, now_of
from framepress.scaling.health import Health
from framepress.service.failure.heartbeat import Heartbeat
from framepress.scaling.hostinfo import worker_details
from framepress.service.outbox import Outgoing, Relay, start_thread as start_relay
from framepress.service.pipeline import TaskRun
from framepress.service.split.plan import DEFAULT_CHUNK_SECONDS, SplitRule
from framepress.service.scratch import sweep_stale
from framepress.service.failure.backoff import RetryPolicy
from framepress.service.failure.dependencies import Dependencies
from framepress.service.failure.drain import Drainer
from framepress.service.failure.escalation import escalations_queue_for, notices
from framepress.webhooks import Subscriptions
from framepress.webhooks.dispatcher import Dispatcher, start_thread as start_webhooks
from framepress.service.failure.policy import DEFER, ESCALATE, BackoffPolicy, Failure, error_details
from framepress.service.failure.startup import when_reachable
from framepress.service.failure.timeout import TaskWatch
from framepress.service.outcomes import (ACK, REJECT, Deferred, Duplicate, Escalated,
                               EscalatedWithoutAttempt, LeaseLost, Outcome, Postponed, Rejected,
                               Requeued, Retrying, Returned, Succeeded, TimedOut)
from framepress.service.errors import BadMessage, StaleLease
from framepress.service.storage import StorageRouter
from framepress.service.tasks import EventKind, Lease, TaskSpec, TaskStore

log = logging.getLogger("framepress.worker")

BUSY_POLL_S = 1.0
#: After an unexpected error, wait this long before the next delivery (don't spin on an outage).
UNHANDLED_PAUSE_S = 1.0


def takeover_seconds(heartbeat_seconds: float) -> float:
    """Heartbeat silence after which the holder of a redelivered task is presumed dead: two
    missed beats and a margin (12 s with the default 5 s beats)."""
    return 2 * heartbeat_seconds + 2


def parse_task_id(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage(f"body is not JSON: {body[:80]!r}") from None
    task_id = payload.get("task_id") if isinstance(payload, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise BadMessage(f"body has no task_id: {body[:80]!r}")
    return task_id


class Interruption:
    """Why the attempt in hand was cancelled (lease lost, drain forced, time limit): the first
    cause wins, and the engine's cancel token is cancelled."""

    def __init__(self, token: Any) -> None:
        self.token = token
        self.cause: Optional[type[Outcome]] = None
        self._lock = threading.Lock()

    def cancel(self, cause: type[Outcome]) -> None:
        with self._lock:
            if self.cause is None:
                self.cause = cause
        self.token.cancel()

    def canceller(self, cause: type[Outcome]) -> Any:
        """An object whose `cancel()` cancels for `cause` (what the heartbeat calls)."""
        interruption = self

        class _Canceller:
            def cancel(self) -> None:
                interruption.cancel(cause)
        return _Canceller()


class Worker:
    def __init__(self, settings: Settings, *, db: Optional[Database] = None,
                 broker: Optional[Broker] = None, max_tasks: Optional[int] = None,
                 until: Optional[Callable[[], bool]] = None,
                 s3_probe: Optional[Callable[[], None]] = None):
        self.settings = settings
        self.scratch_root = settings.scratch_dir or "/tmp"
        self.id = new_worker_id()
        self.db = db or connect(settings)
        hb = settings.heartbeat_seconds or 5.0
        self.store = TaskStore(self.db, lease_seconds=settings.lease_seconds,
                               takeover_seconds=takeover_seconds(hb))
        self.broker = broker or open_broker(settings, self.db)
        self.storage = StorageRouter(allow_files=bool(settings.allow_file_uris),
                                     upload_concurrency=settings.upload_concurrency or 8)
        self.health = Health(heartbeat_interval=settings.heartbeat_seconds or 5.0,
                             stuck_after=settings.engine_stuck_seconds)
        if hasattr(self.broker, "consuming"):          # RabbitMQ: ready only while consuming
            self.health.connected_fn = lambda: bool(getattr(self.broker, "consuming", False))
        probe = {"s3_probe": s3_probe} if s3_probe is not None else {}
        self.dependencies = Dependencies.from_settings(
            settings, self.db, **probe,
            on_change=lambda names: self.health.set_paused(
                ", ".join(f"{n} unavailable" for n in names)))
        self.retry = RetryPolicy.from_settings(settings)
        # Publishes staged with a commit (retries, escalation notices, and whatever a broker
        # outage left unsent by anyone) go out through the outbox relay.
        self.relay = Relay(self.db, self.broker, storage=self.storage)
        self._relay_stop = threading.Event()
        # Escalation notices are staged with the escalated status and sent by the relay; the
        # webhooks of a settled task are staged with its status and sent by the dispatcher.
        self.store.escalation_notices = self._escalation_notices
        self.store.webhooks = Subscriptions.from_settings(settings)
        self.webhooks = Dispatcher.from_settings(self.db, settings)
        self.policy = BackoffPolicy(self.retry, breakers=self.dependencies.breakers,
                                    deadline_s=settings.task_deadline or 24 * 3600.0)
        self.drainer = Drainer(drain_timeout=settings.drain_timeout or 0.0)
        self.max_tasks, self.until = max_tasks, until
        self.stop_event = threading.Event()
        self.tasks_done = 0
        self.details = worker_details(self.id)
        self.heartbeat = Heartbeat(self.db, self.store, self.id, settings.heartbeat_seconds or 5.0,
                                   health=self.health)
        self._interruption: Optional[Interruption] = None
        self._reaper_stop = threading.Event()

    def _log(self, level: int, msg: str, *args: Any, task_id: Optional[str] = None,
             exc_info: Any = None, **extra: Any) -> None:
        # exc_info is logging's own argument: inside `extra` it would make logging raise.
        log.log(level, msg, *args, exc_info=exc_info,
                extra={"worker_id": self.id, "task_id": task_id, **extra})

    # ---- lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        sweep_stale(self.scratch_root)
        self._register()
        self.heartbeat.start()
        self._start_metrics()
        self._install_signals()
        self.health.set_connected(True)
        self._start_reaper()
        relay_thread = start_relay(self.relay, self._relay_stop)
        letters_thread = dead_letters.start_thread(self.db, self.broker, self._relay_stop,
                                                   notices=self._escalation_notices,
                                                   webhooks=self.store.webhooks)
        hooks_thread = start_webhooks(self.webhooks, self._relay_stop) if self.webhooks else None
        self._log(logging.INFO, "worker started on %s", self.broker.tasks_queue,
                  data={k: self.details[k] for k in ("hostname", "pod", "node", "pid", "version")})
        try:
            self.broker.consume(self.handle, self.stop_event, on_idle=self._check_until)
        finally:
            self._relay_stop.set()
            relay_thread.join(timeout=10)
            letters_thread.join(timeout=10)
            if hooks_thread is not None:
                hooks_thread.join(timeout=10)
            self._reaper_stop.set()
            self.drainer.uninstall()
            self.heartbeat.stop("stopped")
            self.broker.close()
            self._log(logging.INFO, "worker stopped after %d tasks", self.tasks_done)
        return self.drainer.exit_code or 0

    def stop(self) -> None:
        self.stop_event.set()

    def _check_until(self) -> None:
        if self.until is not None and self.until():
            self.stop()

    def _register(self) -> None:
        d = self.details
        with self.db.session() as s:
            now = now_of(s)
            s.merge(WorkerRow(id=self.id, hostname=d["hostname"], pod=d["pod"], node=d["node"],
                              pid=d["pid"], version=d["version"], hardware=d["hardware"],
                              state="idle", started_at=now, heartbeat_at=now))

    def _start_metrics(self) -> None:
        port = self.settings.metrics_port or 0
        if not port:
            return
        try:
            metrics.start_server(port, health=self.health.healthz, ready=self.health.readyz)
        except Exception as exc:  # noqa: BLE001  metrics are not worth dying for
            self._log(logging.WARNING, "metrics server not started: %r", exc)

    def _start_reaper(self) -> None:
        if not self.settings.worker_reaper:
            return
        from framepress.service.failure import reaper
        timeout = worker_timeout(self.settings)
        r = reaper.Reaper(self.db, self.broker, worker_timeout=timeout, lease_grace=min(timeout, 10.0),
                          reaper_id=self.id)
        reaper.start_thread(r, self._reaper_stop,
                            interval=max(1.0, self.settings.heartbeat_seconds or 5.0))

    def _install_signals(self) -> None:
        """SIGTERM drains (drain.Drainer); a second one, or the drain timeout, cancels the task
        in hand and returns its message. Handlers only set flags: pika is not re-entered."""
        def on_drain() -> None:
            self.heartbeat.state = "draining"
            self.health.set_draining(True)
            metrics.set_draining(True)
            self.stop()

        def on_force() -> None:
            interruption = self._interruption
            if interruption is not None:
                interruption.cancel(Returned)
        self.drainer.on_drain = on_drain
        self.drainer.on_force = on_force
        if threading.current_thread() is threading.main_thread():
            self.drainer.install()

    def _escalation_notices(self, message: dict[str, Any]) -> list[Outgoing]:
        return notices(message, escalations_queue_for(self.broker.tasks_queue))

    # ---- one delivery -------------------------------------------------------------------------

    def handle(self, delivery: Delivery) -> None:
        """Process one delivery and settle it, whatever happens: this never raises."""
        outcome: Outcome = Requeued("not processed")
        try:
            outcome = self._process(delivery)
        except Exception as exc:  # noqa: BLE001  e.g. the database is down: hand the message back
            outcome = Requeued(f"{type(exc).__name__}: {exc}")
            self._log(logging.ERROR, "delivery not processed, requeued: %r", exc, exc_info=exc)
            self.dependencies.record_outage(exc, default="database")
            self.stop_event.wait(UNHANDLED_PAUSE_S)
        finally:
            self._settle(delivery, outcome)
        if self.max_tasks is not None and self.tasks_done >= self.max_tasks:
            self.stop()
        self._check_until()

    def _settle(self, delivery: Delivery, outcome: Outcome) -> None:
        settle = {ACK: delivery.ack, REJECT: delivery.reject}.get(outcome.settle, delivery.requeue)
        try:
            settle()
        except Exception as exc:  # noqa: BLE001  the broker redelivers an unsettled message
            self._log(logging.ERROR, "could not %s the delivery (%s); it will be redelivered",
                      outcome.settle, outcome.name, exc_info=exc)

    def _process(self, delivery: Delivery) -> Outcome:
        received = time.monotonic()
        try:
            task_id = parse_task_id(delivery.body)
        except BadMessage as exc:
            self._log(logging.WARNING, "dead-lettering message: %s", exc, kind="bad_message")
            return Rejected(str(exc))
        # An open breaker (S3 or the database down) holds this delivery; with prefetch 1 the
        # rest of the queue waits for healthy workers instead of burning retries here. A task
        # held past its deadline is attempted anyway, so that an outage that never ends (e.g.
        # bad credentials) escalates it with that reason instead of holding it for ever.
        self.dependencies.wait(self.stop_event, give_up=lambda: self._past_deadline(task_id))
        if self.stop_event.is_set():
            return Requeued("stopping while a dependency is down")
        taken = self._take(task_id)
        if taken is None:
            return Requeued("stopping while another worker holds the task")
        if taken.outcome == "busy":
            return self._leave_to_holder(task_id, taken)
        if taken.outcome == "not_due":
            # An early copy of a task waiting out its backoff: send it on to when it is due.
            self.broker.publish_task(task_id, priority=taken.spec.priority if taken.spec else 0,
                                     delay_s=max(1.0, taken.due_in_s or 0.0))
            return Postponed(f"due in {taken.due_in_s or 0.0:.1f} s")
        if taken.outcome == "unknown":
            self._log(logging.WARNING, "dead-lettering message: no task %s", task_id,
                      task_id=task_id, kind="bad_message")
            return Rejected(f"no task {task_id}")
        if taken.outcome == "settled":
            self._log(logging.INFO, "task already %s; acked without work", taken.status,
                      task_id=task_id, kind=EventKind.DUPLICATE_DELIVERY)
            return Duplicate(f"already {taken.status}")
        if taken.outcome == "exhausted":             # escalated (and fenced) by the take
            return self._escalated_at_take(task_id)
        assert taken.lease is not None and taken.spec is not None
        self._log(logging.INFO, "taken (attempt %d)", taken.lease.attempt, task_id=task_id,
                  kind=EventKind.TAKEN)
        outcome = self._attempt(taken.lease, taken.spec, received)
        metrics.task_finished(outcome.name, time.monotonic() - received)
        self.tasks_done += 1
        return outcome

    def _take(self, task_id: str):
        """Take the task; while another worker holds it, watch that worker for one takeover
        window (a redelivery comes at once when a holder dies, before its silence shows). Ends
        as soon as the holder is gone (taken over), settles, or proves alive by beating again.
        None if the worker is stopping."""
        deadline = time.monotonic() + self.store.takeover_seconds + BUSY_POLL_S
        first_beat = None
        while True:
            taken = self.store.take(task_id, self.id, self.details,
                                    reachable_since=self.heartbeat.reachable_since)
            if taken.outcome != "busy":
                return taken
            beat = taken.holder_heartbeat_at
            if first_beat is None:
                first_beat = beat
            elif beat is not None and beat > first_beat:
                taken.holder_alive = True                      # it beat again
                return taken
            if time.monotonic() > deadline:
                return taken                                   # not judged dead: the reaper's
            if self.stop_event.wait(BUSY_POLL_S):
                return None

    def _leave_to_holder(self, task_id: str, taken) -> Outcome:
        """Another worker holds the task and is not judged dead: this copy is dropped and this
        worker moves on. The holder settles the task (and publishes its retry if it fails);
        should it die later, the reaper, which watches every holder, requeues the task."""
        why = "alive" if taken.holder_alive else "not judged dead (the reaper watches it)"
        self.store.record_duplicate(
            task_id, self.id, f"held by worker {taken.holder}, {why}; this copy dropped",
            data={"holder": taken.holder, "holder_alive": taken.holder_alive,
                  "status": taken.status})
        self._log(logging.INFO, "task held by worker %s (%s); duplicate dropped", taken.holder, why,
                  task_id=task_id, kind=EventKind.DUPLICATE_DELIVERY)
        return Duplicate(f"held by worker {taken.holder}")

    # ---- one attempt --------------------------------------------------------------------------

    def _attempt(self, lease: Lease, spec: TaskSpec, received: float) -> Outcome:
        import framepress
        interruption = self._interruption = Interruption(framepress.CancelToken())
        run = TaskRun(self.store, self.storage, lease, spec, scratch_root=self.scratch_root,
                      hwaccel=self.settings.hwaccel or "auto",
                      upload_concurrency=self.settings.upload_concurrency or 8,
                      cancel_token=interruption.token, on_progress=self.heartbeat.report_progress,
                      received_at=received, publish_output=self.relay.flush,
                      on_engine=self.heartbeat.engine_stage,
                      split_rule=SplitRule(self.settings.split_seconds or 0.0,
                                           self.settings.chunk_seconds or DEFAULT_CHUNK_SECONDS,
                                           self.broker.tasks_queue))
        metrics.task_started()
        self.heartbeat.begin_task(lease, interruption.canceller(LeaseLost))
        self.drainer.task_started()
        watch = TaskWatch(lambda: interruption.cancel(TimedOut),
                          self.settings.max_task_seconds or 0.0)
        try:
            run.run()
        except Exception as exc:  # noqa: BLE001  every failure becomes a recorded outcome
            return self._failed(lease, spec, run.stage, exc, interruption.cause, watch)
        else:
            self.dependencies.record_success()
            for stage, seconds in run.seconds.items():
                metrics.stage_observed(stage, seconds)
            return Succeeded()
        finally:
            watch.cancel()
            self.heartbeat.end_task()
            self._interruption = None
            self.drainer.task_finished()

    def _failed(self, lease: Lease, spec: TaskSpec, stage: str, exc: Exception,
                cause: Optional[type[Outcome]], watch: TaskWatch) -> Outcome:
        if cause is LeaseLost or isinstance(exc, StaleLease):
            # The new holder has its own message; ours carries nothing more.
            self._log(logging.WARNING, "stopped: lease taken over during %s (%s)", stage, exc,
                      task_id=lease.task_id)
            return LeaseLost(str(exc))
        if cause is Returned:
            return self._return_task(lease, stage)
        if cause is TimedOut:
            exc = watch.error(exc)
        try:
            outcome = self._record_once_reachable(lease, spec, stage, exc)
        except StaleLease as stale:
            self._log(logging.WARNING, "failure not recorded: %s", stale, task_id=lease.task_id)
            return LeaseLost(str(stale))
        return TimedOut(outcome.reason) if cause is TimedOut else outcome

    def _record_once_reachable(self, lease: Lease, spec: TaskSpec, stage: str,
                               exc: BaseException) -> Outcome:
        """Record the failure, waiting for the database while it is away. Left unrecorded, the
        task would stay `running` under this worker and its next take would count a new attempt:
        an outage (a stop of minutes, past the stage-write retry) would spend the task's budget.
        Gives up only when the worker stops (the message is then handed back)."""
        while True:
            try:
                return self._record_failure(lease, spec, stage, exc)
            except StaleLease:
                raise
            except Exception as record_exc:
                if self.dependencies.record_outage(record_exc, default="database") is None:
                    raise
                self._log(logging.WARNING, "%s failed and the database is away (%r): waiting to "
                          "record it", stage, record_exc, task_id=lease.task_id)
                if self.stop_event.wait(UNHANDLED_PAUSE_S) or \
                        not self.dependencies.wait(self.stop_event):
                    raise

    def _return_task(self, lease: Lease, stage: str) -> Outcome:
        """Forced drain: the engine was cancelled. Give the attempt back and hand the message
        back to the broker so another worker starts the task at once."""
        message = "worker shutting down: task cancelled and returned to the queue"
        self._log(logging.WARNING, message, task_id=lease.task_id)
        try:
            self.store.fail(lease, status=TaskStatus.QUEUED, give_back_attempt=True,
                            error_event={"stage": stage, "message": message,
                                         "data": {"type": "Cancelled", "drain": True}},
                            follow_up={"kind": EventKind.REQUEUED, "stage": stage,
                                       "message": "returned for redelivery (drain)"})
        except StaleLease as exc:
            return LeaseLost(str(exc))
        return Returned(message)

    def _record_failure(self, lease: Lease, spec: TaskSpec, stage: str,
                        exc: BaseException) -> Outcome:
        age = self.store.age_s(lease.task_id) or 0.0
        failure = Failure(task_id=lease.task_id, stage=stage, error=exc, attempt=lease.attempt,
                          max_attempts=spec.max_attempts, age_s=age)
        previous = (self.store.last_retry_delay(lease.task_id)
                    if self.retry.jitter == "decorrelated" else None)
        decision = self.policy.decide(failure, previous)
        self._log(logging.WARNING, "%s failed: %s -> %s", stage, failure.message, decision.action,
                  task_id=lease.task_id, kind=EventKind.ERROR, stage=stage, attempt=lease.attempt)
        error_event = {"stage": stage, "message": failure.message,
                       "data": error_details(exc, stage)}
        follow = {"kind": EventKind.ESCALATED if decision.action == ESCALATE
                  else EventKind.RETRY_SCHEDULED,
                  "stage": stage, "message": decision.reason,
                  "data": {"delay_s": decision.delay_s, **decision.data}}
        if decision.action == ESCALATE:
            # Past the deadline in an outage: the outage is not the task's fault either.
            self.store.fail(lease, status=TaskStatus.ESCALATED, error_event=error_event,
                            follow_up=follow,
                            give_back_attempt=decision.data.get("escalation") == "deadline")
            self._escalated(lease.task_id)
            return Escalated(decision.reason)
        deferred = decision.action == DEFER
        if deferred:
            follow["data"]["deferred"] = True
        # The retry's message is staged with the retry_wait status (outbox): if the publish
        # fails, the relay sends it later; the task is never left without a message.
        retry_message = Outgoing.task(self.broker.tasks_queue, lease.task_id,
                                      priority=spec.priority, delay_s=decision.delay_s)
        self.store.fail(lease, status=TaskStatus.RETRY_WAIT, error_event=error_event,
                        follow_up=follow, give_back_attempt=deferred,
                        retry_in_s=decision.delay_s, outgoing=[retry_message])
        self.relay.flush(lease.task_id)
        metrics.retry_scheduled()
        return Deferred(decision.reason) if deferred else Retrying(decision.reason)

    def _past_deadline(self, task_id: str) -> bool:
        """Whether the task's deadline has passed (asked only while the database answers)."""
        if self.dependencies["database"].is_open:
            return False
        age = self.store.age_s(task_id)
        return age is not None and age >= self.policy.deadline_s

    def _escalated_at_take(self, task_id: str) -> Outcome:
        """Delivered again with no attempts left (e.g. it crashed its workers): the take
        escalated it and staged its notices."""
        self._escalated(task_id)
        return EscalatedWithoutAttempt("delivered again with no attempts left")

    def _escalated(self, task_id: str) -> None:
        """The escalation and its notices are committed: count it, send the notices now (the
        relay retries whatever does not go through)."""
        metrics.escalated()
        self.relay.flush(task_id)

def run_worker(settings: Settings, **kwargs: Any) -> int:
    return when_reachable(lambda: Worker(settings, **kwargs)).run()
