"""A long transcode does not starve the broker connection: pika's thread keeps heartbeats going
while the task runs on the worker thread, and the ack still lands on the same channel."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
import framepress
from framepress.db import Worker as WorkerRow

from .conftest import TINY_LADDER, kinds, queue_depth, wait_settled, worker_thread


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
