"""Helpers for the end-to-end reliability tests: workers (threads or processes), waiting."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

# Shared helpers, re-exported for the test modules (`from relsvc import ...`).
from support.services import (AMQP_URL, FRAMEPRESS, PG_ADMIN_URL, SETTLED, SLOW_LADDER,  # noqa: F401
                              TINY_LADDER, kinds, run_framepress, wait_for, wait_status,
                              worker_thread)

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
