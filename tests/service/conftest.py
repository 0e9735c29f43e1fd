"""Service fixtures: the real RabbitMQ and Postgres on loopback, a moto S3 server over HTTP.

Isolation: one fresh Postgres database per session (dropped at the end) and a unique queue-name
prefix per test (the session's queues are deleted at the end). A missing service fails the tests
loudly; nothing here skips.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pika
import pytest

from support.services import (AMQP_URL, PG_ADMIN_URL, delete_queues_with_prefix, make_test_clip,
                              moto_server, run_framepress, scratch_database, settings_env,
                              wait_status)
# Re-exported for the test modules (`from .conftest import ...`).
from support.services import (FRAMEPRESS, SMALL_LADDER, TINY_LADDER, kinds, wait_for,  # noqa: F401
                              worker_thread)

BUCKET = "framepress-test"

SESSION = uuid.uuid4().hex[:8]

# moto's HTTP server logs every request at INFO.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


# ---- services -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with scratch_database(PG_ADMIN_URL, f"framepress_test_{SESSION}") as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_url() -> Iterator[str]:
    try:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        pytest.fail(f"RabbitMQ is required at {AMQP_URL} (run `make services`): {exc!r}")
    conn.close()
    yield AMQP_URL
    delete_queues_with_prefix(AMQP_URL, f"t{SESSION}")  # every queue this session created


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as port:
        endpoint = f"http://127.0.0.1:{port}"
        saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                                "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                          AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        import boto3
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield endpoint
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

@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    make_test_clip(d / "clip360.mp4", 1, "640x360")
    make_test_clip(d / "clip144.mp4", 1, "256x144")
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


@pytest.fixture
def run_worker(settings):
    return lambda **kw: worker_thread(settings, **kw)


def cli(settings, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return run_framepress(settings_env(settings), *args, check=check, timeout=timeout)


def wait_settled(client, task_id: str, timeout: float = 60) -> dict:
    return wait_status(client, task_id, timeout=timeout)


def queue_depth(settings, suffix: str = "") -> int:
    conn = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        ch = conn.channel()
        return ch.queue_declare(settings.queue_name(suffix), passive=True).method.message_count
    finally:
        conn.close()


def publish_raw(settings, body: bytes) -> None:
    """Put any bytes on the tasks queue (declaring it the way workers do)."""
    from framepress.service.broker.rabbitmq import declare_queues
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
