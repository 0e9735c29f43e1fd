"""Settings, fencing, the local queue and log lines: fast checks without the engine at work."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import update

from framepress.config import Settings, redact_url, sqlalchemy_url
from framepress.service.db import Task, connect, utcnow
from framepress.service.errors import StaleLease
from framepress.service.tasks import TaskStore


def test_settings_from_env_flags_and_defaults(tmp_path):
    s = Settings.from_env({"FRAMEPRESS_DATABASE_URL": "postgresql://u@h:5432/db",
                           "FRAMEPRESS_METRICS_PORT": "0", "FRAMEPRESS_MAX_ATTEMPTS": "7"},
                          broker_url="amqp://u:p@h:5672/v", max_attempts=None)
    assert s.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"
    assert s.metrics_port == 0 and s.max_attempts == 7
    assert not s.embedded and s.allow_file_uris is False
    d = Settings.from_env({}, data_dir=str(tmp_path))
    assert d.embedded and d.allow_file_uris is True
    assert d.database_url == f"sqlite:///{tmp_path}/framepress.db"
    assert d.output_uri == (tmp_path / "outputs").as_uri()
    assert d.queue_name() == "framepress.tasks" and d.queue_name(".dead") == "framepress.tasks.dead"
    assert Settings.from_env({}, queue_prefix="x.").queue_name() == "x.framepress.tasks"
    with pytest.raises(ValueError, match="FRAMEPRESS_METRICS_PORT"):
        Settings.from_env({"FRAMEPRESS_METRICS_PORT": "lots"})
    assert sqlalchemy_url("postgres://a@b/c") == "postgresql+psycopg://a@b/c"
    assert redact_url("amqp://user:secret@host:5672/v") == "amqp://user:***@host:5672/v"
    assert "pw-4711" not in json.dumps(Settings.from_env({}, broker_url="amqp://u:pw-4711@h/").redacted())
    # The webhooks' signing secret and the console's admin token are never shown.
    shown = json.dumps(Settings.from_env({"FRAMEPRESS_WEBHOOK_SECRET": "whsec_c2VjcmV0LWtleS1ieXRlcw==",
                                          "FRAMEPRESS_ADMIN_TOKEN": "tok-4711"}).redacted())
    assert "c2VjcmV0" not in shown and "tok-4711" not in shown


def _worker(settings, tmp_path):
    """A worker built from `settings`, on embedded defaults in `tmp_path` (not started)."""
    from framepress.service.worker import Worker
    return Worker(settings.with_(data_dir=str(tmp_path), database_url=None))


def test_reliability_settings_come_from_env_and_flags(monkeypatch, tmp_path):
    from click.testing import CliRunner
    from framepress.cli import cli
    from framepress.config import worker_timeout
    from framepress.service.failure.backoff import RetryPolicy

    # Defaults are the library's own.
    d = Settings.from_env({}, heartbeat_seconds=1.0, lease_seconds=5.0)
    kit = _worker(d, tmp_path)
    assert kit.retry == RetryPolicy() and d.escalation_webhook is None
    assert (kit.settings.max_task_seconds, kit.drainer.drain_timeout, kit.health.stuck_after) == \
        (1740, 0, 300)
    assert kit.policy.deadline_s == 24 * 3600
    assert worker_timeout(d) == 5.0 and d.worker_reaper is True

    # The environment reaches the worker's objects...
    env = {"FRAMEPRESS_RETRY_INITIAL": "0.5", "FRAMEPRESS_RETRY_JITTER": "none",
           "FRAMEPRESS_BREAKER_THRESHOLD": "4", "FRAMEPRESS_MAX_TASK_SECONDS": "60",
           "FRAMEPRESS_WORKER_TIMEOUT": "9", "FRAMEPRESS_WORKER_REAPER": "0",
           "FRAMEPRESS_TASK_DEADLINE": "600"}
    s = Settings.from_env(env)
    kit = _worker(s, tmp_path)
    assert (kit.retry.initial, kit.retry.jitter, kit.settings.max_task_seconds) == (0.5, "none", 60)
    assert kit.dependencies["s3"].failure_threshold == 4 and worker_timeout(s) == 9
    assert kit.policy.deadline_s == 600 and s.worker_reaper is False

    # ... and a flag of `framepress worker` wins over it.
    seen = []
    monkeypatch.setattr("framepress.service.worker.run_worker", lambda st, **kw: seen.append(st) or 0)
    monkeypatch.setattr("framepress.cli.service._setup_logs", lambda *a, **kw: None)
    result = CliRunner().invoke(cli, ["worker", "--retry-initial", "0.7", "--drain-timeout", "50",
                                      "--escalation-webhook", "https://hooks.example.com/T/sekrit",
                                      "--task-deadline", "120"],
                                env=env)
    assert result.exit_code == 0, result.output
    kit = _worker(seen[0], tmp_path)
    assert kit.policy.deadline_s == 120
    assert (kit.retry.initial, kit.retry.jitter, kit.drainer.drain_timeout) == (0.7, "none", 50)
    assert seen[0].escalation_webhook == "https://hooks.example.com/T/sekrit"
    # The webhook's token stays out of logs.
    shown = seen[0].redacted()["escalation_webhook"]
    assert shown == "https://hooks.example.com/***"


def _store(tmp_path):
    db = connect(Settings.from_env({}, data_dir=str(tmp_path)))
    return TaskStore(db, lease_seconds=30)


def test_a_taken_over_lease_can_no_longer_write_or_succeed(tmp_path):
    store = _store(tmp_path)
    tid = store.create("file:///x.mp4", "file:///out", {"name": "l", "rungs": []})
    first = store.take(tid, "w1", {"pid": 1}).lease
    assert first is not None and first.token == 1
    assert store.take(tid, "w2", {}).outcome == "busy"  # live lease
    with store.db.session() as s:  # w1 goes silent: its lease runs out
        s.execute(update(Task).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    taken = store.take(tid, "w2", {"pid": 2})
    assert taken.outcome == "taken" and taken.took_over_from == "w1" and taken.lease.token == 2
    for write in (lambda: store.progress(first, 0.5), lambda: store.check(first),
                  lambda: store.succeed(first, [], {})):
        with pytest.raises(StaleLease):
            write()
    store.succeed(taken.lease, [], {"ok": True})
    st = store.status(tid)
    assert st["status"] == "succeeded" and st["attempts"] == 2
    assert [e["kind"] for e in st["events"]] == ["taken", "taken", "succeeded"]
    assert st["events"][1]["data"]["took_over_from"] == "w1"
    assert store.take(tid, "w3", {}).outcome == "settled"
    assert st["events"][0]["data"] == {"pid": 1}


def test_attempts_exhausted_by_redeliveries_stop_at_max(tmp_path):
    store = _store(tmp_path)
    tid = store.create("file:///x.mp4", "file:///out", {}, max_attempts=2)
    for worker in ("a", "b"):
        assert store.take(tid, worker, {}).outcome == "taken"
        with store.db.session() as s:  # the worker died mid-task
            s.execute(update(Task).values(lease_expires_at=None))
    assert store.take(tid, "c", {}).outcome == "exhausted"


def test_local_queue_ack_reject_requeue(tmp_path):
    import threading
    from framepress.service.broker import open_broker
    settings = Settings.from_env({}, data_dir=str(tmp_path))
    broker = open_broker(settings)
    for i in range(3):
        broker.publish_task(f"t{i}", priority=i)
    seen = []

    def handler(d):
        seen.append((json.loads(d.body)["task_id"], d.redelivered))
        tid = seen[-1][0]
        if tid == "t2" and not d.redelivered:
            d.requeue()
        elif tid == "t1":
            d.reject()
        else:
            d.ack()
        if len(seen) == 4:
            stop.set()
    stop = threading.Event()
    broker.consume(handler, stop)
    # Highest priority first; a requeued message comes back marked redelivered.
    assert seen == [("t2", False), ("t2", True), ("t1", False), ("t0", False)]
    assert broker.depth() == 0 and broker.depth(settings.queue_name(".dead")) == 1


def test_json_log_lines_carry_task_and_worker_ids(capsys):
    from framepress.logs import setup
    setup("json")
    try:
        logging.getLogger("framepress.worker").info(
            "taken", extra={"task_id": "T", "worker_id": "W", "kind": "taken", "data": {"pid": 1}})
    finally:
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["task_id"] == "T" and line["worker_id"] == "W" and line["kind"] == "taken"
    assert line["data"] == {"pid": 1} and line["msg"] == "taken" and "ts" in line


def test_progress_reaches_the_task_row_at_most_once_a_second(tmp_path):
    import time
    from framepress.service.failure.heartbeat import Heartbeat
    store = _store(tmp_path)
    tid = store.create("file:///x.mp4", "file:///out", {})
    lease = store.take(tid, "w", {}).lease
    writes = []
    real = store.progress
    store.progress = lambda l, f: (writes.append((time.monotonic(), f)), real(l, f))
    hb = Heartbeat(store.db, store, "w", interval=60)
    hb.start()
    hb.begin_task(lease, cancel_token=None)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.6:  # the engine reports ~every 10 ms here
        hb.report_progress((time.monotonic() - t0) / 2.6)
        time.sleep(0.01)
    time.sleep(1.2)
    hb.stop()
    assert 2 <= len(writes) <= 4
    assert all(b[0] - a[0] >= 0.99 for a, b in zip(writes, writes[1:]))
    assert store.status(tid)["progress"] == pytest.approx(writes[-1][1])
