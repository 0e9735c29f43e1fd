"""The explicit delivery limit, queues declared by an older version, and dead letters reconciled
with their task rows. Real RabbitMQ and Postgres."""
from __future__ import annotations

import json
import logging

import pika
import pytest
from sqlalchemy import select

from framepress.service import dead_letters, outbox
from framepress.service.failure import escalation
from framepress.service.broker import open_broker
from framepress.service.broker.rabbitmq import DELIVERY_LIMIT
from framepress.service.db import TaskEvent
from framepress.service.tasks import TaskStore

from relsvc import AMQP_URL, wait_for

LADDER = {"name": "default", "rungs": []}


@pytest.fixture
def channel():
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    ch.confirm_delivery()
    yield ch
    conn.close()


def _depth(ch, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count


def _hand_back_until_dead(ch, queue: str) -> int:
    """What workers that keep failing do: take the message and hand it back, until RabbitMQ
    dead-letters it. Returns how many times it was delivered."""
    deliveries = 0
    while True:
        method, _props, _body = ch.basic_get(queue)
        if method is None:
            return deliveries
        deliveries += 1
        ch.basic_nack(method.delivery_tag, requeue=True)


def _bodies(ch, queue: str) -> list[bytes]:
    out = []
    while (got := ch.basic_get(queue, auto_ack=True))[0] is not None:
        out.append(got[2])
    return out


@pytest.mark.timeout(60)
def test_a_queue_declared_without_the_limit_is_used_as_it_is(service, channel, caplog):
    settings = service["settings"]
    tasks, dead = settings.queue_name(), settings.queue_name(".dead")
    channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_declare(tasks, durable=True, arguments={      # as an older framepress did
        "x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
    caplog.set_level(logging.WARNING, logger="framepress.broker")
    broker = open_broker(settings)
    try:
        broker.publish_task("t-1")                              # no PRECONDITION_FAILED
    finally:
        broker.close()
    assert "exists with other arguments" in caplog.text and "set_policy" in caplog.text
    assert [json.loads(b) for b in _bodies(channel, tasks)] == [{"task_id": "t-1"}]


@pytest.mark.timeout(90)
def test_dead_lettered_messages_are_reconciled_with_their_tasks(service, channel):
    db, settings = service["db"], service["settings"]
    tasks, dead = settings.queue_name(), settings.queue_name(".dead")
    store = TaskStore(db, lease_seconds=30)
    waiting = store.create("s3://b/a.mp4", "s3://b/out", LADDER)
    done = store.create("s3://b/b.mp4", "s3://b/out", LADDER)
    lease = store.take(done, "w1", {}).lease
    store.succeed(lease, [], {})
    broker = open_broker(settings, db)
    try:
        for tid in (waiting, done):
            broker.publish_task(tid)
        broker.publish_json(tasks, {"not": "a task"})
        method, _props, _body = channel.basic_get(tasks)         # a worker refuses the first
        channel.basic_nack(method.delivery_tag, requeue=False)   # ... (it is `waiting`'s)
        broker.publish_task(waiting)
        # The explicit limit: each message is delivered DELIVERY_LIMIT + 1 times, then dead.
        assert _hand_back_until_dead(channel, tasks) == 3 * (DELIVERY_LIMIT + 1)
        wait_for(lambda: _depth(channel, dead) == 4, 10, "4 dead letters")

        report = dead_letters.review(db, broker)
        assert report.requeued == [waiting] and report.dropped == 1 and report.kept == 2
        assert _depth(channel, dead) == 2                       # refused and not-a-task stay
        assert outbox.Relay(db, broker).flush().sent == 1
        assert [json.loads(b) for b in _bodies(channel, tasks)] == [{"task_id": waiting}]
        with db.session() as s:
            ev = s.scalars(select(TaskEvent).where(TaskEvent.task_id == waiting,
                                                   TaskEvent.kind == "requeued")).one()
            assert ev.data["dead_lettered"] and "dead-lettered" in ev.message

        # A message that keeps dying escalates its task instead of circling for ever.
        for _ in range(dead_letters.MAX_DEAD_LETTERS):
            broker.publish_task(waiting)
            _hand_back_until_dead(channel, tasks)
            wait_for(lambda: _depth(channel, dead) == 3, 10, "the dead letter")
            report = dead_letters.review(db, broker, notices=lambda m: escalation.notices(
                m, escalation.escalations_queue_for(tasks)))
            outbox.Relay(db, broker).flush()
            _bodies(channel, tasks)
        assert report.escalated == [waiting]
        notices = _bodies(channel, escalation.escalations_queue_for(tasks))
        assert [json.loads(b)["kind"] for b in notices] == ["dead_lettered"]
    finally:
        broker.close()
    st = store.status(waiting)
    assert st["status"] == "escalated" and "dead-lettered 4 times" in st["last_error"]
    assert store.status(done)["status"] == "succeeded"
