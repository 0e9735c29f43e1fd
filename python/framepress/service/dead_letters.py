"""Dead letters reconciled with their task rows.

RabbitMQ dead-letters a task message handed back `DELIVERY_LIMIT` times (workers that crashed on
it, or requeued it while the database was away). Its task may still be waiting for it: then the
task would never run. A review of `framepress.tasks.dead` (every worker runs one now and then)
looks each such letter up:

- its task waits to be taken (queued, retry_wait, incomplete): the message is staged again
  through the outbox with a `requeued` event saying so; after `MAX_DEAD_LETTERS` times the task
  escalates instead, so a message that keeps failing does not circle for ever;
- its task is running, settled or unknown: nothing waits for the message; it is dropped.

Messages a worker refused (not a task message: reason "rejected") stay for an operator to read.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

from sqlalchemy import select

from framepress.service import outbox
from framepress.service.broker.base import DROP, KEEP, Broker, DeadLetter
from framepress.service.failure.escalation import build_message
from framepress.service.db import Database, Task, TaskEvent, TaskStatus, utcnow
from framepress.service.tasks import EventKind, _event, stage_leftover_cleanup
from framepress.webhooks import Subscriptions
from framepress.webhooks.staging import stage_status as stage_webhooks

log = logging.getLogger("framepress.dead_letters")

MAX_DEAD_LETTERS = 3
REVIEW_EVERY_S = 30.0


@dataclass
class Review:
    requeued: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    dropped: int = 0
    kept: int = 0


def review(db: Database, broker: Broker, *, limit: int = 100,
           notices: Callable[[dict], list] = lambda message: [],
           webhooks: Optional[Subscriptions] = None) -> Review:
    """One pass over the dead-letter queue; the republished messages go out with the relay.
    `notices(message)`: what to stage when a task escalates (`escalation.notices`), with the
    `task.escalated` webhooks of `webhooks`."""
    report = Review()

    def decide(letter: DeadLetter) -> str:
        if letter.reason != "delivery_limit":
            report.kept += 1
            return KEEP
        try:
            task_id = json.loads(letter.body)["task_id"]
        except (ValueError, KeyError, TypeError):
            report.kept += 1
            return KEEP
        outcome = _reconcile(db, broker.tasks_queue, str(task_id), notices, webhooks)
        if outcome == "requeued":
            report.requeued.append(task_id)
        elif outcome == "escalated":
            report.escalated.append(task_id)
        else:
            report.dropped += 1
        return DROP

    broker.review_dead_letters(decide, limit=limit)
    return report


def _reconcile(db: Database, queue: str, task_id: str, notices: Callable[[dict], list],
               webhooks: Optional[Subscriptions] = None) -> str:
    with db.session() as s:
        t = s.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
        if t is None or t.status not in TaskStatus.TAKEABLE:
            return "dropped"
        before = sum(1 for data in s.scalars(select(TaskEvent.data).where(
            TaskEvent.task_id == task_id, TaskEvent.kind == EventKind.REQUEUED))
            if (data or {}).get("dead_lettered"))
        times = before + 1
        if times > MAX_DEAD_LETTERS:
            message = (f"its message was dead-lettered {times} times (handed back "
                       f"{MAX_DEAD_LETTERS} x the broker's delivery limit)")
            now = utcnow()
            t.status, t.last_error, t.finished_at, t.updated_at = (TaskStatus.ESCALATED, message,
                                                                   now, now)
            _event(s, t.id, EventKind.ESCALATED, attempt=t.attempts, message=message,
                   data={"escalation": "dead_lettered", "dead_letters": times})
            stage_leftover_cleanup(s, t.id)
            outbox.stage_all(s, t.id, notices(build_message(
                t.id, "taken", message, t.attempts, kind="dead_lettered",
                reason="its message kept dying", max_attempts=t.max_attempts)))
            stage_webhooks(s, t.id, webhooks)
            log.error("task %s escalated: %s", task_id, message, extra={"task_id": task_id})
            return "escalated"
        _event(s, t.id, EventKind.REQUEUED, attempt=t.attempts,
               message=f"its message was dead-lettered (delivery limit); published again "
                       f"({times} of {MAX_DEAD_LETTERS})",
               data={"dead_lettered": True, "dead_letters": times})
        outbox.stage_task(s, queue, t.id, priority=t.priority)
    log.warning("task %s: dead-lettered message published again", task_id,
                extra={"task_id": task_id, "kind": EventKind.REQUEUED})
    return "requeued"


def run(db: Database, broker: Broker, stop: threading.Event, *,
        interval: float = REVIEW_EVERY_S, notices: Callable[[dict], list] = lambda m: [],
        webhooks: Optional[Subscriptions] = None) -> None:
    while not stop.wait(interval):
        try:
            review(db, broker, notices=notices, webhooks=webhooks)
        except Exception as exc:  # noqa: BLE001  the broker or database is away: next time
            log.warning("dead-letter review failed: %r", exc)


def start_thread(db: Database, broker: Broker, stop: threading.Event, *,
                 interval: float = REVIEW_EVERY_S,
                 notices: Callable[[dict], list] = lambda m: [],
                 webhooks: Optional[Subscriptions] = None) -> threading.Thread:
    t = threading.Thread(target=run, args=(db, broker, stop),
                         kwargs={"interval": interval, "notices": notices, "webhooks": webhooks},
                         name="framepress-dead-letters", daemon=True)
    t.start()
    return t


__all__ = ["review", "run", "start_thread", "Review", "MAX_DEAD_LETTERS", "REVIEW_EVERY_S"]
