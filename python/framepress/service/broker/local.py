"""The local broker for embedded mode: a queue in the framepress database itself.

Same contract as RabbitMQ: a message is leased while a worker holds it, deleted on ack, moved to
the dead-letter queue on reject, and delivered again if its worker vanishes (lease expiry).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any, Callable, Optional

from sqlalchemy import delete, select, update

from framepress.service.db import Database, QueueMessage, utcnow
from framepress.service.broker.base import Broker, Delivery, Handler

log = logging.getLogger("framepress.broker")

POLL_S = 0.1
# Long enough for any embedded task; a crashed worker's message comes back after this.
MESSAGE_LEASE_S = 3600.0


class LocalDelivery(Delivery):
    """Settling writes the message's row. If the database is away the settlement is kept and
    written before the next claim: a message handed back must not sit out its lease (an hour)."""

    def __init__(self, broker: "LocalBroker", row_id: int, body: bytes, redelivered: bool):
        self._broker, self._id = broker, row_id
        self.body = body
        self.redelivered = redelivered

    def ack(self) -> None:
        self._broker.settle(delete(QueueMessage).where(QueueMessage.id == self._id))

    def reject(self) -> None:
        self._broker.settle(update(QueueMessage).where(QueueMessage.id == self._id)
                            .values(queue=self._broker.dead_queue, leased_until=None))

    def requeue(self) -> None:
        self._broker.settle(update(QueueMessage).where(QueueMessage.id == self._id)
                            .values(leased_until=None))


class LocalBroker(Broker):
    def __init__(self, db: Database, tasks_queue: str, dead_queue: str):
        self.db = db
        self._tasks_queue, self.dead_queue = tasks_queue, dead_queue
        self._unsettled: list[Any] = []     # settlements the database was away for
        self._lock = threading.Lock()

    def settle(self, statement: Any) -> None:
        """Write a delivery's settlement; one that fails is kept, written before the next
        claim (and raised, so the caller logs it)."""
        try:
            self._write_unsettled()
            with self.db.session() as s:
                s.execute(statement)
        except Exception:
            with self._lock:
                self._unsettled.append(statement)
            raise

    def _write_unsettled(self) -> None:
        with self._lock:
            while self._unsettled:
                with self.db.session() as s:
                    s.execute(self._unsettled[0])
                self._unsettled.pop(0)

    @property
    def tasks_queue(self) -> str:
        return self._tasks_queue

    def declare(self) -> None:
        pass  # the table comes with the migrations

    def publish_json(self, queue: str, payload: dict[str, Any], *, priority: int = 0,
                     delay_s: float = 0.0) -> None:
        now = utcnow()
        with self.db.session() as s:
            s.add(QueueMessage(queue=queue, body=json.dumps(payload), priority=priority,
                               available_at=now + timedelta(seconds=delay_s), deliveries=0,
                               created_at=now))

    def publish_raw(self, queue: str, body: bytes) -> None:
        """For tests: a message body as-is (e.g. not JSON)."""
        now = utcnow()
        with self.db.session() as s:
            s.add(QueueMessage(queue=queue, body=body.decode(errors="replace"), priority=0,
                               available_at=now, deliveries=0, created_at=now))

    def _claim(self) -> Optional[LocalDelivery]:
        self._write_unsettled()
        now = utcnow()
        with self.db.session() as s:
            row = s.execute(
                select(QueueMessage.id, QueueMessage.body, QueueMessage.deliveries)
                .where(QueueMessage.queue == self._tasks_queue, QueueMessage.available_at <= now,
                       (QueueMessage.leased_until.is_(None)) | (QueueMessage.leased_until < now))
                .order_by(QueueMessage.priority.desc(), QueueMessage.id).limit(1)
                .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            s.execute(update(QueueMessage).where(QueueMessage.id == row.id)
                      .values(leased_until=now + timedelta(seconds=MESSAGE_LEASE_S),
                              deliveries=row.deliveries + 1))
            return LocalDelivery(self, row.id, row.body.encode(), redelivered=row.deliveries > 0)

    def consume(self, handler: Handler, stop: threading.Event,
                on_idle: Optional[Callable[[], None]] = None) -> None:
        backoff = POLL_S
        while not stop.is_set():
            try:
                delivery = self._claim()
            except Exception as exc:  # noqa: BLE001  the database is away: wait, don't die
                log.warning("local queue unavailable (%r); retrying in %.1f s", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = POLL_S
            if delivery is None:
                if on_idle:
                    on_idle()
                stop.wait(POLL_S)
                continue
            handler(delivery)  # no connection to keep alive here: run the task on this thread

    def depth(self, queue: Optional[str] = None) -> int:
        with self.db.session() as s:
            return len(s.scalars(select(QueueMessage.id)
                                 .where(QueueMessage.queue == (queue or self._tasks_queue))).all())
