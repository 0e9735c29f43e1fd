"""/healthz and /readyz of a running worker, a forced drain, and `framepress reaper --once`."""
from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import timedelta

import pytest


from support.services import free_port

from relsvc import (SLOW_LADDER, TINY_LADDER, WorkerProcess, cli, kinds, wait_for, wait_status,
                    worker_thread)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:         # not listening yet
        return 0, str(e)


@pytest.mark.timeout(60)
def test_health_and_readiness_endpoints(service, client, sources):
    port = free_port()
    settings = replace(service["settings"], metrics_port=port)
    with worker_thread(settings) as w:
        wait_for(lambda: _get(port, "/healthz")[0] == 200, 10, "/healthz to answer 200")
        wait_for(lambda: _get(port, "/readyz")[0] == 200, 10, "/readyz: consuming")
        tid = client.submit(sources["tiny"], ladder=TINY_LADDER)
        assert wait_status(client, tid)["status"] == "succeeded"
        for _ in range(w.dependencies["s3"].failure_threshold):
            w.dependencies["s3"].record_failure("test: S3 down")
        code, body = _get(port, "/readyz")
        assert code == 503 and "s3 unavailable" in body
        assert _get(port, "/healthz")[0] == 200         # paused, but alive: no restart
        w.dependencies["s3"].record_success()
        assert _get(port, "/readyz")[0] == 200
        w.health.set_draining(True)
        assert _get(port, "/readyz")[0] == 503


@pytest.mark.timeout(150)
def test_second_sigterm_cancels_and_returns_the_task(service, client, sources, tmp_path):
    first = WorkerProcess(service["env"], tmp_path / "first.log")
    second = None
    try:
        tid = client.submit(sources["long"], ladder=SLOW_LADDER)
        wait_for(lambda: (client.status(tid)["progress"] or 0) > 0.05, 90, "progress")
        first.signal(signal.SIGTERM)
        wait_for(lambda: "draining" in first.output(), 10, "the worker to drain")
        first.signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 1               # forced: not a clean drain
        st = client.status(tid)
        assert st["status"] == "queued" and st["attempts"] == 0, (st["status"], kinds(st))
        assert kinds(st)[-2:] == ["error", "requeued"]
        second = WorkerProcess(service["env"], tmp_path / "second.log")
        st = wait_status(client, tid, timeout=120)
        assert st["status"] == "succeeded" and st["attempts"] == 1
        assert kinds(st).count("succeeded") == 1
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_reaper_command_once(service, client, sources):
    from framepress.service.db import Worker, utcnow
    from framepress.service.tasks import TaskStore
    db = service["db"]
    tid = client.submit(sources["tiny"], ladder=TINY_LADDER)
    TaskStore(db).take(tid, "ghost", {})
    with db.session() as s:
        s.add(Worker(id="ghost", hostname="h", pid=1, version="0", hardware={}, state="busy",
                     started_at=utcnow(), heartbeat_at=utcnow() - timedelta(seconds=120),
                     current_task_id=tid))
    out = cli(service["env"], "reaper", "--once", "--json", "--worker-timeout", "30")
    assert out["lost_workers"] == ["ghost"] and out["requeued"] == [tid]
    assert kinds(client.status(tid))[-3:] == ["worker_lost", "incomplete", "requeued"]
    with worker_thread(service["settings"]):
        assert wait_status(client, tid)["status"] == "succeeded"


def _queued_task_ids(queue: str) -> list[str]:
    import pika
    from relsvc import AMQP_URL
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch, out = conn.channel(), []
        while True:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(json.loads(body)["task_id"])
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_reaper_command_relays_the_outbox_with_no_worker_running(service, client, sources,
                                                                  tmp_path):
    """Rows a broker or S3 outage left staged go out with only `framepress reaper` running:
    a task's message (`--once`), then a storage job (the long-running reaper)."""
    import subprocess
    from relsvc import BUCKET, FRAMEPRESS, outbox_rows
    from framepress.service import outbox
    settings = service["settings"]
    queue = settings.queue_name()
    staged = client.store.create(sources["tiny"], settings.output_uri, TINY_LADDER, queue=queue)
    assert outbox_rows(service["db"])                 # staged, not published
    out = cli(service["env"], "reaper", "--once", "--json")
    assert out["relayed"] == 1 and out["relay_failed"] == 0
    assert _queued_task_ids(queue) == [staged] and not outbox_rows(service["db"])

    leftover = f"out/{service['prefix']}/{staged}/.attempts/1/360p.mp4"
    service["s3"].put_object(Bucket=BUCKET, Key=leftover, Body=b"a crashed attempt's upload")
    with service["db"].session() as s:
        outbox.stage_all(s, staged, [outbox.Outgoing.delete_objects(
            f"{settings.output_uri}/{staged}/.attempts")])
    reaper = subprocess.Popen([FRAMEPRESS, "reaper", "--interval", "0.5"], env=service["env"],
                              stdout=open(tmp_path / "reaper.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: not outbox_rows(service["db"]), 60, "the reaper to relay the outbox")
    finally:
        reaper.terminate()
        reaper.wait(timeout=30)
    listed = service["s3"].list_objects_v2(Bucket=BUCKET, Prefix=f"out/{service['prefix']}/")
    assert listed.get("KeyCount", 0) == 0, listed.get("Contents")
