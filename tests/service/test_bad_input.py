"""Bad input never stops a worker: bad messages are dead-lettered, a missing source escalates at
once, an invalid ladder is refused at submit."""
from __future__ import annotations

import json
import uuid

import pytest

from framepress.errors import LadderError

from .conftest import (BUCKET, TINY_LADDER, cli, kinds, publish_raw, queue_depth, wait_for,
                       wait_settled)


@pytest.mark.timeout(90)
def test_bad_messages_are_dead_lettered_and_the_worker_keeps_going(client, run_worker, settings,
                                                                   source_uris, caplog):
    client.broker.declare()
    unknown = str(uuid.uuid4())
    for body in (b"this is not json", b'{"no_task_id": 1}', b'["task_id"]',
                 json.dumps({"task_id": unknown}).encode()):
        publish_raw(settings, body)
    with run_worker():
        good = client.submit(source_uris["clip144"], ladder=TINY_LADDER)
        st = wait_settled(client, good)
        wait_for(lambda: queue_depth(settings, ".dead") == 4, timeout=20, what="4 dead letters")
    assert st["status"] == "succeeded"
    assert queue_depth(settings) == 0
    logged = caplog.text
    assert "not JSON" in logged and "no task_id" in logged and f"no task {unknown}" in logged


@pytest.mark.timeout(90)
def test_missing_source_is_a_clear_non_retryable_error(client, run_worker):
    with run_worker():
        task_id = client.submit(f"s3://{BUCKET}/nowhere/missing.mp4", ladder=TINY_LADDER)
        st = wait_settled(client, task_id)
    assert st["status"] == "escalated"
    assert st["attempts"] == 1  # not retried
    assert "does not exist" in st["last_error"] and "SourceMissing" in st["last_error"]
    assert kinds(st) == ["taken", "details_loaded", "error", "escalated"]
    err = st["events"][2]
    assert err["stage"] == "pull" and err["attempt"] == 1 and err["data"]["permanent"] is True


@pytest.mark.timeout(60)
def test_invalid_ladder_is_refused_at_submit(client, settings, source_uris):
    bad = {"name": "bad", "rungs": [{"name": "x", "height": 5, "bitrate": 1000}]}
    before = len(client.list_tasks())
    with pytest.raises(LadderError):
        client.submit(source_uris["clip144"], ladder=bad)
    with pytest.raises(LadderError):
        client.submit(source_uris["clip144"], ladder="no-such-ladder")
    proc = cli(settings, "submit", source_uris["clip144"], "--ladder", json.dumps(bad), "--json",
               check=False)
    assert proc.returncode == 2 and "height" in proc.stderr and proc.stdout == ""
    assert len(client.list_tasks()) == before  # nothing inserted, nothing published


@pytest.mark.timeout(60)
def test_file_uris_are_refused_outside_embedded_mode(client):
    from framepress.service.errors import ConfigError
    with pytest.raises(ConfigError):
        client.submit("file:///etc/hostname", ladder=TINY_LADDER)


@pytest.mark.timeout(60)
def test_a_submit_while_the_broker_is_away_keeps_its_message_in_the_outbox(settings, source_uris):
    """The task and its message are committed together; the message waits for the broker."""
    from dataclasses import replace
    from sqlalchemy import select
    from framepress.client import Client
    from framepress.service.db import OutboxRow
    unreachable = replace(settings, broker_url="amqp://guest:guest@127.0.0.1:1/%2F")
    with Client(unreachable) as c:
        task_id = c.submit(source_uris["clip144"], ladder=TINY_LADDER)
        assert c.status(task_id)["status"] == "queued"
        with c.db.session() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.task_id == task_id)).all()
            assert [(r.target, r.payload, r.attempts) for r in rows] == [
                (settings.queue_name(), {"task_id": task_id}, 1)]
            assert "cannot connect" in rows[0].last_error
