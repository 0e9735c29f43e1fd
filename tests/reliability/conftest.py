"""Fixtures for the reliability tests: a real RabbitMQ on loopback, unique names per test."""
from __future__ import annotations

import os
import socket
import uuid

import pytest

AMQP_URL = os.environ.get("FRAMEPRESS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def amqp_channel():
    pika = pytest.importorskip("pika")
    params = pika.URLParameters(AMQP_URL)
    if not _answers(params.host, params.port):
        pytest.skip(f"RabbitMQ does not answer on {params.host}:{params.port} (make services)")
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


PG_ADMIN_URL = os.environ.get("FRAMEPRESS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_database():
    """A fresh, migrated Postgres database for one test (dropped afterwards)."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from framepress.config import Settings, sqlalchemy_url
    from framepress.db import connect

    if not _answers("127.0.0.1", 5432):
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432 (make services)")
    name = f"fp_rel_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(sqlalchemy_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = connect(Settings.from_env({}, database_url=url))
    db.url = url
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
