"""Escalation notices: a durable message on ``framepress.escalations``.

The task's status and ``escalated`` event are the record; this is the notification. It is staged
(``notices``) in the transaction that escalates and published from there by the outbox relay with
publisher confirms. The escalation webhook (``FRAMEPRESS_ESCALATION_WEBHOOK``) is one
subscription of the signed webhooks (``framepress.webhooks``), staged in the same transaction.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Optional


log = logging.getLogger(__name__)

ESCALATIONS_QUEUE = "framepress.escalations"


def escalations_queue_for(tasks_queue: str) -> str:
    """`framepress.escalations`, with the same isolation prefix as the tasks queue."""
    suffix = "framepress.tasks"
    prefix = tasks_queue[:-len(suffix)] if tasks_queue.endswith(suffix) else ""
    return prefix + ESCALATIONS_QUEUE


def build_message(task_id: str, stage: Optional[str], error: str, attempts: int, *,
                  at: Optional[datetime] = None, kind: str = "", **extra: Any) -> dict:
    """The escalation notice: what an operator needs to decide retry or resolve."""
    msg = {
        "task_id": str(task_id),
        "stage": stage or "",
        "error": str(error)[:4000],
        "attempts": int(attempts),
        "at": (at or datetime.now(timezone.utc)).isoformat(),
    }
    if kind:
        msg["kind"] = kind            # "permanent" | "exhausted"
    msg.update({k: v for k, v in extra.items() if v is not None})
    return msg


def declare_queue(channel, queue: str = ESCALATIONS_QUEUE) -> None:
    """Idempotent: a durable classic queue, so anything (a script, an alert bridge) can read it
    with no arguments to match."""
    channel.queue_declare(queue=queue, durable=True)


def notices(message: dict, queue: str = ESCALATIONS_QUEUE) -> list:
    """The notice of an escalation, to stage (outbox) in the transaction that escalates: the
    message on the escalations queue, which the relay publishes from that durable state. (The
    escalation webhook is a subscription of `framepress.webhooks`, staged beside it.)"""
    from framepress.service.outbox import MESSAGE, Outgoing
    return [Outgoing(MESSAGE, message, queue)]
