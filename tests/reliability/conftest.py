"""Fixtures for the reliability tests: a real RabbitMQ on loopback, unique names per test."""
from __future__ import annotations

import os
import socket
import uuid

import pytest

from relsvc import AMQP_URL, BUCKET, PG_ADMIN_URL  # shared with the test modules
from tcpproxy import TcpProxy
from support.services import (delete_queues_with_prefix, make_test_clip, moto_server,
                              scratch_database, settings_env)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def amqp_channel():
    import pika
    params = pika.URLParameters(AMQP_URL)
    if not _answers(params.host, params.port):
        pytest.fail(f"RabbitMQ does not answer on {params.host}:{params.port} (make services starts it)")
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.confirm_delivery()
    declared: list[str] = []
    ch.declared = declared  # tests append queue names here; deleted afterwards
    yield ch
    try:
        for q in declared:
            ch.queue_delete(queue=q)
    finally:
        conn.close()


@pytest.fixture
def unique():
    return f"fp-test-{uuid.uuid4().hex[:10]}"



@pytest.fixture
def pg_database():
    """A fresh, migrated Postgres database for one test (dropped afterwards)."""
    pytest.importorskip("sqlalchemy")
    from framepress.config import Settings
    from framepress.service.db import connect

    if not _answers("127.0.0.1", 5432):
        pytest.fail("PostgreSQL does not answer on 127.0.0.1:5432 (make services starts it)")
    with scratch_database(PG_ADMIN_URL, f"fp_rel_{uuid.uuid4().hex[:10]}") as url:
        db = connect(Settings.from_env({}, database_url=url))
        db.url = url
        try:
            yield db
        finally:
            db.dispose()


# ---- the whole service: Postgres, RabbitMQ, moto S3 behind a fault-injecting proxy -----------

@pytest.fixture(scope="session")
def s3_service():
    """moto over HTTP, and the fault proxy in front of it. Workers talk to the proxy; the
    tests' own client talks to moto directly, so setup works while the proxy is down."""
    import boto3
    from s3proxy import S3FaultProxy
    with moto_server() as port:
        direct = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        direct.create_bucket(Bucket=BUCKET)
        proxy = S3FaultProxy(port)
        yield {"client": direct, "proxy": proxy, "endpoint": proxy.endpoint}
        proxy.close()


@pytest.fixture(scope="session")
def sources(s3_service, tmp_path_factory):
    """s3:// URIs of the test media: a tiny clip, a long one, a corrupt file."""
    d = tmp_path_factory.mktemp("media")
    run = uuid.uuid4().hex[:8]
    s3 = s3_service["client"]
    out = {}
    for name, seconds, size in (("tiny", 1, "256x144"), ("long", 20, "640x360")):
        key = f"sources/{run}/{name}.mp4"
        s3.upload_file(str(make_test_clip(d / f"{name}.mp4", seconds, size)), BUCKET, key)
        out[name] = f"s3://{BUCKET}/{key}"
    key = f"sources/{run}/corrupt.mp4"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    out["corrupt"] = f"s3://{BUCKET}/{key}"
    key = f"sources/{run}/always-aborted.mp4"
    s3.upload_file(str(d / "tiny.mp4"), BUCKET, key)
    out["flaky"] = f"s3://{BUCKET}/{key}"
    return out


SERVICE_ENV = {
    # Small, deterministic backoff so retries fit in a test.
    "FRAMEPRESS_RETRY_INITIAL": "0.5", "FRAMEPRESS_RETRY_FACTOR": "2",
    "FRAMEPRESS_RETRY_MAX": "4", "FRAMEPRESS_RETRY_JITTER": "none",
    "FRAMEPRESS_BREAKER_THRESHOLD": "2", "FRAMEPRESS_BREAKER_PROBE_SECONDS": "1",
    "FRAMEPRESS_BREAKER_MAX_PROBE_SECONDS": "2",
    "FRAMEPRESS_WORKER_TIMEOUT": "4",
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def service(pg_database, s3_service, tmp_path, monkeypatch):
    """Settings for one test (fresh database, unique queues) and the environment workers need.
    The environment is also applied to this process, for in-process workers."""
    from framepress.config import Settings
    prefix = f"fprel{uuid.uuid4().hex[:8]}."
    settings = Settings.from_env(SERVICE_ENV, database_url=pg_database.url, broker_url=AMQP_URL,
                                 queue_prefix=prefix, output_uri=f"s3://{BUCKET}/out/{prefix}",
                                 scratch_dir=str(tmp_path), metrics_port=0,
                                 heartbeat_seconds=1.0, lease_seconds=4.0, max_attempts=3,
                                 data_dir=str(tmp_path / "data"), log_level="INFO")
    env = dict(SERVICE_ENV, AWS_ENDPOINT_URL=s3_service["endpoint"])
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield {"settings": settings, "env": settings_env(settings), "db": pg_database, "prefix": prefix,
           "s3": s3_service["client"], "proxy": s3_service["proxy"]}
    delete_queues_with_prefix(AMQP_URL, prefix)


@pytest.fixture
def client(service):
    """A framepress client on the test's settings."""
    from framepress.client import Client
    c = Client(service["settings"])
    yield c
    c.close()


@pytest.fixture
def amqp_proxy():
    """A cuttable TCP proxy in front of the shared RabbitMQ (see tcpproxy.via_proxy)."""
    import pika
    params = pika.URLParameters(AMQP_URL)
    proxy = TcpProxy(params.port, params.host)
    yield proxy
    proxy.close()
