"""Publishes that must follow a commit (DESIGN §4: never a task without a message).

A change that needs a message (a submitted task, an operator's retry, a scheduled retry, a
reaper's requeue, an escalation notice) *stages* it with `stage_all()` in the same
transaction as the change itself: either both are committed or neither. Storage jobs that must
follow a commit (publishing a succeeded attempt's objects, deleting a settled task's leftovers:
`attempt_output`) go the same way. A `Relay` then publishes staged rows with
publisher confirms and deletes them. The process that staged a row flushes it at once (so the
usual path costs one publish, as before); whatever a broker outage or a crash left behind is
published by the relay every worker runs in the background, once the broker answers again.

Several relays may run at once: a relay *claims* due rows (SELECT … FOR UPDATE SKIP LOCKED on
Postgres; SQLite serialises writers) for `CLAIM_S` and publishes outside the transaction, so no
lock is held across the network. A relay that dies after publishing and before deleting the row
leaves it to be published again when the claim lapses: a duplicate message, which the worker
acks as `duplicate_delivery`; never a lost one.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Optional

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from framepress.service.db import Database, OutboxRow, aware, db_now, now_of

log = logging.getLogger("framepress.outbox")

MESSAGE = "message"
PUBLISH = "publish"     # copy an attempt's objects to the task's output (attempt_output)
CLEANUP = "cleanup"     # delete the objects under a prefix
STORAGE_KINDS = (PUBLISH, CLEANUP)

CLAIM_S = 60.0          # a publish that takes longer than this may be published twice
BATCH = 100
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 60.0


@dataclass(frozen=True)
class Outgoing:
    """Something to stage with a change made elsewhere (e.g. `TaskStore.fail(…, outgoing=…)`)."""
    kind: str                       # MESSAGE | PUBLISH | CLEANUP
    payload: dict[str, Any]
    queue: str = ""
    priority: int = 0
    delay_s: float = 0.0

    @classmethod
    def task(cls, queue: str, task_id: str, *, priority: int = 0, delay_s: float = 0.0) -> "Outgoing":
        return cls(MESSAGE, {"task_id": task_id}, queue, priority, delay_s)

    @classmethod
    def publish_objects(cls, src_prefix: str, dst_prefix: str) -> "Outgoing":
        return cls(PUBLISH, {"from": src_prefix, "to": dst_prefix})

    @classmethod
    def delete_objects(cls, prefix: str) -> "Outgoing":
        return cls(CLEANUP, {"prefix": prefix})


def stage_task(s: Session, queue: str, task_id: str, *, priority: int = 0,
               delay_s: float = 0.0) -> None:
    """Stage the tasks-queue message `{"task_id": …}` (DESIGN §3) in the transaction `s`."""
    stage_all(s, task_id, [Outgoing.task(queue, task_id, priority=priority, delay_s=delay_s)])


def stage_all(s: Session, task_id: Optional[str], outgoing: Iterable[Outgoing]) -> None:
    """Stage `outgoing` in the caller's transaction `s`: committed with it, or not at all.
    Times are the database's, like every time that decides what happens when."""
    for o in outgoing:
        s.add(OutboxRow(kind=o.kind, target=o.queue, payload=o.payload, priority=o.priority,
                        task_id=task_id, deliver_at=db_now(max(0.0, o.delay_s)),
                        due_at=db_now(), attempts=0, created_at=db_now()))
    s.flush()


@dataclass
class FlushReport:
    sent: int = 0
    failed: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.failed)


