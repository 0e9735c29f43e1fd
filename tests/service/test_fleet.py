"""Many tasks, several worker processes: every task succeeds exactly once."""
from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
from sqlalchemy import select

from framepress.service.db import RenditionRow, TaskEvent

from .conftest import FRAMEPRESS, TINY_LADDER, queue_depth, settings_env, wait_for


@pytest.mark.timeout(150)
def test_twenty_tasks_across_two_worker_processes_succeed_exactly_once(settings, client,
                                                                       source_uris, tmp_path):
    env = settings_env(settings)
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]
    workers = [subprocess.Popen([FRAMEPRESS, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
               for log in logs]
    try:
        ids = [client.submit(source_uris["clip144"], ladder=TINY_LADDER) for _ in range(20)]

        def all_done():
            rows = client.list_tasks(limit=100)
            return all(t["status"] == "succeeded" for t in rows if t["id"] in ids) and \
                len([t for t in rows if t["id"] in ids]) == 20
        wait_for(all_done, timeout=120, interval=0.5, what="20 tasks to succeed")
        assert all(w.poll() is None for w in workers), "a worker died"
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers]
        for log in logs:
            log.close()
    assert codes == [0, 0]  # SIGTERM drains and exits cleanly

    with client.db.session() as s:
        events = s.execute(select(TaskEvent.task_id, TaskEvent.kind, TaskEvent.worker_id)
                           .where(TaskEvent.task_id.in_(ids))).all()
        renditions = Counter(s.scalars(select(RenditionRow.task_id)
                                       .where(RenditionRow.task_id.in_(ids))).all())
    succeeded = Counter(t for t, k, _ in events if k == "succeeded")
    uploaded = Counter(t for t, k, _ in events if k == "uploaded")
    assert succeeded == Counter({i: 1 for i in ids})
    assert uploaded == Counter({i: 1 for i in ids})
    assert renditions == Counter({i: 1 for i in ids})
    by_worker = Counter(w for _, k, w in events if k == "succeeded")
    assert len(by_worker) == 2, f"both workers should have worked: {by_worker}"
    assert queue_depth(settings) == 0 and queue_depth(settings, ".dead") == 0
    text = (tmp_path / "worker0.log").read_text()
    assert "task_id=" in text and "worker_id=" in text  # one line per event, with both IDs
