"""Outages of the database and of S3 while tasks are in flight: real Postgres (reached through a
TCP proxy that can cut and refuse connections), real RabbitMQ, moto S3 behind a proxy that can
answer 503 SlowDown. The worker must never wedge, and an outage must spend no attempt."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from relsvc import SLOW_LADDER, TINY_LADDER, kinds, wait_for, wait_status, worker_thread
from tcpproxy import TcpProxy


def _through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()


def _event(client, task_id: str, kind: str) -> bool:
    return kind in kinds(client.status(task_id))


@pytest.mark.timeout(150)
def test_worker_goes_on_after_the_database_goes_away_mid_delivery(service, client, sources,
                                                                  caplog):
    """The database vanishes while a task is mid-transcode: recording the attempt's outcome
    fails. The worker keeps the delivery, waits for the database with its breaker open, then
    records the failure as an outage (no attempt spent) — and takes and finishes the next task."""
    caplog.set_level(logging.INFO, logger="framepress")
    pg = urlsplit(service["db"].url)
    proxy = TcpProxy(pg.port or 5432, pg.hostname or "127.0.0.1")
    settings = replace(service["settings"], database_url=_through(proxy, service["db"].url),
                       worker_reaper=False)
    try:
        with worker_thread(settings) as w:
            first = client.submit(sources["long"], ladder=SLOW_LADDER)
            wait_for(lambda: _event(client, first, "pulled"), 60, "the first task to be pulled")
            proxy.set_down(True)           # the database is gone: connections reset, new ones dropped
            wait_for(lambda: w.dependencies["database"].is_open, 90,
                     "the database breaker to open")
            wait_for(lambda: any("waiting to record it" in r.getMessage()
                                 for r in caplog.records), 30, "the worker to wait for the database")
            time.sleep(2)
            proxy.set_down(False)          # it is back
            second = client.submit(sources["tiny"], ladder=TINY_LADDER)
            done = [wait_status(client, t, timeout=120) for t in (first, second)]
    finally:
        proxy.close()
    assert [d["status"] for d in done] == ["succeeded", "succeeded"], \
        [(d["status"], d["last_error"]) for d in done]
    assert [d["attempts"] for d in done] == [1, 1]
    errors = [e for e in done[0]["events"] if e["kind"] == "error"]
    assert errors and all(e["data"]["class"] == "dependency" for e in errors), errors
    deferrals = [e for e in done[0]["events"] if e["kind"] == "retry_scheduled"]
    assert deferrals and all(e["data"]["deferred"] for e in deferrals), deferrals
    taken = [e for e in done[1]["events"] if e["kind"] == "taken"]
    assert taken and taken[-1]["worker_id"] == w.id
    assert not any("Attempt to overwrite" in r.getMessage() for r in caplog.records)


def _in_flight(client, ids) -> bool:
    return any(_event(client, t, "taken") for t in ids)


def _s3_slowdown_outage(service, client, sources, outage_s: float, n_tasks: int):
    """S3 answers 503 SlowDown for `outage_s` seconds while `n_tasks` tasks are in flight or
    queued on two workers. Returns the tasks' final status, the names of the breakers that
    opened, and the names of those that closed while S3 still answered 503."""
    proxy = service["proxy"]
    opened: list[str] = []
    closed_during_outage: list[str] = []

    def on_change(breaker, old, new):
        if new == "open":
            opened.append(breaker.name)
        elif new == "closed" and proxy.slow_down:
            closed_during_outage.append(breaker.name)   # a probe took 503 for "up"
    try:
        with worker_thread(service["settings"]) as w1, worker_thread(service["settings"]) as w2:
            for w in (w1, w2):
                w.dependencies.breakers.add_listener(on_change)
            ids = [client.submit(sources["tiny"], ladder=SLOW_LADDER) for _ in range(n_tasks)]
            wait_for(lambda: _in_flight(client, ids), 60, "a task to be taken")
            proxy.slow_down = True
            t_down = time.monotonic()
            wait_for(lambda: "s3" in opened, 90, "the s3 breaker to open")
            time.sleep(max(0.0, outage_s - (time.monotonic() - t_down)))
            proxy.slow_down = False
            done = [wait_status(client, t, timeout=180) for t in ids]
    finally:
        proxy.slow_down = False
    assert proxy.slowed_down > 0
    return done, opened, closed_during_outage


def _assert_outage_spent_nothing(done, opened, closed_during_outage):
    assert [d["status"] for d in done] == ["succeeded"] * len(done), \
        [(d["status"], d["last_error"]) for d in done]
    assert all(d["attempts"] == 1 for d in done), [d["attempts"] for d in done]
    assert not any(e["kind"] == "escalated" for d in done for e in d["events"])
    errors = [e for d in done for e in d["events"] if e["kind"] == "error"]
    assert errors, "the outage hit no task: the test proved nothing"
    assert all(e["data"]["class"] == "dependency" for e in errors), errors
    assert any("SlowDown" in e["message"] or "503" in e["message"] for e in errors), errors
    deferrals = [e for d in done for e in d["events"] if e["kind"] == "retry_scheduled"]
    assert deferrals and all(e["data"].get("deferred") for e in deferrals)
    assert "s3" in opened and closed_during_outage == []


@pytest.mark.timeout(240)
def test_s3_answering_503_spends_no_attempt(service, client, sources):
    _assert_outage_spent_nothing(*_s3_slowdown_outage(service, client, sources, outage_s=15,
                                                      n_tasks=4))


@pytest.mark.faults              # the figure; the 15 s run above shows the same in the suite
@pytest.mark.timeout(300)
def test_s3_answering_503_for_40_s_spends_no_attempt(service, client, sources):
    _assert_outage_spent_nothing(*_s3_slowdown_outage(service, client, sources, outage_s=40,
                                                      n_tasks=6))


@pytest.mark.timeout(120)
def test_an_outage_past_the_task_deadline_escalates_with_that_reason(service, client, sources):
    proxy = service["proxy"]
    proxy.slow_down = True
    try:
        with worker_thread(replace(service["settings"], task_deadline=4.0)):
            tid = client.submit(sources["tiny"], ladder=TINY_LADDER)
            st = wait_status(client, tid, timeout=90)
    finally:
        proxy.slow_down = False
    assert st["status"] == "escalated", st["last_error"]
    escalated = [e for e in st["events"] if e["kind"] == "escalated"]
    assert escalated[-1]["data"]["escalation"] == "deadline"
    assert "deadline" in escalated[-1]["message"] and "s3 unavailable" in escalated[-1]["message"]
    assert st["attempts"] == 0          # every attempt was an outage's, none counted
    assert all(e["data"]["class"] == "dependency" for e in st["events"] if e["kind"] == "error")
