"""Helpers for tests that run framepress against services: the real RabbitMQ and Postgres on
loopback, a moto S3 server over HTTP, in-process worker threads and `framepress` subprocesses.

Nothing here skips or decides how a missing service is reported: the fixtures built on these
helpers do that.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

FRAMEPRESS = str(Path(sys.executable).with_name("framepress"))

# Both spellings of each variable are honoured (tests/service and tests/reliability each read one).
AMQP_URL = (os.environ.get("FRAMEPRESS_TEST_AMQP_URL") or os.environ.get("FRAMEPRESS_TEST_AMQP")
            or "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_ADMIN_URL = (os.environ.get("FRAMEPRESS_TEST_PG_URL") or os.environ.get("FRAMEPRESS_TEST_PG")
                or "postgresql://postgres@127.0.0.1:5432/test")


# ---- ladders ---------------------------------------------------------------------------------

def ladder(name: str, rungs: list[tuple[int, int, str]], *, segment_seconds: float = 1) -> dict:
    """An H.264 ladder with 1 s GOPs and 64 kb/s AAC; `rungs` are (height, bitrate, preset)."""
    return {"name": name, "gop_seconds": 1, "segment_seconds": segment_seconds,
            "audio": {"codec": "aac", "bitrate": 64000},
            "rungs": [{"name": f"{height}p", "height": height, "codec": "h264", "bitrate": bitrate,
                       "preset": preset} for height, bitrate, preset in rungs]}


TINY_LADDER = ladder("tiny", [(144, 150000, "ultrafast")])
SMALL_LADDER = ladder("small", [(360, 600000, "veryfast"), (240, 300000, "veryfast")])
# Slow on purpose: long enough to act while the engine runs (kill, cancel, SIGTERM, scale down).
SLOW_LADDER = ladder("slow", [(360, 600000, "slow"), (240, 300000, "slow")], segment_seconds=2)


# ---- media -----------------------------------------------------------------------------------

def make_test_clip(path: Path, seconds: float, size: str, rate: int = 30) -> Path:
    """`seconds` of testsrc2 and a sine tone: H.264 with a keyframe every second, 64 kb/s AAC.
    (tests/conftest.py's make_clip is the engine tests' richer variant.)"""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", "-shortest", str(path)], check=True)
    return path


# ---- loopback, polling ---------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition",
             interval: float = 0.1) -> Any:
    """Calls `predicate` every `interval` s until it returns something true, and returns that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


SETTLED = ("succeeded", "escalated", "failed", "cancelled")  # framepress.service.db.TaskStatus.SETTLED


def wait_status(client, task_id: str, statuses=SETTLED, timeout: float = 60) -> dict:
    """The task's status once it is one of `statuses` (by default: settled); a succeeded task
    once its objects are published to their final keys too."""
    def check():
        st = client.status(task_id)
        if st and st["status"] == "succeeded" and not output_published(client.db, task_id):
            return None
        return st if st and st["status"] in statuses else None
    return wait_for(check, timeout, f"task {task_id} to be {'/'.join(statuses)}")


def output_published(db, task_id: str) -> bool:
    """No publish job of the task is left in the outbox (the worker runs it right after the
    success commit)."""
    from sqlalchemy import select
    from framepress.service.db import OutboxRow
    with db.session() as s:
        return s.scalar(select(OutboxRow.id).where(OutboxRow.task_id == task_id,
                                                   OutboxRow.kind == "publish").limit(1)) is None


def kinds(status: dict) -> list[str]:
    """The kinds of a task status's events, in order."""
    return [e["kind"] for e in status["events"]]


# ---- services --------------------------------------------------------------------------------

@contextmanager
def moto_server() -> Iterator[int]:
    """moto's S3 over HTTP on a free loopback port; yields the port."""
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield port
    finally:
        server.stop()


@contextmanager
def scratch_database(admin_url: str, name: str) -> Iterator[str]:
    """A new, empty database `name` on admin_url's server, dropped afterwards (WITH (FORCE));
    yields its URL. Fails the test loudly when Postgres does not answer."""
    import psycopg
    import pytest
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres is required at {admin_url} (run `make services`): {exc}")
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def delete_queues_with_prefix(amqp_url: str, prefix: str) -> None:
    """Delete every queue whose name starts with `prefix` (tasks, dead letters, delay steps)."""
    try:
        names = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True,
                               text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return
    names = [n for n in names if n.startswith(prefix)]
    if not names:
        return
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    for n in names:
        ch.queue_delete(n)
    conn.close()


# ---- a broker stand-in -------------------------------------------------------------------------

class RecordingBroker:
    """For tests of the database side of requeues (reaper, operator actions): records the task
    IDs it is asked to publish; the first `fail_first` publishes fail as with the broker away."""
    tasks_queue = "framepress.tasks"

    def __init__(self, fail_first: int = 0) -> None:
        self.published: list[str] = []
        self._fail = fail_first

    def publish_json(self, queue: str, payload: dict, priority: int = 0, delay_s: float = 0.0) -> None:
        assert queue == self.tasks_queue
        if self._fail:
            self._fail -= 1
            raise ConnectionRefusedError("broker down")
        self.published.append(payload["task_id"])


# ---- workers and the CLI ---------------------------------------------------------------------

@contextmanager
def worker_thread(settings, **kwargs: Any) -> Iterator[Any]:
    """A worker running in this process (signals are left to the main thread)."""
    from framepress.service.worker import Worker
    w = Worker(settings, **kwargs)
    t = threading.Thread(target=w.run, name="test-worker", daemon=True)
    t.start()
    try:
        yield w
    finally:
        w.stop()
        t.join(timeout=60)
        assert not t.is_alive(), "worker did not stop"


def settings_env(settings) -> dict[str, str]:
    """The environment a `framepress` subprocess needs to see the same settings."""
    env = dict(os.environ)
    for key, value in settings.__dict__.items():
        if value is not None:
            env["FRAMEPRESS_" + key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def embedded_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without FRAMEPRESS_* and AWS_* (embedded mode: SQLite, local queue and
    files under tmp_path/data), and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMEPRESS_", "AWS_"))}
    env.update(FRAMEPRESS_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def run_framepress(env: dict, *args: str, check: bool = True,
                   timeout: float = 60) -> subprocess.CompletedProcess:
    """`framepress ARGS` with `env`; with `check`, a non-zero exit fails with its output."""
    proc = subprocess.run([FRAMEPRESS, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"framepress {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stderr}\n{proc.stdout}")
    return proc
