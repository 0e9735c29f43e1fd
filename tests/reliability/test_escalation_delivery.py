"""Escalation notices are delivered from durable state: staged with the escalated status, then
sent by the outbox relay, which retries a publish that failed (broker away) until it goes
through. Real RabbitMQ behind a proxy, real Postgres. (The escalation webhook is a subscription
of the signed webhooks: tests/web.)"""
from __future__ import annotations

import json
import re
from dataclasses import replace

import pika
import pytest
from sqlalchemy import select, update

from framepress.service import outbox
from framepress.service.broker import open_broker
from framepress.service.db import OutboxRow
from framepress.service.failure import escalation
from framepress.service.tasks import TaskStore

from relsvc import AMQP_URL
from tcpproxy import TcpProxy

LADDER = {"name": "default", "rungs": []}


def _due_now(db) -> None:
    """Skip the relay's backoff instead of sleeping through it."""
    with db.session() as s:
        s.execute(update(OutboxRow).values(due_at=OutboxRow.created_at))


@pytest.mark.timeout(60)
def test_a_failed_escalation_publish_is_retried_until_delivered(service):
    db, settings = service["db"], service["settings"]
    params = pika.URLParameters(AMQP_URL)
    proxy = TcpProxy(params.port, params.host)
    url = re.sub(r"@([^:/]+):(\d+)", f"@127.0.0.1:{proxy.port}", AMQP_URL, count=1)
    broker = open_broker(replace(settings, broker_url=url), db)
    queue = escalation.escalations_queue_for(broker.tasks_queue)
    store = TaskStore(db, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER, max_attempts=1)
    lease = store.take(tid, "w1", {}).lease
    notice = escalation.build_message(tid, "transcode", "InputError: corrupt", 1,
                                      kind="permanent")
    relay = outbox.Relay(db, broker)
    try:
        proxy.set_down(True)
        store.fail(lease, status="escalated", error_event={"stage": "transcode",
                                                          "message": "InputError: corrupt"},
                   outgoing=escalation.notices(notice, queue))
        first = relay.flush(tid)
        assert first.failed == 1 and first.sent == 0    # the broker is away
        proxy.set_down(False)
        rounds = 1
        while _pending(db, tid):
            assert rounds < 5, "the notices were not delivered"
            _due_now(db)
            relay.flush()
            rounds += 1
    finally:
        broker.close()
        proxy.close()
    assert rounds == 2                                   # published on the first round after
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        got = [json.loads(b) for m, _p, b in iter(lambda: ch.basic_get(queue, auto_ack=True),
                                                   (None, None, None))]
    finally:
        conn.close()
    assert got == [notice]                               # delivered once
    assert store.status(tid)["status"] == "escalated"


def _pending(db, task_id: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(OutboxRow.kind).where(
            OutboxRow.task_id == task_id, OutboxRow.kind == outbox.MESSAGE)))
