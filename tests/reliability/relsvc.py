"""Helpers for the end-to-end reliability tests: workers (threads or processes), waiting."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

FRAMEPRESS = str(Path(sys.executable).with_name("framepress"))
AMQP_URL = os.environ.get("FRAMEPRESS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN_URL = os.environ.get("FRAMEPRESS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BUCKET = "framepress-reliability"
TINY_LADDER = {"name": "tiny", "gop_seconds": 1, "segment_seconds": 1,
               "audio": {"codec": "aac", "bitrate": 64000},
               "rungs": [{"name": "144p", "height": 144, "codec": "h264", "bitrate": 150000,
                          "preset": "ultrafast"}]}
# Slow on purpose: long enough to act while the engine runs (kill, cancel, SIGTERM).
SLOW_LADDER = {"name": "slow", "gop_seconds": 1, "segment_seconds": 2,
               "audio": {"codec": "aac", "bitrate": 64000},
               "rungs": [{"name": "360p", "height": 360, "codec": "h264", "bitrate": 600000,
                          "preset": "slow"},
                         {"name": "240p", "height": 240, "codec": "h264", "bitrate": 300000,
                          "preset": "slow"}]}
SETTLED = ("succeeded", "escalated", "failed", "cancelled")


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def status(client, task_id: str) -> dict:
    return client.status(task_id)


def wait_status(client, task_id: str, statuses=SETTLED, timeout: float = 60) -> dict:
    def check():
        st = client.status(task_id)
        return st if st and st["status"] in statuses else None
    return wait_for(check, timeout, f"task {task_id} to be {'/'.join(statuses)}")


def kinds(st: dict) -> list[str]:
    return [e["kind"] for e in st["events"]]


@contextmanager
def worker_thread(settings, **kwargs: Any) -> Iterator[Any]:
    from framepress.worker import Worker
    w = Worker(settings, **kwargs)
    t = threading.Thread(target=w.run, name="test-worker", daemon=True)
    t.start()
    try:
        yield w
    finally:
        w.stop()
        t.join(timeout=60)
        assert not t.is_alive(), "worker did not stop"


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
    proc = subprocess.run([FRAMEPRESS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"framepress {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stderr}\n{proc.stdout}")
    return json.loads(proc.stdout) if "--json" in args else proc.stdout


def bucket_keys(s3, bucket: str, prefix: str) -> list[str]:
    resp = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"][len(prefix):] for o in resp.get("Contents", []))
