"""Escalation notices are delivered from durable state: staged with the escalated status, then
sent by the outbox relay, which retries a publish that failed (broker away) and a webhook that
failed (HTTP 500) until they go through. Real RabbitMQ behind a proxy, real Postgres, a real
loopback webhook."""
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
from test_escalation import Hook

LADDER = {"name": "default", "rungs": []}


def _due_now(db) -> None:
    """Skip the relay's backoff instead of sleeping through it."""
    with db.session() as s:
        s.execute(update(OutboxRow).values(due_at=OutboxRow.created_at))


@pytest.mark.timeout(60)
def test_a_failed_escalation_publish_and_webhook_are_retried_until_delivered(service):
    db, settings = service["db"], service["settings"]
    params = pika.URLParameters(AMQP_URL)
    proxy, hook = TcpProxy(params.port, params.host), Hook(failures=2, status=500)
    url = re.sub(r"@([^:/]+):(\d+)", f"@127.0.0.1:{proxy.port}", AMQP_URL, count=1)
    broker = open_broker(replace(settings, broker_url=url), db)
    queue = escalation.escalations_queue_for(broker.tasks_queue)
    store = TaskStore(db, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER, max_attempts=1)
    lease = store.take(tid, "w1", {}).lease
    notice = escalation.build_message(tid, "transcode", "InputError: corrupt", 1,
                                      kind="permanent")
    relay = outbox.Relay(db, broker, webhook_url=hook.url)
    try:
        proxy.set_down(True)
        store.fail(lease, status="escalated", error_event={"stage": "transcode",
                                                          "message": "InputError: corrupt"},
                   outgoing=escalation.notices(notice, queue, webhook=True))
        first = relay.flush(tid)
        assert first.failed == 2 and first.sent == 0    # broker away, hook answering 500
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
        hook.close()
    assert rounds == 3                                   # the hook took it on its third POST
    assert [b for _, b in hook.bodies] == [notice] * 3
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
            OutboxRow.task_id == task_id, OutboxRow.kind.in_([outbox.MESSAGE, outbox.WEBHOOK]))))