class Relay:
    """Publishes staged rows. `broker`: a `Broker`."""

    def __init__(self, db: Database, broker: Any, *, storage: Any = None,
                 claim_s: float = CLAIM_S) -> None:
        """Rows of a kind this relay cannot serve (storage jobs without `storage`, a
        StorageRouter) are left to relays that can."""
        self.db, self.broker = db, broker
        self.storage = storage
        self.claim_s = claim_s

    def flush(self, task_id: Optional[str] = None, *, limit: int = BATCH) -> FlushReport:
        """Publish the due rows, or at once those of `task_id` (what its stager just committed).
        Never raises for a failed publish: the row stays, due again after a backoff."""
        report = FlushReport()
        down: set[str] = set()            # kinds whose destination failed in this round
        skipped: list[OutboxRow] = []
        now, rows = self._claim(task_id, limit)
        for row in rows:
            if row.kind in down:
                skipped.append(row)
                continue
            try:
                self._publish(row, now)
            except Exception as exc:  # noqa: BLE001  the row stays staged; retried later
                report.failed += 1
                self._postpone(row, exc)
                # The broker (or hook, or store) is away: the rest of its rows would fail the
                # same way; they go back at once so the next round tries them.
                down.add(row.kind)
                continue
            self._done(row)
            report.sent += 1
        self._release(skipped)
        return report

    def pending(self) -> int:
        with self.db.session() as s:
            return len(s.scalars(select(OutboxRow.id)).all())

    # ---- steps ----------------------------------------------------------------------------------

    def _claim(self, task_id: Optional[str], limit: int) -> tuple[datetime, list[OutboxRow]]:
        kinds = [MESSAGE] + (list(STORAGE_KINDS) if self.storage is not None else [])
        q = (select(OutboxRow)
             .where(OutboxRow.kind.in_(kinds),
                    or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < db_now()))
             .order_by(OutboxRow.id).limit(limit).with_for_update(skip_locked=True))
        # A stager's rows go at once; the backlog waits for its due time.
        q = (q.where(OutboxRow.task_id == task_id) if task_id is not None
             else q.where(OutboxRow.due_at <= db_now()))
        with self.db.session() as s:
            now = now_of(s)
            rows = list(s.scalars(q).all())
            if rows:
                s.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows]))
                          .values(claimed_until=db_now(self.claim_s)))
            for r in rows:
                s.expunge(r)
        return now, rows

    def _publish(self, row: OutboxRow, now: datetime) -> None:
        if row.kind in STORAGE_KINDS:
            from framepress.service import attempt_output
            if row.kind == PUBLISH:
                attempt_output.publish(self.storage, row.payload["from"], row.payload["to"])
            else:
                attempt_output.cleanup(self.storage, row.payload["prefix"])
            return
        # A retry's backoff counts from when it was staged, not from a late publish.
        delay = (aware(row.deliver_at) - now).total_seconds()
        self.broker.publish_json(row.target, row.payload, priority=row.priority,
                                 delay_s=max(0.0, delay))

    def _done(self, row: OutboxRow) -> None:
        with self.db.session() as s:
            s.execute(delete(OutboxRow).where(OutboxRow.id == row.id))

    def _postpone(self, row: OutboxRow, exc: BaseException) -> None:
        attempts = row.attempts + 1
        wait = min(RETRY_INITIAL_S * 2 ** (attempts - 1), RETRY_MAX_S)
        log.warning("outbox %s %s failed (try %d, again in %.0f s): %r", row.kind,
                    row.target, attempts, wait, exc,
                    extra={"task_id": row.task_id})
        try:
            with self.db.session() as s:
                s.execute(update(OutboxRow).where(OutboxRow.id == row.id)
                          .values(attempts=attempts, last_error=repr(exc)[:2000],
                                  due_at=db_now(wait), claimed_until=None))
        except Exception as db_exc:  # noqa: BLE001  the claim lapses; the row is tried again then
            log.warning("could not postpone outbox row %s: %r", row.id, db_exc)

    def _release(self, rows: list[OutboxRow]) -> None:
        if not rows:
            return
        try:
            with self.db.session() as s:
                s.execute(update(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows]))
                          .values(claimed_until=None))
        except Exception as exc:  # noqa: BLE001  the claims lapse on their own
            log.warning("could not release outbox rows: %r", exc)


def run(relay: Relay, stop: threading.Event, *, interval: float = 1.0) -> None:
    """Flush the backlog every `interval` s until `stop` is set. Errors (the database away) are
    logged and the loop goes on."""
    while not stop.wait(interval):
        try:
            while relay.flush().sent >= BATCH:  # a long backlog goes out without pauses
                if stop.is_set():
                    return
        except Exception as exc:  # noqa: BLE001
            log.warning("outbox relay round failed: %r", exc)


def start_thread(relay: Relay, stop: threading.Event, *, interval: float = 1.0) -> threading.Thread:
    t = threading.Thread(target=run, args=(relay, stop), kwargs={"interval": interval},
                         name="framepress-outbox", daemon=True)
    t.start()
    return t


__all__ = ["stage_task", "stage_all", "Outgoing", "Relay", "FlushReport", "run", "start_thread",
           "MESSAGE", "PUBLISH", "CLEANUP"]
