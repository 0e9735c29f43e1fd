"""Never a task without a message: a task's message is committed with it (the outbox) and
published by a relay, whenever the broker answers. Real RabbitMQ behind a proxy that takes it
away, real Postgres."""
from __future__ import annotations

import json
import threading
from dataclasses import replace

import pika
import pytest
from sqlalchemy import select

from framepress.service import admin, outbox
from framepress.service.broker import open_broker
from framepress.client import Client
from framepress.service.db import OutboxRow
from framepress.service.tasks import TaskStore

from relsvc import AMQP_URL, TINY_LADDER, kinds, wait_for, wait_status, worker_thread
from tcpproxy import via_proxy

LADDER = {"name": "default", "rungs": []}


def _staged(db, task_id=None) -> list[OutboxRow]:
    """Staged broker messages (not storage jobs)."""
    with db.session() as s:
        q = select(OutboxRow).where(OutboxRow.kind == outbox.MESSAGE).order_by(OutboxRow.id)
        if task_id:
            q = q.where(OutboxRow.task_id == task_id)
        return list(s.scalars(q).all())


def _drain_queue(settings) -> list[dict]:
    """Every message on the tasks queue now, removed."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        out = []
        while True:
            method, _props, body = ch.basic_get(settings.queue_name(), auto_ack=True)
            if method is None:
                return out
            out.append(json.loads(body))
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_a_task_submitted_while_the_broker_is_away_runs_once_it_is_back(service, sources,
                                                                         amqp_proxy):
    settings = replace(service["settings"], broker_url=via_proxy(AMQP_URL, amqp_proxy.port))
    amqp_proxy.set_down(True)
    with Client(settings) as c:
        task_id = c.submit(sources["tiny"], ladder=TINY_LADDER)     # no error: it is stored
        assert c.status(task_id)["status"] == "queued"
        assert [r.payload for r in _staged(c.db, task_id)] == [{"task_id": task_id}]
        with worker_thread(settings):
            wait_for(lambda: _staged(c.db, task_id)[0].attempts >= 2, 30,
                     "the worker's relay to try again")
            amqp_proxy.set_down(False)                              # the broker is back
            st = wait_status(c, task_id, timeout=60)
        assert st["status"] == "succeeded" and st["attempts"] == 1, kinds(st)
        assert kinds(st).count("taken") == 1 and kinds(st).count("succeeded") == 1
        assert _staged(c.db) == []                                  # sent, and sent once


@pytest.mark.timeout(60)
def test_an_operator_retry_while_the_broker_is_away_is_published_later(service, amqp_proxy):
    db, settings = service["db"], replace(service["settings"],
                                          broker_url=via_proxy(AMQP_URL, amqp_proxy.port))
    store = TaskStore(db, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER, max_attempts=1)
    lease = store.take(tid, "w1", {}).lease
    store.fail(lease, status="escalated", error_event={"stage": "pull", "message": "denied"})
    broker = open_broker(settings, db)
    try:
        amqp_proxy.set_down(True)
        out = admin.retry(db, broker, tid)
        assert out["status"] == "queued" and out["published"] is False
        assert store.get(tid) is not None and len(_staged(db, tid)) == 1
        assert _staged(db, tid)[0].attempts == 1
        amqp_proxy.set_down(False)
        assert outbox.Relay(db, broker).flush(tid).sent == 1
    finally:
        broker.close()
    assert _drain_queue(settings) == [{"task_id": tid}]
    assert _staged(db) == []


@pytest.mark.timeout(60)
def test_a_retry_keeps_its_backoff_when_published_late(service, amqp_proxy):
    """The retry's message is staged with its retry_wait status; published after the broker
    returns, it still reaches the queue when its backoff is over, not a full backoff later."""
    db = service["db"]
    settings = replace(service["settings"], broker_url=via_proxy(AMQP_URL, amqp_proxy.port))
    store = TaskStore(db, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    lease = store.take(tid, "w1", {}).lease
    store.fail(lease, status="retry_wait", error_event={"stage": "transcode", "message": "oops"},
               outgoing=[outbox.Outgoing.task(settings.queue_name(), tid, delay_s=2.0)])
    broker = open_broker(settings, db)
    try:
        amqp_proxy.set_down(True)
        assert outbox.Relay(db, broker).flush(tid).failed == 1
        amqp_proxy.set_down(False)
        assert outbox.Relay(db, broker).flush(tid).sent == 1
    finally:
        broker.close()
    assert _drain_queue(settings) == []                 # parked in a delay queue first
    assert wait_for(lambda: _drain_queue(settings), 30, "the delayed retry") == [{"task_id": tid}]


@pytest.mark.timeout(90)
def test_relays_in_parallel_publish_each_message_exactly_once(service):
    db, settings = service["db"], service["settings"]
    store = TaskStore(db, lease_seconds=30)
    ids = {store.create("s3://b/k.mp4", "s3://b/out", LADDER, queue=settings.queue_name())
           for _ in range(60)}
    brokers = [open_broker(settings, db) for _ in range(3)]
    try:
        brokers[0].declare()
        relays = [outbox.Relay(db, b) for b in brokers]
        threads = [threading.Thread(target=lambda r=r: [r.flush(limit=7) for _ in range(12)])
                   for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for b in brokers:
            b.close()
    got = [m["task_id"] for m in _drain_queue(settings)]
    assert sorted(got) == sorted(ids)                   # all of them, none twice
    assert _staged(db) == []
