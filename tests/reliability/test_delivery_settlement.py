"""Every delivery is settled, whatever escapes its handling: real RabbitMQ and Postgres."""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from relsvc import TINY_LADDER
from tcpproxy import TcpProxy
from test_e2e_outages import _through


@pytest.mark.timeout(60)
def test_a_handler_that_raises_does_not_stop_the_consumer(service, caplog):
    """The RabbitMQ consumer's thread pool must not swallow a handler's exception: the message
    is logged and requeued, and the next delivery (its redelivery) is handled."""
    from framepress.service.broker import open_broker
    broker = open_broker(service["settings"])
    broker.declare()
    broker.publish_task("11111111-2222-3333-4444-555555555555")
    seen, stop = [], threading.Event()

    def handler(delivery):
        seen.append(delivery.redelivered)
        if len(seen) == 1:
            raise RuntimeError("a bug in the handler")
        delivery.ack()
        stop.set()
    consumer = threading.Thread(target=broker.consume, args=(handler, stop), daemon=True)
    consumer.start()
    try:
        assert stop.wait(30), f"the message was not delivered again: {seen}"
    finally:
        stop.set()
        consumer.join(30)
        broker.close()
    assert seen == [False, True]
    raised = [r for r in caplog.records if "handler raised" in r.getMessage()]
    assert raised and raised[0].exc_info[0] is RuntimeError


@pytest.mark.timeout(60)
def test_a_settle_that_fails_is_logged_and_the_message_kept(service, client, sources, caplog):
    """Local queue on a database that goes away mid-delivery: taking the task fails, and so does
    handing the message back; both are logged, nothing is raised, nothing is lost, and the
    message is handed back once the database answers."""
    from framepress.service.broker.local import LocalBroker
    from framepress.service.db import QueueMessage
    from framepress.service.worker import Worker
    caplog.set_level(logging.INFO, logger="framepress")
    pg = urlsplit(service["db"].url)
    proxy = TcpProxy(pg.port or 5432, pg.hostname or "127.0.0.1")
    settings = replace(service["settings"], broker_url="local",
                       database_url=_through(proxy, service["db"].url))
    worker = Worker(settings)
    try:
        broker = worker.broker
        assert isinstance(broker, LocalBroker)
        tid = client.store.create(sources["tiny"], settings.output_uri, TINY_LADDER)
        broker.publish_task(tid)
        delivery = broker._claim()
        assert delivery is not None
        proxy.set_down(True)
        worker.handle(delivery)                      # must not raise
        proxy.set_down(False)
        # The failed hand-back is written before the next claim: the message comes back now,
        # not when its hour-long lease runs out.
        again = broker._claim()
        assert again is not None and again.body == delivery.body and again.redelivered
        again.requeue()
    finally:
        worker.db.dispose()
        proxy.close()
    messages = [r.getMessage() for r in caplog.records]
    unhandled = [r for r in caplog.records if "delivery not processed" in r.getMessage()]
    # Logged with its traceback (the path that once raised KeyError inside logging itself).
    assert unhandled and unhandled[0].exc_info and unhandled[0].levelno == logging.ERROR, messages
    assert not any("Attempt to overwrite" in m for m in messages)
    assert any("could not requeue the delivery" in m for m in messages), messages
    with service["db"].session() as s:
        queued = s.scalars(select(QueueMessage.body).where(
            QueueMessage.queue == broker.tasks_queue)).all()
    assert any(tid in body for body in queued)       # the message is still there
    assert client.status(tid)["status"] == "queued"
