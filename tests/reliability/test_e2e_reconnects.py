"""Dropped broker and database connections mid-task, and a chaos run: every task completes once."""
from __future__ import annotations

import random
import time
from dataclasses import replace

import pytest
from sqlalchemy import create_engine


from relsvc import (AMQP_URL, ONE_RUNG_LADDER, SLOW_LADDER, WorkerFleet, WorkerProcess, kinds,
                    wait_for, wait_status)
from tcpproxy import via_proxy


def _spawn(service, tmp_path, name, env_extra=None, procs=None):
    p = WorkerProcess(service["env"], tmp_path / f"{name}.log", env_extra)
    if procs is not None:
        procs.append(p)
    return p


def _terminate_db_connections(db_url: str) -> int:
    """What a Postgres restart does to clients: every backend of the test database is killed."""
    from framepress.config import sqlalchemy_url
    name = db_url.rsplit("/", 1)[1]
    admin = create_engine(sqlalchemy_url(db_url.rsplit("/", 1)[0] + "/test"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        n = c.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()").scalar()
    admin.dispose()
    return n


@pytest.mark.timeout(150)
def test_broker_connections_dropped_mid_task(service, client, sources, amqp_proxy, tmp_path):
    procs = []
    try:
        w = _spawn(service, tmp_path, "w",
                   {"FRAMEPRESS_BROKER_URL": via_proxy(AMQP_URL, amqp_proxy.port)}, procs)
        tid = client.submit(sources["long"], ladder=SLOW_LADDER)
        wait_for(lambda: (client.status(tid)["progress"] or 0) > 0.1, 90, "progress")
        assert amqp_proxy.cut() >= 1                    # the broker "restarts" under the worker
        st = wait_status(client, tid, timeout=120)
        assert st["status"] == "succeeded", kinds(st)
        # The unacked delivery comes back after the reconnect: acked without work.
        wait_for(lambda: "duplicate_delivery" in kinds(client.status(tid)), 60,
                 "the redelivery to be recognised")
        assert kinds(client.status(tid)).count("succeeded") == 1
        assert w.proc.poll() is None                    # the worker lived through it
    finally:
        for p in procs:
            p.stop()


@pytest.mark.timeout(150)
def test_database_connections_dropped_mid_task(service, client, sources, tmp_path):
    procs = []
    try:
        _spawn(service, tmp_path, "w", None, procs)
        tid = client.submit(sources["long"], ladder=SLOW_LADDER)
        wait_for(lambda: (client.status(tid)["progress"] or 0) > 0.1, 90, "progress")
        killed = 0
        for _ in range(2):                              # twice while the engine runs
            killed += _terminate_db_connections(service["settings"].database_url)
            time.sleep(1.5)
        assert killed >= 1
        st = wait_status(client, tid, timeout=120)
        assert st["status"] == "succeeded", (st["last_error"], kinds(st))
        assert kinds(st).count("succeeded") == 1
    finally:
        for p in procs:
            p.stop()


@pytest.mark.timeout(300)
def test_chaos_kill_9_and_a_broker_restart(service, sources, amqp_proxy, tmp_path):
    """20 tasks, 3 workers; one killed with -9 every ~10 s (and restarted) and all broker
    connections cut once: every task succeeds, exactly once. (The whole set of faults, on
    private service instances, is test_chaos.py's, behind the faults marker.)"""
    from framepress.client import Client
    settings = replace(service["settings"], max_attempts=8)
    env = {**service["env"], "FRAMEPRESS_BROKER_URL": via_proxy(AMQP_URL, amqp_proxy.port)}
    rng = random.Random(4)
    faults = {"kill -9": 0, "broker restart": 0}
    with Client(settings) as c:
        fleet = WorkerFleet(env, tmp_path, 3)
        try:
            ids = [c.submit(sources["long"], ladder=ONE_RUNG_LADDER) for _ in range(20)]
            t0, next_kill, cut_done = time.monotonic(), 5.0, False

            def settled_count():
                return sum(c.status(t)["status"] in ("succeeded", "escalated", "failed")
                           for t in ids)
            while (n_done := settled_count()) < len(ids):
                assert time.monotonic() - t0 < 260, "chaos run did not finish"
                elapsed = time.monotonic() - t0
                if elapsed >= next_kill and elapsed < 60:
                    fleet.kill(rng.choice(fleet.live))
                    faults["kill -9"] += 1
                    next_kill += rng.uniform(8, 12)
                # The broker "restart" mid-run, however fast this machine is.
                if not cut_done and (elapsed >= 15 or n_done >= len(ids) // 2):
                    amqp_proxy.cut()
                    faults["broker restart"] += 1
                    cut_done = True
                time.sleep(0.5)
            done = [c.status(t) for t in ids]
        finally:
            fleet.stop()
    assert [d["status"] for d in done] == ["succeeded"] * 20, [d["last_error"] for d in done]
    assert all(kinds(d).count("succeeded") == 1 for d in done)
    assert faults["kill -9"] >= 1 and faults["broker restart"] == 1, faults
    print(f"chaos: 20 tasks, faults {faults}, attempts {sum(d['attempts'] for d in done)}, "
          f"lost 0, done twice 0")
