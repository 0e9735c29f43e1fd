"""A RabbitMQ node killed with -9 and restarted while 20 tasks run on 3 workers: every task
succeeds exactly once and leaves exactly its outputs. The node is the test's own (its own ports
and data directory); the shared one is never touched. Tasks submitted while the node is down are
published by the outbox relay once it is back."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from framepress.client import Client

from relsvc import (ONE_RUNG_LADDER, SETTLED, WorkerProcess, kinds, outbox_rows, stray_keys,
                    wait_for)
from support.private_rabbitmq import PrivateRabbitMQ


@pytest.mark.faults
@pytest.mark.timeout(900)
def test_a_broker_killed_and_restarted_mid_run_loses_and_repeats_nothing(service, sources,
                                                                         tmp_path):
    rabbit = PrivateRabbitMQ(tmp_path).start()
    settings = replace(service["settings"], broker_url=rabbit.url)
    env = {**service["env"], "FRAMEPRESS_BROKER_URL": rabbit.url}
    workers = []
    try:
        with Client(settings) as c:
            workers = [WorkerProcess(env, tmp_path / f"w{i}.log") for i in range(3)]
            ids = [c.submit(sources["long"], ladder=ONE_RUNG_LADDER) for _ in range(16)]

            def statuses():
                return [c.status(t)["status"] for t in ids]
            # Killed while tasks are in flight (a moment with every worker between tasks is no test).
            running = wait_for(lambda: (st := statuses()).count("succeeded") >= 2 and st.count("running"), 300,
                               "the first tasks to finish while others run")
            rabbit.kill()                                    # kill -9, mid-run
            # Submits while the node is down: stored with their messages in the outbox.
            ids += [c.submit(sources["long"], ladder=ONE_RUNG_LADDER) for _ in range(4)]
            time.sleep(3)
            rabbit.start()                                   # same data directory
            wait_for(lambda: all(s in SETTLED for s in statuses()), 600, "all 20 to settle",
                     interval=1.0)
            done = [c.status(t) for t in ids]
            wait_for(lambda: not outbox_rows(c.db), 60, "the outbox to empty")
            assert all(w.proc.poll() is None for w in workers)  # no worker died of it
            assert all("broker connection lost" in w.output() for w in workers)
    finally:
        for w in workers:
            w.stop()
        rabbit.kill()
    assert running >= 1                                      # the crash hit tasks in flight
    assert [d["status"] for d in done] == ["succeeded"] * 20, [d["last_error"] for d in done]
    assert all(kinds(d).count("succeeded") == 1 for d in done)
    # Exactly the tasks' outputs, no leftovers.
    assert stray_keys(service["s3"], f"out/{service['prefix']}/", done) == []
    print(f"broker crash: 20 tasks, {running} running at the kill, attempts "
          f"{sum(d['attempts'] for d in done)}")

