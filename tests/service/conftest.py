"""Service fixtures: the real RabbitMQ and Postgres on loopback, a moto S3 server over HTTP.

Isolation: one fresh Postgres database per session (dropped at the end) and a unique queue-name
prefix per test (the session's queues are deleted at the end). A missing service fails the tests
loudly; nothing here skips.
"""
from __future__ import annotations

import itertools
import logging
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pika
import psycopg
import pytest

PG_ADMIN = os.environ.get("FRAMEPRESS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
RABBIT_URL = os.environ.get("FRAMEPRESS_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
BUCKET = "framepress-test"
FRAMEPRESS = str(Path(sys.executable).with_name("framepress"))

TINY_LADDER = {"name": "tiny", "gop_seconds": 1, "segment_seconds": 1,
               "audio": {"codec": "aac", "bitrate": 64000},
               "rungs": [{"name": "144p", "height": 144, "codec": "h264", "bitrate": 150000,
                          "preset": "ultrafast"}]}
SMALL_LADDER = {"name": "small", "gop_seconds": 1, "segment_seconds": 1,
                "audio": {"codec": "aac", "bitrate": 64000},
                "rungs": [{"name": "360p", "height": 360, "codec": "h264", "bitrate": 600000,
                           "preset": "veryfast"},
                          {"name": "240p", "height": 240, "codec": "h264", "bitrate": 300000,
                           "preset": "veryfast"}]}

SESSION = uuid.uuid4().hex[:8]

# moto's HTTP server logs every request at INFO.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- services -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"framepress_test_{SESSION}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"Postgres is required at {PG_ADMIN} (run `make services`): {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def rabbit_url() -> Iterator[str]:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(RABBIT_URL))
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ is required at {RABBIT_URL} (run `make services`): {exc!r}")
    conn.close()
    yield RABBIT_URL
    _delete_session_queues()


def _delete_session_queues() -> None:
    """Delete every queue this session created (tasks, dead letters, delay steps)."""
    try:
        out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True,
                             text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return
    names = [n for n in out if n.startswith(f"t{SESSION}")]
    if not names:
        return
    conn = pika.BlockingConnection(pika.URLParameters(RABBIT_URL))
    ch = conn.channel()
    for n in names:
        ch.queue_delete(n)
    conn.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                            "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def s3(s3_endpoint):
    import boto3
    return boto3.client("s3")


# ---- media ----------------------------------------------------------------------------------

def make_clip(path: Path, seconds: float, size: str, rate: int = 30) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", "-shortest", str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    make_clip(d / "clip360.mp4", 1, "640x360")
    make_clip(d / "clip144.mp4", 1, "256x144")
    return d


@pytest.fixture(scope="session")
def source_uris(media_dir, s3) -> dict[str, str]:
    """The session's clips in the bucket: {"clip360": "s3://…", "clip144": "s3://…"}."""
    out = {}
    for name in ("clip360", "clip144"):
        key = f"sources/{SESSION}/{name}.mp4"
        s3.upload_file(str(media_dir / f"{name}.mp4"), BUCKET, key)
        out[name] = f"s3://{BUCKET}/{key}"
    return out


# ---- settings and workers --------------------------------------------------------------------

_test_counter = itertools.count()


@pytest.fixture
def settings(pg_url, rabbit_url, s3_endpoint, tmp_path):
    """Production-shaped settings, isolated per test by a unique queue prefix."""
    from framepress.config import Settings
    return Settings.from_env({}, database_url=pg_url, broker_url=rabbit_url,
                             queue_prefix=f"t{SESSION}.{next(_test_counter)}.",
                             output_uri=f"s3://{BUCKET}/out/{SESSION}",
                             scratch_dir=str(tmp_path), metrics_port=0, heartbeat_seconds=1.0,
                             data_dir=str(tmp_path / "data"), max_attempts=3)


@pytest.fixture
def client(settings):
    from framepress.client import Client
    c = Client(settings)
    yield c
    c.close()


@contextmanager
def worker_thread(settings, **kwargs: Any) -> Iterator[Any]:
    """A worker running in this process (signals are left to the main thread)."""
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


@pytest.fixture
def run_worker(settings):
    return lambda **kw: worker_thread(settings, **kw)


def settings_env(settings) -> dict[str, str]:
    """The environment a `framepress` subprocess needs to see the same settings."""
    env = dict(os.environ)
    for key, value in settings.__dict__.items():
        if value is not None:
            env["FRAMEPRESS_" + key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def cli(settings, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([FRAMEPRESS, *args], env=settings_env(settings), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"framepress {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_settled(client, task_id: str, timeout: float = 60) -> dict:
    from framepress.db import TaskStatus

    def settled():
        st = client.status(task_id)
        return st if st and st["status"] in TaskStatus.SETTLED else None
    return wait_for(settled, timeout, what=f"task {task_id} to settle")


def queue_depth(settings, suffix: str = "") -> int:
    conn = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        ch = conn.channel()
        return ch.queue_declare(settings.queue_name(suffix), passive=True).method.message_count
    finally:
        conn.close()


def publish_raw(settings, body: bytes) -> None:
    """Put any bytes on the tasks queue (declaring it the way workers do)."""
    from framepress.broker.rabbitmq import declare_queues
    conn = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        ch = conn.channel()
        declare_queues(ch, settings.queue_name(), settings.queue_name(".dead"))
        ch.confirm_delivery()
        ch.basic_publish("", settings.queue_name(), body,
                         pika.BasicProperties(delivery_mode=2, content_type="application/json"))
    finally:
        conn.close()


def ffprobe_frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return int(json.loads(out)["streams"][0]["nb_read_frames"])


def kinds(status: dict) -> list[str]:
    return [e["kind"] for e in status["events"]]
