"""Lost and stopped workers, SIGTERM drain and an S3 outage, with `framepress worker` processes."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest
from sqlalchemy import select


from relsvc import (BUCKET, SLOW_LADDER, TINY_LADDER, WorkerProcess, bucket_keys, kinds, wait_for,
                    wait_status, worker_thread)


@pytest.fixture
def spawn(service, tmp_path):
    procs = []

    def make(name: str) -> WorkerProcess:
        procs.append(WorkerProcess(service["env"], tmp_path / f"{name}.log"))
        return procs[-1]
    yield make
    for p in procs:
        p.stop()


def _running_holder(client, task_id, procs, min_progress=0.05):
    """Wait until the engine runs on one of `procs`; return that process."""
    def check():
        st = client.status(task_id)
        if st["status"] != "running" or (st["progress"] or 0) < min_progress:
            return None
        pid = [e for e in st["events"] if e["kind"] == "taken"][-1]["data"]["pid"]
        return next((p for p in procs if p.pid == pid), None)
    return wait_for(check, 90, "the engine to run on a worker process", interval=0.2)


def _long_task_on_one_of_two(client, sources, spawn):
    """Two worker processes and a long task; once the engine runs: (task id, its holder, the other)."""
    a, b = spawn("a"), spawn("b")
    tid = client.submit(sources["long"], ladder=SLOW_LADDER)
    holder = _running_holder(client, tid, [a, b])
    return tid, holder, (b if holder is a else a)


def _outputs_match(service, st):
    """Objects in the bucket are exactly what the `uploaded` event lists; the renditions decode."""
    prefix = f"out/{service['prefix']}/{st['id']}/"
    uploaded = [e for e in st["events"] if e["kind"] == "uploaded"]
    assert len(uploaded) == 1
    assert bucket_keys(service["s3"], BUCKET, prefix) == sorted(uploaded[0]["data"]["keys"])
    assert {r["name"] for r in st["renditions"]} == {"360p", "240p"}
    body = service["s3"].get_object(Bucket=BUCKET, Key=prefix + "240p.mp4")["Body"].read()
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-"],
                           input=body, capture_output=True, check=True)
    assert int(probe.stdout.strip()) == 600


@pytest.mark.timeout(180)
def test_kill_9_mid_transcode_the_other_worker_finishes_once(service, client, sources, spawn):
    tid, victim, survivor = _long_task_on_one_of_two(client, sources, spawn)
    victim.signal(signal.SIGKILL)
    st = wait_status(client, tid, timeout=150)
    assert st["status"] == "succeeded", (st["last_error"], kinds(st))
    assert kinds(st).count("succeeded") == 1
    taken = [e for e in st["events"] if e["kind"] == "taken"]
    assert taken[-1]["data"]["pid"] == survivor.pid and len(taken) == 2
    assert st["attempts"] == 2                         # the lost attempt counted
    _outputs_match(service, st)


@pytest.mark.timeout(180)
def test_sigstop_past_the_heartbeat_timeout_then_sigcont(service, client, sources, spawn):
    tid, stopped, other = _long_task_on_one_of_two(client, sources, spawn)
    stopped.signal(signal.SIGSTOP)
    try:
        st = wait_status(client, tid, timeout=150)
    finally:
        stopped.signal(signal.SIGCONT)
    assert st["status"] == "succeeded", (st["last_error"], kinds(st))
    k = kinds(st)
    assert {"worker_lost", "incomplete", "requeued"} <= set(k), (k, other.output()[-4000:])
    assert [e for e in st["events"] if e["kind"] == "succeeded"][0]["data"]
    assert [e for e in st["events"] if e["kind"] == "taken"][-1]["data"]["pid"] == other.pid
    # The woken worker finds its lease gone: it neither uploads nor marks success.
    wait_for(lambda: "taken over" in stopped.output() or "not writing" in stopped.output(), 30,
             "the stopped worker to notice its lease was taken over")
    time.sleep(2)
    st = client.status(tid)
    assert kinds(st).count("succeeded") == 1 and kinds(st).count("uploaded") == 1
    _outputs_match(service, st)


@pytest.mark.timeout(150)
def test_sigterm_mid_task_finishes_it_and_exits_0(service, client, sources, spawn):
    w = spawn("w")
    tid = client.submit(sources["long"], ladder=SLOW_LADDER)
    _running_holder(client, tid, [w])
    w.signal(signal.SIGTERM)
    assert w.wait(timeout=120) == 0, w.output()[-3000:]
    st = client.status(tid)
    assert st["status"] == "succeeded" and kinds(st).count("succeeded") == 1, kinds(st)
    from framepress.service.db import Worker
    with service["db"].session() as s:
        assert s.scalar(select(Worker.state).where(Worker.pid == w.pid)) == "stopped"
    assert "draining" in w.output()


@pytest.mark.timeout(180)
def test_s3_outage_with_tasks_queued_escalates_nothing(service, client, sources):
    proxy = service["proxy"]
    proxy.down()
    t_down = time.monotonic()
    try:
        ids = [client.submit(sources["tiny"], ladder=TINY_LADDER) for _ in range(10)]
        with worker_thread(service["settings"]) as w:
            breakers = w.dependencies.breakers
            wait_for(breakers.any_open, 60, "the s3 breaker to open")
            assert w.health.readyz() == (False, "paused: s3 unavailable")
            time.sleep(max(0.0, 20.0 - (time.monotonic() - t_down)))     # ~20 s of outage
            proxy.up()
            done = [wait_status(client, t, timeout=120) for t in ids]
    finally:
        proxy.up()
    assert [d["status"] for d in done] == ["succeeded"] * 10, [d["last_error"] for d in done]
    assert all(d["attempts"] == 1 for d in done), [d["attempts"] for d in done]
    deferred = [e for d in done for e in d["events"] if e["kind"] == "error"]
    assert deferred and all(e["data"].get("type") == "StorageError" for e in deferred)
    follow = [e for d in done for e in d["events"] if e["kind"] == "retry_scheduled"]
    assert all(e["data"].get("deferred") for e in follow)
    assert not any("escalated" in kinds(d) for d in done)
    print(f"s3 outage: 10 tasks, {len(deferred)} deferred attempts (not counted), "
          f"0 escalated, attempts {sum(d['attempts'] for d in done)}")
