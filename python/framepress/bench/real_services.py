"""The real service stack on loopback for the benches that need it: RabbitMQ and Postgres as the
environment names them (FRAMEPRESS_BENCH_AMQP, FRAMEPRESS_BENCH_PG; loopback defaults), a
scratch database made and dropped, and S3 at AWS_ENDPOINT_URL or a moto server started here."""
from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"


def pg_admin_url() -> str:
    return os.environ.get("FRAMEPRESS_BENCH_PG", DEFAULT_PG)


def amqp_url() -> str:
    return os.environ.get("FRAMEPRESS_BENCH_AMQP", DEFAULT_AMQP)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    import psycopg
    name = f"framepress_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def s3_endpoint() -> Iterator[str]:
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield os.environ["AWS_ENDPOINT_URL"]
        return
    import logging
    import socket
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield os.environ["AWS_ENDPOINT_URL"]
    finally:
        server.stop()
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            os.environ.pop(k, None)


def settings_env(settings) -> dict[str, str]:
    """`FRAMEPRESS_*` variables that give a worker process these settings."""
    return {"FRAMEPRESS_" + key.upper(): str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in settings.__dict__.items() if value is not None}


def delete_queues(amqp: str, settings) -> None:
    """The run's queues: tasks, dead letters, and whatever else was declared under its prefix
    (escalations, retry delay steps) when rabbitmqctl can list them."""
    import pika
    names = {settings.queue_name(), settings.queue_name(".dead")}
    try:
        listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True,
                                text=True, timeout=30).stdout.split()
        names |= {n for n in listed if n.startswith(settings.queue_prefix)}
    except (OSError, subprocess.TimeoutExpired):
        pass
    conn = pika.BlockingConnection(pika.URLParameters(amqp))
    ch = conn.channel()
    for name in sorted(names):
        ch.queue_delete(name)
    conn.close()


@dataclass
class Stack:
    settings: Any          # framepress.config.Settings for workers and the client
    client: Any            # framepress.client.Client
    s3: Any                # a boto3 S3 client
    bucket: str
    scratch: Path          # workers' scratch directories go under it


@contextmanager
def service_stack(pg_admin: Optional[str] = None, amqp: Optional[str] = None, **settings: Any) -> Iterator[Stack]:
    """A scratch database, a bucket, a queue prefix and a scratch directory of their own, and
    a client on them; all removed at the end. `settings`: more `Settings` fields."""
    import boto3
    from framepress.client import Client
    from framepress.config import Settings
    amqp = amqp or amqp_url()
    with ExitStack() as stack:
        db_url = stack.enter_context(scratch_database(pg_admin or pg_admin_url()))
        stack.enter_context(s3_endpoint())
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="framepress-bench-")))
        bucket = f"framepress-bench-{uuid.uuid4().hex[:8]}"
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        config = Settings.from_env({}, database_url=db_url, broker_url=amqp,
                                   queue_prefix=f"bench-{uuid.uuid4().hex[:8]}.",
                                   output_uri=f"s3://{bucket}/out", scratch_dir=str(scratch),
                                   metrics_port=0, data_dir=str(scratch / "data"), **settings)
        client = Client(config)
        stack.callback(client.close)
        stack.callback(delete_queues, amqp, config)
        yield Stack(config, client, s3, bucket, scratch)
