"""The database drops exactly while a worker records a finished stage: the record is retried, so
the task succeeds on its first attempt without encoding again. A write the lease fences off is
never retried into success, and an error that is no outage is not retried at all."""
from __future__ import annotations

import threading
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

import framepress
from framepress.service.errors import StaleLease
from framepress.service.failure.stage_writes import STAGE_WRITE_RETRY_S, retry_stage_write
from framepress.service.tasks import TaskStore
from relsvc import TINY_LADDER, kinds, wait_status, worker_thread
from tcpproxy import TcpProxy, via_proxy

HAPPY_PATH = ["taken", "details_loaded", "pulled", "transcoded", "uploaded", "succeeded"]
DROP_S = 2.0


def _drop_database_for(proxy: TcpProxy, seconds: float) -> None:
    """Every connection through the proxy cut, new ones refused, for `seconds`."""
    proxy.set_down(True)
    threading.Timer(seconds, proxy.set_down, args=(False,)).start()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stage_event", ["transcoded", "uploaded", "succeeded"])
def test_a_database_drop_while_a_stage_is_recorded_costs_no_encode(service, client, sources,
                                                                   monkeypatch, stage_event):
    pg = urlsplit(service["db"].url)
    proxy = TcpProxy(pg.port or 5432, pg.hostname or "127.0.0.1")
    settings = replace(service["settings"], database_url=via_proxy(service["db"].url, proxy.port))
    dropped = threading.Event()

    def drop_once() -> None:
        if not dropped.is_set():
            dropped.set()
            _drop_database_for(proxy, DROP_S)

    event, succeed = TaskStore.event, TaskStore.succeed

    def event_dropping(self, lease, kind, **kw):
        if kind == stage_event:
            drop_once()
        return event(self, lease, kind, **kw)

    def succeed_dropping(self, *args, **kw):
        if stage_event == "succeeded":
            drop_once()
        return succeed(self, *args, **kw)

    engine_runs = []
    transcode = framepress.transcode

    def counted_transcode(*args, **kw):
        engine_runs.append(1)
        return transcode(*args, **kw)

    monkeypatch.setattr(TaskStore, "event", event_dropping)
    monkeypatch.setattr(TaskStore, "succeed", succeed_dropping)
    monkeypatch.setattr(framepress, "transcode", counted_transcode)
    try:
        with worker_thread(settings):
            tid = client.submit(sources["tiny"], ladder=TINY_LADDER)
            st = wait_status(client, tid, timeout=90)
    finally:
        proxy.close()
    assert dropped.is_set()
    assert st["status"] == "succeeded" and st["attempts"] == 1, (st["last_error"], kinds(st))
    assert kinds(st) == HAPPY_PATH
    assert len(engine_runs) == 1


@pytest.mark.timeout(120)
def test_a_drop_longer_than_the_retry_defers_the_task_without_spending_an_attempt(
        service, client, sources, monkeypatch):
    """Past the retry window the stage is lost, but the failure is recorded once the database
    is back, as an outage: the attempt is given back and the task runs again as attempt 1."""
    pg = urlsplit(service["db"].url)
    proxy = TcpProxy(pg.port or 5432, pg.hostname or "127.0.0.1")
    settings = replace(service["settings"], database_url=via_proxy(service["db"].url, proxy.port))
    dropped = threading.Event()
    event = TaskStore.event

    def event_dropping(self, lease, kind, **kw):
        if kind == "transcoded" and not dropped.is_set():
            dropped.set()
            _drop_database_for(proxy, STAGE_WRITE_RETRY_S + 4)
        return event(self, lease, kind, **kw)

    monkeypatch.setattr(TaskStore, "event", event_dropping)
    try:
        with worker_thread(settings):
            tid = client.submit(sources["tiny"], ladder=TINY_LADDER)
            st = wait_status(client, tid, timeout=90)
    finally:
        proxy.close()
    k = kinds(st)
    assert st["status"] == "succeeded" and st["attempts"] == 1, (st["last_error"], k)
    assert k == ["taken", "details_loaded", "pulled", "error", "retry_scheduled", *HAPPY_PATH], k
    error, deferral = st["events"][3:5]
    assert error["stage"] == "transcode" and error["data"]["class"] == "dependency"
    assert deferral["data"]["deferred"] and deferral["data"]["dependency"] == "database"
    assert [e["attempt"] for e in st["events"] if e["kind"] == "taken"] == [1, 1]


def test_a_fenced_write_is_not_retried(pg_database):
    store = TaskStore(pg_database, lease_seconds=30)
    tid = store.create("s3://b/k.mp4", "s3://b/out", TINY_LADDER)
    old = store.take(tid, "w1", {}).lease
    store.take(tid, "w1", {})                  # a newer lease on the same task
    calls = []

    def write():
        calls.append(1)
        store.succeed(old, [], {})
    with pytest.raises(StaleLease):
        retry_stage_write(write, already_done=lambda: store.succeeded_under(old))
    assert calls == [1]
    assert store.status(tid)["status"] == "running"


def test_only_outages_are_retried():
    calls = []

    def not_an_outage():
        calls.append(1)
        raise ValueError("a bug, not a blip")
    with pytest.raises(ValueError):
        retry_stage_write(not_an_outage)
    assert calls == [1]

    def refused_twice():
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionRefusedError("database restarting")
        return "recorded"
    assert retry_stage_write(refused_twice) == "recorded" and len(calls) == 4


def test_a_retry_after_a_landed_commit_is_not_written_again():
    writes = []

    def lost_acknowledgement():
        writes.append(1)
        raise ConnectionResetError("the commit's answer never came")
    assert retry_stage_write(lost_acknowledgement, already_done=lambda: True) is None
    assert writes == [1]


def test_a_long_outage_is_raised_after_the_retry_window():
    calls = []

    def down():
        calls.append(1)
        raise ConnectionRefusedError("down for minutes")
    with pytest.raises(ConnectionRefusedError):
        retry_stage_write(down, within_s=1.0)
    assert len(calls) >= 2
