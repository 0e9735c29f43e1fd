"""Leases, heartbeats, retry times and the reaper run on the database's clock, not the host's:
a worker whose clock is two hours off (libfaketime) writes the same times as any other."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from sqlalchemy import select

from framepress.config import Settings
from framepress.service.db import Task, TaskEvent, Worker, connect, db_now


def _faketime_library() -> str:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1")
    if not found:
        pytest.fail("libfaketime is not installed (apt-get install libfaketime; make build does)")
    return found[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_db_now_offsets_on_both_databases(backend, pg_database, tmp_path):
    db = pg_database if backend == "postgres" else connect(Settings.from_env({}, data_dir=str(tmp_path)))
    with db.session() as s:
        now, later, earlier = s.execute(select(db_now(), db_now(30), db_now(-1.5))).one()
    assert (later - now) == timedelta(seconds=30) and (now - earlier) == timedelta(seconds=1.5)
    with db.session() as s:       # comparisons with stored values order correctly
        s.add(Worker(id="w", hostname="h", pid=1, version="0", hardware={}, state="idle",
                     started_at=db.now(), heartbeat_at=db.now()))
    with db.session() as s:
        assert s.scalar(select(Worker.id).where(Worker.heartbeat_at < db_now(1))) == "w"
        assert s.scalar(select(Worker.id).where(Worker.heartbeat_at < db_now(-1))) is None


SKEWED_WORKER = textwrap.dedent("""
    import json, sys
    from datetime import datetime, timezone
    from types import SimpleNamespace
    from framepress.config import Settings
    from framepress.service.db import connect, Worker
    from framepress.service.failure.heartbeat import Heartbeat
    from framepress.service.failure.reaper import Reaper
    from framepress.service.tasks import TaskStore

    db = connect(Settings.from_env({}, database_url=sys.argv[1]))
    store = TaskStore(db, lease_seconds=60)
    with db.session() as s:
        s.add(Worker(id="skewed", hostname="h", pid=1, version="0", hardware={}, state="idle",
                     started_at=db.now(), heartbeat_at=db.now()))
    hb = Heartbeat(db, store, "skewed", 5)
    running = store.create("s3://b/a.mp4", "s3://b/out", {})
    hb.begin_task(store.take(running, "skewed", {}).lease, None)
    hb._beat()
    retried = store.create("s3://b/b.mp4", "s3://b/out", {})
    store.fail(store.take(retried, "skewed", {}).lease, status="retry_wait",
               error_event={"message": "x"}, retry_in_s=30)
    nowhere = SimpleNamespace(tasks_queue="q", publish_json=lambda *a, **k: None)
    report = Reaper(db, nowhere, worker_timeout=30).reap_once()
    from framepress.service import admin
    cancelled_then_retried = store.create("s3://b/c.mp4", "s3://b/out", {})
    admin.cancel(db, cancelled_then_retried)
    admin.retry(db, nowhere, cancelled_then_retried)
    resolved = store.create("s3://b/d.mp4", "s3://b/out", {})
    admin.resolve(db, resolved, "closed by hand")
    print(json.dumps({"host_now": datetime.now(timezone.utc).isoformat(), "running": running,
                      "retried": retried, "report": report.to_dict(),
                      "operated": [cancelled_then_retried, resolved]}))
""")


def test_a_worker_with_a_wrong_clock_writes_database_times(pg_database, tmp_path):
    env = dict(os.environ, LD_PRELOAD=_faketime_library(), FAKETIME="+2h",
               FAKETIME_DONT_FAKE_MONOTONIC="1")
    proc = subprocess.run([sys.executable, "-c", SKEWED_WORKER, pg_database.url], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    db = pg_database
    now = db.now()
    from datetime import datetime
    assert datetime.fromisoformat(out["host_now"]) - now > timedelta(minutes=110)   # it was skewed
    assert out["report"]["lost_workers"] == [] and out["report"]["requeued"] == []

    def near(dt, expected):
        return abs((dt - expected).total_seconds()) < 60
    with db.session() as s:
        running, retried = s.get(Task, out["running"]), s.get(Task, out["retried"])
        worker = s.get(Worker, "skewed")
        events = s.scalars(select(TaskEvent.at)).all()
        assert near(running.lease_expires_at, now + timedelta(seconds=60))
        assert near(running.created_at, now) and near(running.started_at, now)
        assert near(retried.next_attempt_at, now + timedelta(seconds=30))
        assert near(worker.heartbeat_at, now) and worker.state == "busy"
        assert events and all(near(at, now) for at in events)
        operated = [s.get(Task, t) for t in out["operated"]]   # operator actions too
        assert [t.status for t in operated] == ["queued", "failed"]
        assert all(near(t.updated_at, now) for t in operated)
        assert near(operated[1].finished_at, now)
