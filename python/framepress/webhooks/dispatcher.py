"""Delivering staged webhooks: claim due deliveries, POST each signed, record the attempt.

At least once, with a stable `webhook-id`: a dispatcher *claims* a delivery for longer than a
POST may take (SELECT … FOR UPDATE SKIP LOCKED on Postgres; SQLite serialises writers), writes
the attempt row, then posts outside any transaction. A dispatcher killed mid-POST leaves the
delivery claimed and its attempt without an outcome; when the claim lapses another dispatcher
sends it again, under the same id. A receiver that answers anything but 2xx, or does not
answer, is tried again after an exponential backoff, until `max_attempts` POSTs: then the
delivery is `failed` (the task's status and events stay the record).
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import or_, select, update

from framepress.config import redact_webhook
from framepress.service.db import Database, WebhookAttempt, WebhookDelivery, db_now
from framepress.webhooks import signing
from framepress.webhooks.staging import DELIVERED, FAILED, PENDING

log = logging.getLogger("framepress.webhooks")

BATCH = 20
RETRY_INITIAL_S = 1.0
CLAIM_MARGIN_S = 5.0


@dataclass
class Round:
    delivered: int = 0
    failed: int = 0          # attempts that did not go through (the delivery stays pending)
    given_up: int = 0


@dataclass(frozen=True)
class Answer:
    status_code: Optional[int]
    error: Optional[str]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not 2xx: following it would turn the POST into a GET."""

    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """One POST; never raises (a refused connection, a timeout are answers too)."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return Answer(resp.status, None)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, f"HTTP {exc.code}")
    except Exception as exc:  # noqa: BLE001  connection refused, reset, timeout, DNS
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500])


def backoff_s(attempts: int, maximum: float) -> float:
    """Wait after the `attempts`-th failed POST: doubling from 1 s, capped, with ±20 % jitter."""
    base = min(RETRY_INITIAL_S * 2 ** (attempts - 1), maximum)
    return base * random.uniform(0.8, 1.2)


class Dispatcher:
    def __init__(self, db: Database, secret: str, *, timeout: float = 10.0,
                 max_attempts: int = 20, retry_max: float = 600.0,
                 dispatcher_id: Optional[str] = None) -> None:
        self.db = db
        self.key = signing.secret_key(secret)
        self.timeout = timeout
        self.claim_s = timeout + CLAIM_MARGIN_S
        self.max_attempts = max_attempts
        self.retry_max = retry_max
        self.id = dispatcher_id or f"{socket.gethostname()}-{os.getpid()}"

    @classmethod
    def from_settings(cls, db: Database, settings) -> Optional["Dispatcher"]:
        """None without a secret: nothing can be signed, so deliveries wait for a dispatcher
        that has one."""
        if not settings.webhook_secret:
            return None
        return cls(db, settings.webhook_secret, timeout=settings.webhook_timeout or 10.0,
                   max_attempts=settings.webhook_max_attempts or 20,
                   retry_max=settings.webhook_retry_max or 600.0)

    def run_once(self, *, limit: int = BATCH) -> Round:
        """Up to `limit` due deliveries, one claimed at a time (a dispatcher that dies holds
        only the one it was posting)."""
        report = Round()
        for _ in range(limit):
            claimed = self._claim()
            if claimed is None:
                break
            delivery, attempt_id = claimed
            ts = int(time.time())
            body = delivery.body.encode()
            answer = post(delivery.url, body, signing.headers(self.key, delivery.id, ts, body),
                          self.timeout)
            self._record(delivery, attempt_id, answer, report)
        return report

    def _claim(self) -> Optional[tuple[WebhookDelivery, int]]:
        q = (select(WebhookDelivery)
             .where(WebhookDelivery.status == PENDING,
                    WebhookDelivery.next_attempt_at <= db_now(),
                    or_(WebhookDelivery.claimed_until.is_(None),
                        WebhookDelivery.claimed_until < db_now()))
             .order_by(WebhookDelivery.created_at, WebhookDelivery.id).limit(1)
             .with_for_update(skip_locked=True))
        with self.db.session() as s:
            d = s.scalars(q).first()
            if d is None:
                return None
            d.attempts += 1
            d.claimed_until = db_now(self.claim_s)
            attempt = WebhookAttempt(delivery_id=d.id, attempt=d.attempts, dispatcher=self.id,
                                     started_at=db_now())
            s.add(attempt)
            s.flush()
            s.refresh(d)
            s.expunge(d)
            return d, attempt.id

    def _record(self, d: WebhookDelivery, attempt_id: int, answer: Answer, report: Round) -> None:
        values: dict = {"claimed_until": None, "last_status_code": answer.status_code,
                        "last_error": answer.error}
        if answer.ok:
            values.update(status=DELIVERED, delivered_at=db_now())
            report.delivered += 1
        elif d.attempts >= self.max_attempts:
            values.update(status=FAILED)
            report.given_up += 1
            log.error("webhook %s to %s given up after %d attempts: %s", d.id,
                      redact_webhook(d.url), d.attempts, answer.error,
                      extra={"task_id": d.task_id})
        else:
            wait = backoff_s(d.attempts, self.retry_max)
            values.update(next_attempt_at=db_now(wait))
            report.failed += 1
            log.warning("webhook %s to %s failed (attempt %d, again in %.0f s): %s", d.id,
                        redact_webhook(d.url), d.attempts, wait, answer.error,
                        extra={"task_id": d.task_id})
        with self.db.session() as s:
            s.execute(update(WebhookAttempt).where(WebhookAttempt.id == attempt_id).values(
                finished_at=db_now(), status_code=answer.status_code, error=answer.error))
            s.execute(update(WebhookDelivery).where(WebhookDelivery.id == d.id).values(**values))


def run(dispatcher: Dispatcher, stop: threading.Event, *, interval: float = 0.5) -> None:
    """Deliver what is due every `interval` s until `stop` is set; a round that fails (the
    database away) is logged and the loop goes on."""
    while not stop.wait(interval):
        try:
            while dispatcher.run_once().delivered >= BATCH and not stop.is_set():
                pass
        except Exception as exc:  # noqa: BLE001
            log.warning("webhook round failed: %r", exc)


def start_thread(dispatcher: Dispatcher, stop: threading.Event, *,
                 interval: float = 0.5) -> threading.Thread:
    t = threading.Thread(target=run, args=(dispatcher, stop), kwargs={"interval": interval},
                         name="framepress-webhooks", daemon=True)
    t.start()
    return t


def list_deliveries(db: Database, *, task_id: Optional[str] = None, status: Optional[str] = None,
                    limit: int = 100, attempts: bool = True) -> list[dict]:
    """Deliveries, newest first, with their attempts; URLs redacted (they may hold a token)."""
    from framepress.service.db import iso
    q = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc(),
                                         WebhookDelivery.id).limit(limit)
    if task_id:
        q = q.where(WebhookDelivery.task_id == task_id)
    if status:
        q = q.where(WebhookDelivery.status == status)
    with db.session() as s:
        rows = s.scalars(q).all()
        tries: dict[str, list] = {}
        if attempts and rows:
            for a in s.scalars(select(WebhookAttempt).where(
                    WebhookAttempt.delivery_id.in_([r.id for r in rows]))
                    .order_by(WebhookAttempt.id)):
                tries.setdefault(a.delivery_id, []).append(
                    {"attempt": a.attempt, "dispatcher": a.dispatcher,
                     "started_at": iso(a.started_at), "finished_at": iso(a.finished_at),
                     "status_code": a.status_code, "error": a.error})
        return [{"id": r.id, "task_id": r.task_id, "type": r.event_type,
                 "subscription": r.subscription, "url": redact_webhook(r.url),
                 "status": r.status, "attempts": r.attempts,
                 "next_attempt_at": iso(r.next_attempt_at) if r.status == PENDING else None,
                 "last_status_code": r.last_status_code, "last_error": r.last_error,
                 "created_at": iso(r.created_at), "delivered_at": iso(r.delivered_at),
                 **({"tries": tries.get(r.id, [])} if attempts else {})} for r in rows]


__all__ = ["Dispatcher", "Round", "post", "backoff_s", "run", "start_thread", "list_deliveries"]
