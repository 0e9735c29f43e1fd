"""Escalation notices: a durable message on ``framepress.escalations`` and an optional webhook.

The task's status and ``escalated`` event are the record; these are the notifications. Both are
staged (``notices``) in the transaction that escalates and delivered from there by the outbox
relay: the message with publisher confirms, the webhook POSTed, each retried until it goes
through (the webhook gives up after ``outbox.WEBHOOK_ATTEMPTS`` tries, with an error logged).
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from framepress.config import redact_webhook

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


def notices(message: dict, queue: str = ESCALATIONS_QUEUE, *, webhook: bool = False) -> list:
    """The notices of an escalation, to stage (outbox) in the transaction that escalates: the
    message on the escalations queue and, with a webhook configured, its POST. The relay
    delivers both from that durable state, retrying until they go through."""
    from framepress.service.outbox import MESSAGE, WEBHOOK, Outgoing
    out = [Outgoing(MESSAGE, message, queue)]
    if webhook:
        out.append(Outgoing(WEBHOOK, message))
    return out


def post_webhook(url: str, message: dict, *, attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST the message as JSON; retry on connection errors and 5xx/429. Never raises.

    Returns True when the hook answered 2xx. A 4xx other than 408/429 is not retried: the hook
    refused the payload and will refuse it again.
    """
    body = json.dumps(message).encode()
    delay = backoff
    for attempt in range(1, attempts + 1):
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "User-Agent": "framepress-escalation"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                if 200 <= resp.status < 300:
                    return True
                reason = f"HTTP {resp.status}"
                retry = True
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
            retry = exc.code >= 500 or exc.code in (408, 429)
        except Exception as exc:  # connection refused, timeout, DNS: all worth another try
            reason = f"{type(exc).__name__}: {exc}"
            retry = True
        # The URL may carry a token (path or query): log only scheme://host.
        log.warning("escalation webhook %s failed (attempt %d/%d): %s",
                    redact_webhook(url), attempt, attempts, reason)
        if not retry or attempt == attempts:
            break
        sleep(delay)
        delay *= 2
    log.error("escalation webhook gave up for task %s", message.get("task_id"))
    return False
