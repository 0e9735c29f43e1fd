"""The database stopped, crashed or cut off: the heartbeat keeps its pace, silence while the
database was out of reach is not death, and connections give up in bounded time. Stops and
crashes use a private Postgres cluster of the test's own; the partition is a paused proxy."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from framepress.config import Settings, sqlalchemy_url
from framepress.service.db import CONNECT_TIMEOUT_S, Task, Worker, connect, postgres_connect_args
from framepress.scaling.health import Health
from framepress.service.failure.heartbeat import UNKNOWN, Heartbeat
from framepress.service.failure.reaper import Reaper
from framepress.service.tasks import TaskStore
from support.private_postgres import private_postgres
from support.services import RecordingBroker, wait_for
from tcpproxy import TcpProxy

LADDER = {"name": "default", "rungs": []}


@pytest.fixture
def private_pg(tmp_path):
    with private_postgres(tmp_path) as pg:
        yield pg


def _db(url):
    return connect(Settings.from_env({}, database_url=url))


def _register(db, worker_id, task_id=None):
    now = db.now()
    with db.session() as s:
        s.add(Worker(id=worker_id, hostname="h", pid=1, version="0", hardware={}, state="busy",
                     started_at=now, heartbeat_at=now, current_task_id=task_id))


def _heartbeat_at(db, worker_id):
    with db.session() as s:
        return s.scalar(select(Worker.heartbeat_at).where(Worker.id == worker_id))


def test_the_heartbeat_keeps_its_pace_through_a_database_stop(private_pg):
    db = _db(private_pg.create_database("beats"))
    _register(db, "w1")
    health = Health(heartbeat_interval=0.5)
    hb = Heartbeat(db, TaskStore(db), "w1", 0.5, health=health)
    hb.start()
    try:
        wait_for(lambda: hb.reachable_since != UNKNOWN, 20, "a first beat")
        before = hb.reachable_since
        private_pg.stop()
        down = time.monotonic()
        while time.monotonic() - down < 4:            # 8 intervals of failed writes
            assert health.healthz() == (True, "ok")
            time.sleep(0.2)
        private_pg.start()
        wait_for(lambda: hb.reachable_since > before + timedelta(seconds=4), 30,
                 "beats to get through again, counted from the database's return")
        assert health.healthz() == (True, "ok")
    finally:
        hb.stop()
        db.dispose()


def test_a_partition_blocks_neither_the_heartbeat_nor_new_connections(pg_database, monkeypatch):
    """Bytes go nowhere and nothing is closed: the writer waits, the liveness beat does not (until
    one write has hung past WRITE_STUCK_S: then the writer is wedged), and a new connection gives
    up after its connect timeout."""
    from framepress.service.failure import heartbeat
    monkeypatch.setattr(heartbeat, "WRITE_STUCK_S", 4.0)
    proxy = TcpProxy(5432)
    url = pg_database.url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    db = connect(Settings.from_env({}, database_url=url), migrate=False)
    _register(db, "w1")
    health = Health(heartbeat_interval=0.5)
    hb = Heartbeat(db, TaskStore(db), "w1", 0.5, health=health)
    hb.start()
    try:
        wait_for(lambda: hb.reachable_since != UNKNOWN, 20, "a first beat")
        proxy.pause()
        time.sleep(0.6)                                  # a write is now stuck in the partition
        cut_off = time.monotonic()
        while time.monotonic() - cut_off < 3:            # 6 intervals
            assert health.healthz() == (True, "ok")
            time.sleep(0.2)
        fresh = create_engine(sqlalchemy_url(url), connect_args=postgres_connect_args())
        started = time.monotonic()
        with pytest.raises(OperationalError):
            fresh.connect()
        assert time.monotonic() - started < CONNECT_TIMEOUT_S + 10
        fresh.dispose()
        why = wait_for(lambda: not health.healthz()[0] and health.healthz()[1], 20,
                       "a write hung past WRITE_STUCK_S to fail liveness")
        assert "no heartbeat" in why
        stuck_at = _heartbeat_at(pg_database, "w1")
        proxy.resume()
        wait_for(lambda: _heartbeat_at(pg_database, "w1") > stuck_at, 20, "beats after the partition")
        wait_for(lambda: health.healthz()[0], 10, "liveness back")
        with db.engine.connect() as c:                    # server-side limits on every session
            assert c.exec_driver_sql("SHOW statement_timeout").scalar() == "30s"
            assert c.exec_driver_sql("SHOW lock_timeout").scalar() == "10s"
    finally:
        proxy.resume()
        hb.stop()
        db.dispose()
        proxy.close()


def test_after_a_crash_and_restart_the_reaper_loses_nobody_who_beats_again(private_pg):
    db = _db(private_pg.create_database("reap"))
    store = TaskStore(db, lease_seconds=1)
    tid = store.create("s3://b/k.mp4", "s3://b/out", LADDER)
    store.take(tid, "w", {})
    _register(db, "w", task_id=tid)
    broker = RecordingBroker()
    reaper = Reaper(db, broker, worker_timeout=2, lease_grace=0,
                    gap_seconds=3600)            # only the restart can tell it about the outage
    reaper.observe()
    private_pg.crash()                           # pg_ctl stop -m immediate
    time.sleep(3)
    private_pg.start()
    assert not reaper.reap_once()                # silent 3 s > 2 s, lease run out: not lost
    fresh = Reaper(db, broker, worker_timeout=2, lease_grace=0)
    assert not fresh.reap_once()                 # a reaper started afterwards knows it too
    with db.session() as s:
        assert s.get(Task, tid).status == "running"
    time.sleep(2.5)                              # silent a full timeout since the restart
    report = reaper.reap_once()
    assert report.lost_workers == ["w"] and report.requeued == [tid] and broker.published == [tid]
    db.dispose()
