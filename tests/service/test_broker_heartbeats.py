"""A long transcode does not starve the broker connection: pika's thread keeps heartbeats going
while the task runs on the worker thread, and the ack still lands on the same channel."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
import framepress
from framepress.service.db import Worker as WorkerRow

from .conftest import TINY_LADDER, kinds, queue_depth, wait_for, wait_settled, worker_thread


@pytest.mark.timeout(90)
def test_long_task_keeps_the_connection_and_is_acked_once(settings, client, source_uris,
                                                          monkeypatch):
    real = framepress.transcode

    def slow_transcode(*args, **kwargs):
        time.sleep(6)  # three missed 1 s heartbeats would make RabbitMQ drop the connection
        return real(*args, **kwargs)
    monkeypatch.setattr(framepress, "transcode", slow_transcode)
    fast_beats = replace(settings, broker_url=settings.broker_url + "?heartbeat=1")
    with worker_thread(fast_beats) as worker:
        task_id = client.submit(source_uris["clip144"], ladder=TINY_LADDER)
        st = wait_settled(client, task_id, timeout=60)
        time.sleep(2.5)  # a lost ack would show up as a redelivery within a heartbeat timeout
        assert queue_depth(settings) == 0
        worker_id = worker.id
    st = client.status(task_id)
    assert st["status"] == "succeeded" and st["attempts"] == 1
    assert kinds(st) == ["taken", "details_loaded", "pulled", "transcoded", "uploaded", "succeeded"]
    with client.db.session() as s:
        row = s.get(WorkerRow, worker_id)
        assert row.state == "stopped" and row.pid > 0 and row.version == framepress.__version__
        assert "cpus" in row.hardware and row.heartbeat_at is not None


@pytest.mark.timeout(60)
def test_an_idle_publisher_connection_keeps_its_heartbeats(settings):
    """With 1 s heartbeats RabbitMQ drops a connection silent for ~2 s; the publisher's stays."""
    from framepress.service.broker import open_broker
    broker = open_broker(replace(settings, broker_url=settings.broker_url + "?heartbeat=1"))
    try:
        broker.publish_task("first")
        conn = broker._pub_conn
        time.sleep(5)                          # idle, well past two heartbeat timeouts
        assert conn.is_open
        broker.publish_task("second")
        assert broker._pub_conn is conn        # published on the same connection: never dropped
    finally:
        broker.close()
    assert queue_depth(settings) == 2


@pytest.mark.timeout(90)
def test_reconnect_backoff_starts_over_after_a_good_connection(settings, caplog):
    """Each drop of a connection that worked waits the initial backoff, not a doubled one."""
    import logging
    import re
    import threading
    import pika
    from framepress.service.broker import open_broker
    from framepress.service.broker.rabbitmq import RECONNECT_INITIAL_S
    from reliability.tcpproxy import TcpProxy

    params = pika.URLParameters(settings.broker_url)
    proxy = TcpProxy(params.port, params.host)
    url = re.sub(r"@([^:/]+):(\d+)", f"@127.0.0.1:{proxy.port}", settings.broker_url, count=1)
    broker = open_broker(replace(settings, broker_url=url))
    stop = threading.Event()
    consumer = threading.Thread(target=broker.consume, args=(lambda d: d.ack(), stop), daemon=True)
    caplog.set_level(logging.WARNING, logger="framepress.broker")
    try:
        consumer.start()
        for _ in range(3):
            wait_for(lambda: broker.consuming, 30, "the consumer to connect")
            assert proxy.cut() >= 1
            wait_for(lambda: not broker.consuming, 30, "the consumer to notice")
        wait_for(lambda: broker.consuming, 30, "the consumer to connect")
    finally:
        stop.set()
        consumer.join(timeout=30)
        broker.close()
        proxy.close()
    waits = [float(m) for m in re.findall(r"reconnecting in ([\d.]+) s", caplog.text)]
    assert waits == [RECONNECT_INITIAL_S] * 3
