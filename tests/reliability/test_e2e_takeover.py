"""Takeover with `framepress worker` processes on the default 5 s heartbeats: a worker killed
with -9 loses its task to another within seconds; a live holder whose message is redelivered
keeps its task, and the worker that got the copy moves on instead of waiting for it."""
from __future__ import annotations

import signal
from datetime import datetime

import pytest

from relsvc import AMQP_URL, SLOW_LADDER, TINY_LADDER, WorkerProcess, kinds, wait_for, wait_status
from tcpproxy import via_proxy

# The defaults (5 s beats, 60 s leases), and a reaper too slow to be the one that takes over.
DEFAULT_BEATS = {"FRAMEPRESS_HEARTBEAT_SECONDS": "5", "FRAMEPRESS_LEASE_SECONDS": "60",
                 "FRAMEPRESS_WORKER_TIMEOUT": "120"}


@pytest.fixture
def spawn(service, tmp_path):
    procs = []

    def make(name: str, **extra: str) -> WorkerProcess:
        procs.append(WorkerProcess(service["env"], tmp_path / f"{name}.log", {**DEFAULT_BEATS, **extra}))
        return procs[-1]
    yield make
    for p in procs:
        p.stop()


def _engine_running(client, task_id, procs):
    def check():
        st = client.status(task_id)
        if st["status"] != "running" or (st["progress"] or 0) < 0.05:
            return None
        pid = [e for e in st["events"] if e["kind"] == "taken"][-1]["data"]["pid"]
        return next((p for p in procs if p.pid == pid), None)
    return wait_for(check, 120, "the engine to run on a worker process", interval=0.2)


@pytest.mark.timeout(240)
def test_kill_9_the_task_is_taken_over_within_15_s(service, client, sources, spawn):
    """(That the survivor then finishes the task exactly once: test_e2e_processes.)"""
    a, b = spawn("a"), spawn("b")
    tid = client.submit(sources["long"], ladder=SLOW_LADDER)
    victim = _engine_running(client, tid, [a, b])
    survivor = b if victim is a else a
    victim.signal(signal.SIGKILL)
    killed_at = service["db"].now()
    taken = wait_for(lambda: [e for e in client.status(tid)["events"] if e["kind"] == "taken"][1:],
                     60, "another worker to take the task over", interval=0.2)[0]
    after = (datetime.fromisoformat(taken["at"]) - killed_at).total_seconds()
    print(f"kill -9 to the new holder's taken event: {after:.1f} s")
    assert after <= 15, after
    assert taken["data"]["pid"] == survivor.pid and taken["data"]["took_over_from"]
    st = client.status(tid)
    assert "worker_lost" not in kinds(st) and st["attempts"] == 2   # not the reaper's doing


# Slower than SLOW_LADDER: the holder must outlast the other worker's start, the cut and the
# other's whole watch of it (about one takeover window) even on an idle machine.
HOLDER_LADDER = {**SLOW_LADDER, "name": "holder",
                 "rungs": [{**r, "preset": "veryslow"} for r in SLOW_LADDER["rungs"]]}


@pytest.mark.timeout(300)
def test_a_redelivery_never_displaces_a_live_holder(service, client, sources, spawn, amqp_proxy):
    holder = spawn("holder", FRAMEPRESS_BROKER_URL=via_proxy(AMQP_URL, amqp_proxy.port))
    tid = client.submit(sources["long"], ladder=HOLDER_LADDER)
    _engine_running(client, tid, [holder])
    other = spawn("other")
    wait_for(lambda: "consuming" in other.output(), 60, "the other worker to consume")
    assert amqp_proxy.cut() >= 1          # the holder's broker connection drops: a redelivery
    dropped = wait_for(lambda: [e for e in client.status(tid)["events"]
                                if e["kind"] == "duplicate_delivery"], 60,
                       "the other worker to drop the redelivered copy")
    holder_id = [e for e in client.status(tid)["events"] if e["kind"] == "taken"][0]["worker_id"]
    assert dropped[0]["worker_id"] != holder_id and dropped[0]["data"]["holder"] == holder_id
    assert dropped[0]["data"]["holder_alive"] is True
    quick = client.submit(sources["tiny"], ladder=TINY_LADDER)     # and it is free
    assert wait_status(client, quick, timeout=90)["status"] == "succeeded"
    st = wait_status(client, tid, timeout=240)
    assert st["status"] == "succeeded", (st["last_error"], kinds(st))
    assert st["attempts"] == 1 and kinds(st).count("taken") == 1, kinds(st)
    assert kinds(st).count("succeeded") == 1
    at = {e["kind"]: datetime.fromisoformat(e["at"]) for e in st["events"]}
    assert at["duplicate_delivery"] < at["succeeded"]     # dropped while the holder still worked


@pytest.mark.timeout(120)
def test_an_early_copy_of_a_retry_waits_for_its_due_time(service, client, sources):
    """A duplicate message of a task in retry_wait is not run at once (skipping its backoff):
    the worker sends it on, delayed, and the retry runs when due."""
    from framepress.service.tasks import TaskStore
    from relsvc import worker_thread
    db = service["db"]
    store = TaskStore(db)
    tid = store.create(sources["tiny"], service["settings"].output_uri, TINY_LADDER)
    first = store.take(tid, "gone-worker", {}).lease
    store.fail(first, status="retry_wait", error_event={"message": "transient"}, retry_in_s=6)
    due = db.now().timestamp() + 6
    client.broker.publish_task(tid)                       # the early copy
    with worker_thread(service["settings"]):
        st = wait_status(client, tid, timeout=90)
    assert st["status"] == "succeeded", (st["last_error"], kinds(st))
    early = [e for e in st["events"] if e["kind"] == "duplicate_delivery"]
    assert early and early[0]["data"]["due_in_s"] > 3
    taken = [e for e in st["events"] if e["kind"] == "taken"]
    assert len(taken) == 2 and st["attempts"] == 2
    assert datetime.fromisoformat(taken[1]["at"]).timestamp() >= due - 0.5
