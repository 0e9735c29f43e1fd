"""The broker interface: publish task IDs, and consume them one at a time with manual acks.

Message bodies are `{"task_id": "<uuid>"}` as JSON (DESIGN §3). A consumer's handler gets a
`Delivery` and must settle it exactly once: `ack()` after the outcome is committed, `reject()` to
dead-letter a message that can never be processed, or `requeue()` to hand it back.
"""
from __future__ import annotations

import abc
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

Handler = Callable[["Delivery"], None]


class Delivery(abc.ABC):
    body: bytes
    redelivered: bool = False

    @abc.abstractmethod
    def ack(self) -> None: ...

    @abc.abstractmethod
    def reject(self) -> None:
        """Dead-letter (nack without requeue)."""

    @abc.abstractmethod
    def requeue(self) -> None: ...


@dataclass(frozen=True)
class DeadLetter:
    """A message of the dead-letter queue, and why the broker put it there: "delivery_limit"
    (handed back too many times), "rejected" (a worker refused it: not a task message), ..."""
    body: bytes
    reason: str


KEEP, DROP = "keep", "drop"   # what a dead-letter review decides for each message


class Broker(abc.ABC):
    @abc.abstractmethod
    def declare(self) -> None:
        """Create the queues if missing (idempotent; workers and clients both call it)."""

    @abc.abstractmethod
    def publish_json(self, queue: str, payload: dict[str, Any], *, priority: int = 0,
                     delay_s: float = 0.0) -> None:
        """Publish durably; returns once the broker has confirmed it. Raises BrokerError."""

    @abc.abstractmethod
    def consume(self, handler: Handler, stop: threading.Event,
                on_idle: Optional[Callable[[], None]] = None) -> None:
        """Deliver messages of the tasks queue to `handler` until `stop` is set, then finish the
        delivery in hand and return. `on_idle` is called now and then while nothing arrives."""

    @property
    @abc.abstractmethod
    def tasks_queue(self) -> str: ...

    def publish_task(self, task_id: str, *, priority: int = 0, delay_s: float = 0.0) -> None:
        self.publish_json(self.tasks_queue, {"task_id": task_id}, priority=priority, delay_s=delay_s)

    def review_dead_letters(self, decide: Callable[[DeadLetter], str], limit: int = 100) -> int:
        """Show each dead letter (at most `limit`) to `decide`, which returns KEEP (it stays in
        the dead-letter queue) or DROP (it is removed: its task has been seen to). Returns how
        many were reviewed. A broker that never dead-letters on its own has nothing to review."""
        return 0

    def close(self) -> None:
        pass


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
