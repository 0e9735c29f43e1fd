"""Helpers for the end-to-end reliability tests: workers (threads or processes), waiting."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

# Shared helpers, re-exported for the test modules (`from relsvc import ...`).
from support.services import (AMQP_URL, FRAMEPRESS, PG_ADMIN_URL, SETTLED, SLOW_LADDER,  # noqa: F401
                              TINY_LADDER, kinds, ladder, run_framepress, wait_for,
                              wait_status, worker_thread)

BUCKET = "framepress-reliability"


def status(client, task_id: str) -> dict:
    return client.status(task_id)


class WorkerProcess:
    """`framepress worker` as a child process, its output in a log file."""

    def __init__(self, env: dict, log_path: Path, extra_env: dict | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([FRAMEPRESS, "worker"], env={**env, **(extra_env or {})},
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


def cli(env: dict, *args: str, timeout: float = 60) -> Any:
    proc = run_framepress(env, *args, timeout=timeout)
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def bucket_keys(s3, bucket: str, prefix: str) -> list[str]:
    resp = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for o in resp.get("Contents", []))


# About 5 s of engine time per task on the 20 s source: runs of many tasks outlast their faults.
ONE_RUNG_LADDER = ladder("one-rung", [(360, 600000, "fast")], segment_seconds=2)


class WorkerFleet:
    """`framepress worker` processes kept at `size` as Kubernetes keeps a deployment's pods: a
    worker the test kills with -9 is replaced at once, one that exits on its own (e.g. started
    while the database was down) is restarted within Kubernetes' first back-off. Remembers the
    pids it killed."""

    RESTART_AFTER_S = 10.0

    def __init__(self, env: dict, log_dir: Path, size: int) -> None:
        self.env, self.log_dir = env, log_dir
        self.all: list[WorkerProcess] = []
        self.live: list[WorkerProcess] = []
        self.killed_pids: set[int] = set()
        self.restarts = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        with self._lock:
            for _ in range(size):
                self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                            name="worker-fleet")
        self._supervisor.start()

    def _spawn(self) -> WorkerProcess:
        w = WorkerProcess(self.env, self.log_dir / f"worker{len(self.all)}.log")
        self.all.append(w)
        self.live.append(w)
        return w

    def _supervise(self) -> None:
        while not self._stop.wait(self.RESTART_AFTER_S):
            with self._lock:
                for w in [w for w in self.live if w.proc.poll() is not None]:
                    self.live.remove(w)
                    self.restarts += 1
                    self._spawn()

    def kill(self, victim: WorkerProcess) -> int:
        """kill -9 `victim` and start its replacement; returns the victim's pid."""
        with self._lock:
            if victim not in self.live:         # it exited on its own meanwhile
                return victim.pid
            victim.signal(signal.SIGKILL)
            victim.wait(10)
            self.live.remove(victim)
            self.killed_pids.add(victim.pid)
            self._spawn()
        return victim.pid

    def by_pid(self, pid: int) -> "WorkerProcess | None":
        with self._lock:
            return next((w for w in self.live if w.pid == pid and w.proc.poll() is None), None)

    def stop(self) -> None:
        self._stop.set()
        self._supervisor.join(timeout=10)
        for w in self.all:
            w.stop()


def outbox_rows(db) -> list[int]:
    """IDs of the rows still staged in the outbox."""
    from sqlalchemy import select
    from framepress.service.db import OutboxRow
    with db.session() as s:
        return list(s.scalars(select(OutboxRow.id)).all())


def stray_keys(s3, prefix: str, done: list[dict]) -> list[str]:
    """Keys under `prefix` (the tasks' output URI, as a bucket prefix ending in /) that are not
    the final output of a succeeded task: leftovers of attempts, or keys of no task at all."""
    expected = set()
    for d in done:
        up = [e for e in d["events"] if e["kind"] == "uploaded"][-1]["data"]
        expected |= {f"{d['id']}/{k}" for k in up["keys"]}
    paginator = s3.get_paginator("list_objects_v2")
    found = {o["Key"][len(prefix):] for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
             for o in page.get("Contents", [])}
    return sorted((found - expected) | {k for k in found if "/.attempts/" in f"/{k}"}) + \
        sorted(f"missing: {k}" for k in expected - found)
