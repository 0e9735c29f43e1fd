"""The goal case of outage-aware loss detection, with `framepress worker` processes and a private
Postgres cluster: stopped for 120 s, then crashed (`pg_ctl stop -m immediate`) and restarted,
while two tasks are mid-transcode. Each finishes on its first attempt; nobody is lost.

Long (several minutes of two busy workers): behind the `faults` marker, run by `make faults`."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select

from framepress.client import Client
from framepress.service.db import Worker, connect
from relsvc import BUCKET, SLOW_LADDER, WorkerProcess, kinds, wait_for, wait_status
from support.private_postgres import private_postgres
from support.services import make_test_clip, settings_env

OUTAGE_S = 120
CRASH_S = 10
# The transcode must outlast both faults with room to spare: sized from a calibration run.
TARGET_TRANSCODE_S = 320


def _seconds_of_source_needed(tmp_path) -> int:
    """How many seconds of 640x360 source keep a worker's engine busy for TARGET_TRANSCODE_S
    on this machine now, with two workers sharing it."""
    import framepress
    clip = make_test_clip(tmp_path / "calibrate.mp4", 4, "640x360")
    started = time.monotonic()
    framepress.transcode(clip, tmp_path / "calibrate-out", SLOW_LADDER, hls=True)
    per_second = (time.monotonic() - started) / 4
    return int(min(900, max(60, TARGET_TRANSCODE_S / (2 * per_second))))


@pytest.mark.faults
@pytest.mark.timeout(1500)
def test_postgres_stopped_120_s_then_crashed_mid_transcode(service, tmp_path):
    seconds = _seconds_of_source_needed(tmp_path)
    key = f"sources/{service['prefix']}outage.mp4"
    service["s3"].upload_file(str(make_test_clip(tmp_path / "outage.mp4", seconds, "640x360")),
                              BUCKET, key)
    with private_postgres(tmp_path) as pg:
        settings = replace(service["settings"], database_url=pg.create_database("outage"))
        db = connect(settings)
        client = Client(settings)
        workers = [WorkerProcess(settings_env(settings), tmp_path / f"w{i}.log") for i in range(2)]
        try:
            ids = [client.submit(f"s3://{BUCKET}/{key}", ladder=SLOW_LADDER) for _ in range(2)]
            wait_for(lambda: all(client.status(t)["status"] == "running"
                                 and (client.status(t)["progress"] or 0) >= 0.02 for t in ids),
                     300, "both engines to run", interval=0.5)
            pg.stop()                                     # 120 s without a database
            time.sleep(OUTAGE_S)
            pg.start()
            back = db.now()
            wait_for(lambda: all((client.status(t)["progress"] or 0) > 0 for t in ids), 60,
                     "progress written again")
            pg.crash()                                    # and a crash on top
            time.sleep(CRASH_S)
            pg.start()
            finals = [wait_status(client, t, timeout=900) for t in ids]
            with db.session() as s:
                states = dict(s.execute(select(Worker.id, Worker.state)).all())
        finally:
            for w in workers:
                w.stop()
            client.close()
            db.dispose()
    for st in finals:
        k = kinds(st)
        assert st["status"] == "succeeded", (st["last_error"], k)
        assert st["attempts"] == 1 and k.count("taken") == 1, k
        assert not {"worker_lost", "incomplete", "requeued", "escalated", "error"} & set(k), k
        transcoded = [e for e in st["events"] if e["kind"] == "transcoded"][0]
        assert datetime.fromisoformat(transcoded["at"]) > back, \
            "the engine finished before the database came back: the test proved nothing"
    assert "lost" not in states.values(), states
    print(f"database outage: {OUTAGE_S} s stop + {CRASH_S} s crash mid-transcode "
          f"({seconds} s sources): 2/2 succeeded on attempt 1, 0 lost, 0 escalated")
