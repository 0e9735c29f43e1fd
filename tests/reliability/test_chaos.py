"""Every fault at once: 20 tasks on 3 `framepress worker` processes, against a RabbitMQ node and
a Postgres cluster of the test's own and moto S3 behind the fault proxy. The broker node is
killed with -9 and restarted, S3 answers 503 and then refuses connections, Postgres is stopped
for 120 s and later crashed (`pg_ctl -m immediate`), and workers holding tasks are killed with -9
(and replaced, as Kubernetes restarts a container).

Then, from the database and the bucket: every task succeeded exactly once with decodable
renditions, nothing escalated, the only attempts beyond the first are those whose holder was
killed, and the bucket holds exactly the tasks' outputs.

Long (about five minutes): behind the `faults` marker, run by `make faults`."""
from __future__ import annotations

import subprocess
import time
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import select

from framepress.client import Client
from framepress.service.db import Task, Worker
from relsvc import (BUCKET, ONE_RUNG_LADDER, SETTLED, WorkerFleet, kinds, outbox_rows, stray_keys,
                    wait_for)
from support.private_postgres import private_postgres
from support.private_rabbitmq import PrivateRabbitMQ
from support.services import settings_env

TASKS = 20
WORKERS = 3
DB_STOP_S = 120
SOURCE_FRAMES = 600          # the `long` source: 20 s at 30 fps


def _running(db) -> list[tuple[str, int]]:
    """(task id, holder's pid) of the tasks being transcoded now."""
    with db.session() as s:
        return list(s.execute(select(Task.id, Worker.pid).join(Worker, Worker.id == Task.worker_id)
                              .where(Task.status == "running", Task.progress >= 0.05)).all())


def _statuses(db) -> Counter:
    with db.session() as s:
        return Counter(s.scalars(select(Task.status)).all())


def _frames(path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.faults
@pytest.mark.timeout(900)
def test_every_fault_in_one_run_each_task_succeeds_exactly_once(service, sources, tmp_path):
    rabbit = PrivateRabbitMQ(tmp_path).start()
    fleet = None
    faults: Counter = Counter()
    with private_postgres(tmp_path) as pg:
        settings = replace(service["settings"], database_url=pg.create_database("chaos"),
                           broker_url=rabbit.url, max_attempts=8)
        client = Client(settings)
        db = client.db
        try:
            fleet = WorkerFleet(settings_env(settings), tmp_path, WORKERS)
            started = time.monotonic()
            ids = [client.submit(sources["long"], ladder=ONE_RUNG_LADDER) for _ in range(TASKS)]

            def kill_a_holder() -> None:
                """kill -9 a worker that is transcoding (one of ours: pids are unique here)."""
                holders = wait_for(lambda: [p for _, p in _running(db) if fleet.by_pid(p)], 120,
                                   "a worker mid-transcode", interval=0.2)
                fleet.kill(fleet.by_pid(holders[0]))
                faults["worker kill -9"] += 1

            def mid_transcode() -> None:
                wait_for(lambda: _running(db), 120, "a task mid-transcode", interval=0.2)

            kill_a_holder()
            mid_transcode()
            rabbit.kill()                               # the broker node, kill -9
            faults["broker kill -9"] += 1
            time.sleep(3)
            rabbit.start()                              # same data directory
            mid_transcode()
            service["proxy"].slow_down = True           # S3 overloaded: 503 SlowDown
            faults["s3 503"] += 1
            time.sleep(10)
            service["proxy"].slow_down = False
            service["proxy"].down()                     # S3 gone: connections refused
            faults["s3 refused"] += 1
            time.sleep(10)
            service["proxy"].up()
            kill_a_holder()
            mid_transcode()
            pg.stop()                                   # a managed failover's worth of outage
            faults["postgres stop 120 s"] += 1
            time.sleep(DB_STOP_S)
            pg.start()
            kill_a_holder()
            mid_transcode()
            pg.crash()                                  # pg_ctl stop -m immediate
            faults["postgres crash"] += 1
            time.sleep(5)
            pg.start()
            last_fault = time.monotonic()

            wait_for(lambda: sum(n for st, n in _statuses(db).items() if st in SETTLED) == TASKS,
                     300, "every task to settle", interval=1.0)
            settled = time.monotonic()
            wait_for(lambda: not outbox_rows(db), 60, "the outbox to empty")
            done = [client.status(t) for t in ids]
            with db.session() as s:
                lost = set(s.scalars(select(Worker.pid).where(Worker.state == "lost")).all())
            rows = {d["id"]: d["renditions"] for d in done}
            sample = ids[:: TASKS // 4]
            for i, task_id in enumerate(sample):        # a sample of renditions, decoded
                local = tmp_path / f"sample{i}.mp4"
                service["s3"].download_file(BUCKET, f"out/{service['prefix']}/{task_id}/360p.mp4",
                                            str(local))
                assert _frames(local) == rows[task_id][0]["frames"] == SOURCE_FRAMES, task_id
        finally:
            if fleet is not None:
                fleet.stop()
            client.close()
            rabbit.kill()

    assert [d["status"] for d in done] == ["succeeded"] * TASKS, [d["last_error"] for d in done]
    for d in done:
        k = kinds(d)
        assert k.count("succeeded") == 1 and "escalated" not in k, k
        assert [r["name"] for r in d["renditions"]] == ["360p"], d["renditions"]
        # An outage gives its attempt back (a deferral); a retry for any other reason would
        # show as a `retry_scheduled` that is not one.
        assert not [e for e in d["events"] if e["kind"] == "retry_scheduled"
                    and not e["data"].get("deferred")], k
        # An attempt is counted when a take starts it (DESIGN §3): a killed holder's attempt
        # stays counted and the takeover (at once, or after the reaper's requeue) starts the
        # next. So every attempt before the last was cut short by a kill -9.
        taken = [e for e in d["events"] if e["kind"] == "taken"]
        assert sorted({e["attempt"] for e in taken}) == list(range(1, d["attempts"] + 1)), k
        for attempt in range(1, d["attempts"]):
            pids = {e["data"]["pid"] for e in taken if e["attempt"] == attempt}
            assert pids & fleet.killed_pids, (d["id"], attempt, pids, k)
    assert lost <= fleet.killed_pids, ("live workers declared lost", lost - fleet.killed_pids)
    assert stray_keys(service["s3"], f"out/{service['prefix']}/", done) == []
    assert faults["worker kill -9"] == 3 and len(faults) == 6, faults
    attempts = sum(d["attempts"] for d in done)
    assert attempts > TASKS, "no kill -9 cut an attempt short: the run proved less than it says"
    print(f"chaos: {TASKS} tasks on {WORKERS} workers, faults "
          f"{', '.join(f'{k} x{n}' for k, n in faults.items())}; {TASKS}/{TASKS} succeeded once, "
          f"0 escalated, attempts {attempts} ({attempts - TASKS} after kills), "
          f"{fleet.restarts} workers restarted after exiting on their own, "
          f"settled {settled - last_fault:.0f} s after the last fault "
          f"({settled - started:.0f} s in all)")
