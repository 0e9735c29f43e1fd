"""Runs real `framepress worker` processes against a service stack and a batch of tasks.

Shared by the `scale` and `pipeline` modes. The stack is embedded mode (SQLite, the local
database-backed queue, local files) in a fresh directory unless the caller passes settings for
real services. Workers start first and register; only then are the tasks submitted, so start-up
time is not counted as throughput.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional, Sequence

import psutil

WORKER_SNIPPET = "from framepress.cli import run; run()"


def embedded_env(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    return {"FRAMEPRESS_DATA_DIR": str(directory),
            "FRAMEPRESS_DATABASE_URL": f"sqlite:///{directory / 'framepress.db'}",
            "FRAMEPRESS_BROKER_URL": "local",
            "FRAMEPRESS_OUTPUT_URI": (directory / "outputs").absolute().as_uri(),
            "FRAMEPRESS_SCRATCH_DIR": str(directory),
            "FRAMEPRESS_ALLOW_FILE_URIS": "1",
            "FRAMEPRESS_METRICS_PORT": "0",
            "FRAMEPRESS_HWACCEL": "cpu",
            "FRAMEPRESS_LOG_LEVEL": "WARNING"}


@dataclass
class BatchResult:
    workers: int
    tasks: int
    wall_s: float                    # first submit to last task settled
    statuses: list[dict]             # `framepress status --json` of every task
    failed: int
    cpu_busy_pct: float              # the whole machine's CPUs, submit → last task settled


def _at(iso: Optional[str]) -> float:
    return datetime.fromisoformat(iso).timestamp() if iso else 0.0


def run_batch(env_overrides: dict[str, str], source_uri: str, *, workers: int, tasks: int,
              ladder: str = "default", timeout_s: float = 900.0, one_at_a_time: bool = False
              ) -> BatchResult:
    """Start `workers` worker processes, submit `tasks` tasks, wait until every task settles.

    `one_at_a_time` submits each task only after the previous one settled, so its queue wait is
    an idle worker's pick-up latency rather than time spent behind other tasks."""
    from framepress.client import Client
    from framepress.config import Settings
    from framepress.service.db import TaskStatus

    env = {**os.environ, **env_overrides}
    client = Client(Settings.from_env(env))
    try:
        with started_workers(env, client.db, workers, max_tasks=-(-tasks // workers)):
            psutil.cpu_percent(None)        # starts the machine-wide busy window
            started = time.time()
            deadline = started + timeout_s

            def settle(batch: list[str]) -> list[dict]:
                while True:
                    statuses = [client.status(t) for t in batch]
                    if all(s and s["status"] in TaskStatus.SETTLED for s in statuses):
                        return statuses
                    if time.time() > deadline:
                        raise TimeoutError(f"tasks did not settle within {timeout_s:.0f} s")
                    time.sleep(0.05)

            def submit() -> str:
                return client.submit(source_uri, ladder=ladder, options={"hwaccel": "cpu"})

            if one_at_a_time:
                statuses = [settle([submit()])[0] for _ in range(tasks)]
            else:
                statuses = settle([submit() for _ in range(tasks)])
            busy = psutil.cpu_percent(None)
        ended = max(_at(s["finished_at"]) or _at(s["updated_at"]) for s in statuses)
        failed = sum(1 for s in statuses if s["status"] != TaskStatus.SUCCEEDED)
        return BatchResult(workers=workers, tasks=tasks, wall_s=max(1e-6, ended - started),
                           statuses=statuses, failed=failed, cpu_busy_pct=busy)
    finally:
        client.close()


@contextmanager
def started_workers(env: dict[str, str], db, count: int, *, cores: Optional[Sequence[int]] = None,
                    max_tasks: Optional[int] = None, log_dir: Optional[Path] = None
                    ) -> Iterator[list[subprocess.Popen]]:
    """`count` worker processes, yielded once every one has registered in `db` (so start-up is
    not counted), terminated (drained) at the end. `cores`: worker i runs under `taskset -c
    cores[i]`, one core standing for one machine. `log_dir`: each one's output in a file there
    (otherwise only its errors are kept, for a worker that dies at start)."""
    from framepress.service.db import Worker
    argv = [sys.executable, "-c", WORKER_SNIPPET, "worker"]
    argv += ["--max-tasks", str(max_tasks)] if max_tasks is not None else []
    procs: list[subprocess.Popen] = []
    try:
        for i in range(count):
            pin = ["taskset", "-c", str(cores[i])] if cores else []
            out = open(log_dir / f"worker-{i}.log", "wb") if log_dir else subprocess.DEVNULL
            procs.append(subprocess.Popen(pin + argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT if log_dir else subprocess.PIPE))
            if log_dir:
                out.close()     # the child has its own copy
        deadline = time.time() + 120
        while True:
            with db.session() as s:
                registered = s.query(Worker).filter(Worker.pid.in_([p.pid for p in procs])).count()
            if registered >= count:
                break
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a worker exited at start: {_last_words(dead[0], log_dir, procs)}")
            if time.time() > deadline:
                raise TimeoutError("workers did not register within 120 s")
            time.sleep(0.1)
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _last_words(proc: subprocess.Popen, log_dir: Optional[Path], procs: list) -> str:
    if log_dir:
        return (log_dir / f"worker-{procs.index(proc)}.log").read_text(errors="replace")[-800:]
    return proc.stderr.read().decode(errors="replace")[-800:]
