"""`framepress worker`: take task IDs off the broker and run them, one at a time.

Per delivery: parse → take the task (lease + fencing) → run its steps (`pipeline.TaskRun`) →
record the outcome → ack. The ack is sent only after the outcome is committed. Nothing a single
task does can stop the loop: every error ends as a recorded outcome or a requeued message.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Optional

from . import dead_letters, escalation, metrics, outbox
from .broker import Broker, Delivery, open_broker
from .config import Settings, new_worker_id
from .db import Database, TaskStatus, Worker as WorkerRow, connect, now_of
from .failure import DEFER, ESCALATE, Decision, Failure, FailurePolicy, SimplePolicy, error_details
from .heartbeat import Heartbeat
from .hostinfo import worker_details
from .outbox import Outgoing, Relay
from .pipeline import TaskRun
from .scratch import sweep_stale
from .service_errors import BadMessage, StaleLease
from .storage import StorageRouter
from .tasks import EventKind, Lease, TaskSpec, TaskStore
from .worker_reliability import WorkerReliability

log = logging.getLogger("framepress.worker")

BUSY_POLL_S = 1.0


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


class Worker:
    def __init__(self, settings: Settings, *, policy: Optional[FailurePolicy] = None,
                 db: Optional[Database] = None, broker: Optional[Broker] = None,
                 max_tasks: Optional[int] = None, until: Optional[Callable[[], bool]] = None):
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
        # Retries with backoff, breakers, escalation notices, health, drain, reaper (issue 4).
        self.reliability = WorkerReliability(settings, self.id, self.db, self.broker)
        # Publishes staged with a commit (retries, escalation notices, and whatever a broker
        # outage left unsent by anyone) go out through the outbox relay.
        self.relay = Relay(self.db, self.broker, webhook_url=settings.escalation_webhook,
                           storage=self.storage)
        # Escalation notices are staged with the escalated status and sent by the relay.
        self.store.escalation_notices = self._escalation_notices
        self._relay_stop = threading.Event()
        self.policy = policy or self.reliability.policy
        self.max_tasks, self.until = max_tasks, until
        self.stop_event = threading.Event()
        self.tasks_done = 0
        self.details = worker_details(self.id)
        self.heartbeat = Heartbeat(self.db, self.store, self.id, settings.heartbeat_seconds or 5.0,
                                   health=self.reliability.health)
        self._cancel_token: Any = None

    def _log(self, level: int, msg: str, *args: Any, task_id: Optional[str] = None, **extra: Any) -> None:
        log.log(level, msg, *args, extra={"worker_id": self.id, "task_id": task_id, **extra})

    # ---- lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        sweep_stale(self.scratch_root)
        self._register()
        self.heartbeat.start()
        self._start_metrics()
        self._install_signals()
        self.reliability.health.set_connected(True)
        self.reliability.start_reaper()
        relay_thread = outbox.start_thread(self.relay, self._relay_stop)
        letters_thread = dead_letters.start_thread(self.db, self.broker, self._relay_stop,
                                                   notices=self._escalation_notices)
        self._log(logging.INFO, "worker started on %s", self.broker.tasks_queue,
                  data={k: self.details[k] for k in ("hostname", "pod", "node", "pid", "version")})
        try:
            self.broker.consume(self.handle, self.stop_event, on_idle=self._check_until)
        finally:
            self._relay_stop.set()
            relay_thread.join(timeout=10)
            letters_thread.join(timeout=10)
            self.reliability.close()
            self.heartbeat.stop("stopped")
            self.broker.close()
            self._log(logging.INFO, "worker stopped after %d tasks", self.tasks_done)
        return self.reliability.drainer.exit_code or 0

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
            self.reliability.start_metrics(port)
        except NotImplementedError:
            pass
        except Exception as exc:  # noqa: BLE001  metrics are not worth dying for
            self._log(logging.WARNING, "metrics server not started: %r", exc)

    def _install_signals(self) -> None:
        """SIGTERM drains (drain.Drainer); a second one, or the drain timeout, cancels the task
        in hand and returns its message. Handlers only set flags: pika is not re-entered."""
        def on_drain() -> None:
            self.heartbeat.state = "draining"
            self.stop()

        def on_force() -> None:
            token = self._cancel_token
            if token is not None:
                token.cancel()
        self.reliability.install_drain(on_drain, on_force)

    # ---- one delivery -------------------------------------------------------------------------

    def handle(self, delivery: Delivery) -> None:
        # An open breaker (S3 or the database down) holds this delivery; with prefetch 1 the
        # rest of the queue waits for healthy workers instead of burning retries here.
        if not self.reliability.wait_for_dependencies(self.stop_event):
            delivery.requeue()
            return
        try:
            settle = self._handle(delivery)
        except Exception as exc:  # noqa: BLE001  e.g. the database is down: hand the message back
            self.reliability.record_unhandled(exc)
            self._log(logging.ERROR, "delivery not processed, requeued: %r", exc, exc_info=True)
            time.sleep(1.0)  # don't spin on a dependency outage
            settle = delivery.requeue
        settle()
        if self.max_tasks is not None and self.tasks_done >= self.max_tasks:
            self.stop()
        self._check_until()

    def _handle(self, delivery: Delivery) -> Callable[[], None]:
        """Do the work; return how to settle the delivery (called after everything is committed)."""
        received = time.monotonic()
        try:
            task_id = parse_task_id(delivery.body)
        except BadMessage as exc:
            self._log(logging.WARNING, "dead-lettering message: %s", exc, kind="bad_message")
            return delivery.reject
        taken = self._take(task_id)
        if taken is None:
            return delivery.requeue
        if taken.outcome == "busy":
            return self._leave_to_holder(task_id, taken, delivery)
        if taken.outcome == "not_due":
            # An early copy of a task waiting out its backoff: send it on to when it is due.
            self.broker.publish_task(task_id, priority=taken.spec.priority if taken.spec else 0,
                                     delay_s=max(1.0, taken.due_in_s or 0.0))
            return delivery.ack
        if taken.outcome == "unknown":
            self._log(logging.WARNING, "dead-lettering message: no task %s", task_id,
                      task_id=task_id, kind="bad_message")
            return delivery.reject
        if taken.outcome == "settled":
            self._log(logging.INFO, "task already %s; acked without work", taken.status,
                      task_id=task_id, kind=EventKind.DUPLICATE_DELIVERY)
            return delivery.ack
        if taken.outcome == "exhausted":             # escalated (and fenced) by the take
            metrics.escalated()
            self.relay.flush(task_id)                # its notices
            return delivery.ack
        assert taken.lease is not None
        self._log(logging.INFO, "taken (attempt %d)", taken.lease.attempt, task_id=task_id,
                  kind=EventKind.TAKEN)
        assert taken.spec is not None
        return self._run(taken.lease, taken.spec, delivery, received)

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

    def _leave_to_holder(self, task_id: str, taken, delivery: Delivery) -> Callable[[], None]:
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
        return delivery.ack

    def _run(self, lease: Lease, spec: TaskSpec, delivery: Delivery,
             received: float) -> Callable[[], None]:
        import framepress
        token = self._cancel_token = framepress.CancelToken()
        run = TaskRun(self.store, self.storage, lease, spec, scratch_root=self.scratch_root,
                      hwaccel=self.settings.hwaccel or "auto",
                      upload_concurrency=self.settings.upload_concurrency or 8,
                      cancel_token=token, on_progress=self.heartbeat.report_progress,
                      received_at=received, publish_output=self.relay.flush,
                      on_engine=self.heartbeat.engine_stage)
        metrics.task_started()
        self.heartbeat.begin_task(lease, token)
        self.reliability.drainer.task_started()
        watch = self.reliability.watch_task(token)      # FRAMEPRESS_MAX_TASK_SECONDS
        outcome = "failed"
        settle = delivery.ack
        try:
            run.run()
            outcome = "succeeded"
            self.reliability.record_success()
            for stage, seconds in run.seconds.items():
                metrics.stage_observed(stage, seconds)
        except StaleLease as exc:
            outcome = "stale"
            self._log(logging.WARNING, "stopped: %s", exc, task_id=lease.task_id)
        except Exception as exc:  # noqa: BLE001  every failure becomes a recorded outcome
            if self.heartbeat.lease_lost:
                outcome = "stale"
                self._log(logging.WARNING, "stopped: lease taken over during %s", run.stage,
                          task_id=lease.task_id)
            elif self.reliability.forced and token.cancelled:
                outcome = "returned"
                settle = self._return_task(lease, run.stage, delivery)
            else:
                try:
                    outcome = self._record_failure(lease, run.stage, watch.explain(exc))
                except StaleLease as stale:
                    outcome = "stale"
                    self._log(logging.WARNING, "failure not recorded: %s", stale, task_id=lease.task_id)
        finally:
            watch.cancel()
            self.heartbeat.end_task()
            self._cancel_token = None
            self.reliability.drainer.task_finished()
            metrics.task_finished(outcome, time.monotonic() - received)
            self.tasks_done += 1
        # Stale: the new holder has its own delivery; ours carries nothing more.
        return settle

    def _return_task(self, lease: Lease, stage: str, delivery: Delivery) -> Callable[[], None]:
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
        except StaleLease:
            return delivery.ack
        return delivery.requeue

    def _escalation_notices(self, message: dict[str, Any]) -> list[Outgoing]:
        return escalation.notices(message, self.reliability.escalations_queue,
                                  webhook=bool(self.settings.escalation_webhook))

    def _record_failure(self, lease: Lease, stage: str, exc: BaseException) -> str:
        failure = Failure(task_id=lease.task_id, stage=stage, error=exc, attempt=lease.attempt,
                          max_attempts=self.store.get(lease.task_id).max_attempts)  # type: ignore[union-attr]
        decision = self.policy.decide(failure)
        self._log(logging.WARNING, "%s failed: %s -> %s", stage, failure.message, decision.action,
                  task_id=lease.task_id, kind=EventKind.ERROR, stage=stage, attempt=lease.attempt)
        error_event = {"stage": stage, "message": failure.message, "data": error_details(exc)}
        follow = {"kind": EventKind.ESCALATED if decision.action == ESCALATE else EventKind.RETRY_SCHEDULED,
                  "stage": stage, "message": decision.reason,
                  "data": {"delay_s": decision.delay_s, **decision.data}}
        if decision.action == ESCALATE:
            self.store.fail(lease, status=TaskStatus.ESCALATED, error_event=error_event, follow_up=follow)
            metrics.escalated()
            self.relay.flush(lease.task_id)          # its notices
            return "escalated"
        deferred = decision.action == DEFER
        if deferred:
            follow["data"]["deferred"] = True
        self._schedule_retry(lease, error_event, follow, decision, give_back_attempt=deferred)
        return "deferred" if deferred else "retry"

    def _schedule_retry(self, lease: Lease, error_event: dict[str, Any], follow: dict[str, Any],
                        decision: Decision, give_back_attempt: bool) -> None:
        spec = self.store.get(lease.task_id)
        # The retry's message is staged with the retry_wait status (outbox): if the publish
        # below fails, the relay sends it later; the task is never left without a message.
        retry_message = Outgoing.task(self.broker.tasks_queue, lease.task_id,
                                      priority=spec.priority if spec else 0,
                                      delay_s=decision.delay_s)
        self.store.fail(lease, status=TaskStatus.RETRY_WAIT, error_event=error_event, follow_up=follow,
                        retry_in_s=decision.delay_s, give_back_attempt=give_back_attempt, outgoing=[retry_message])
        self.relay.flush(lease.task_id)
        metrics.retry_scheduled()


def run_worker(settings: Settings, **kwargs: Any) -> int:
    return Worker(settings, **kwargs).run()
