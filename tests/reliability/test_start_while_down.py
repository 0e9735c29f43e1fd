"""A worker started while the database is down waits for it instead of exiting (Kubernetes would
restart it with a back-off growing to minutes), then takes tasks as soon as it is back."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from framepress.client import Client
from framepress.service.failure.startup import when_reachable
from relsvc import BUCKET, TINY_LADDER, WorkerProcess, wait_for, wait_status
from support.private_postgres import private_postgres
from support.services import make_test_clip, settings_env


@pytest.mark.timeout(300)
def test_worker_started_without_its_database_waits_and_then_works(service, tmp_path):
    key = f"sources/{service['prefix']}late-db.mp4"
    service["s3"].upload_file(str(make_test_clip(tmp_path / "late-db.mp4", 1, "320x180")), BUCKET, key)
    with private_postgres(tmp_path) as pg:
        settings = replace(service["settings"], database_url=pg.create_database("late"))
        pg.stop()
        worker = WorkerProcess(settings_env(settings), tmp_path / "worker.log")
        try:
            wait_for(lambda: worker.output().count("unreachable at start") >= 2, 60, "the worker to wait")
            time.sleep(2)
            assert worker.proc.poll() is None, worker.output()[-2000:]
            pg.start()
            task_id = Client(settings).submit(f"s3://{BUCKET}/{key}", ladder=TINY_LADDER)
            done = wait_status(Client(settings), task_id, timeout=120)
            assert done["status"] == "succeeded" and done["attempts"] == 1, done
        finally:
            worker.stop()


def test_errors_waiting_cannot_cure_end_the_start():
    calls = []

    def start():
        calls.append(1)
        raise ValueError("a bad setting")

    with pytest.raises(ValueError):
        when_reachable(start, sleep=lambda s: None)
    assert len(calls) == 1


def test_outages_are_waited_out_with_growing_pauses():
    pauses, calls = [], []

    def start():
        calls.append(1)
        if len(calls) < 5:
            raise ConnectionRefusedError(111, "Connection refused")
        return "up"

    assert when_reachable(start, first_delay=1, max_delay=4, sleep=pauses.append) == "up"
    assert pauses == [1, 2, 4, 4]
