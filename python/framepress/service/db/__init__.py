"""Database access: engine and sessions from settings, and the schema migrations.

`connect(settings)` brings the schema up to date (idempotent, safe when many processes start at
once) and returns a `Database` holding the engine and a session factory.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Optional

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from framepress.config import Settings
from framepress.service.db.clock import aware, db_now, now_of
from framepress.service.db.migrate import upgrade
from framepress.service.db.models import (Base, OutboxRow, QueueMessage, RenditionRow, Task, TaskEvent,
                                          TaskKind, TaskStatus, WebhookAttempt, WebhookDelivery, Worker, utcnow)


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with self.sessions.begin() as s:
            yield s

    def now(self) -> datetime:
        """The database's clock (see `clock`): the time leases and heartbeats are measured in."""
        with self.session() as s:
            return now_of(s)

    def dispose(self) -> None:
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # isolation_level=None hands transaction control to us, so every transaction can be
        # BEGIN IMMEDIATE: a read-then-write (taking a task) then never fails half-way with
        # "database is locked" when two processes race; they queue on the write lock instead.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False,
                                                  "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        return engine
    # pre_ping: a restarted Postgres costs one failed checkout, not a failed task. The timeouts
    # bound every wait on a dead or partitioned server, so no thread (the heartbeat above all)
    # hangs on it: connecting, unacknowledged writes (tcp_user_timeout), silent peers
    # (keepalives), statements and locks, and waiting for a pooled connection.
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4,
                         pool_timeout=POOL_TIMEOUT_S, connect_args=postgres_connect_args())


CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10
STATEMENT_TIMEOUT_MS = 30_000
LOCK_TIMEOUT_MS = 10_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000


def postgres_connect_args() -> dict:
    """libpq settings for every framepress connection to Postgres."""
    return {"connect_timeout": CONNECT_TIMEOUT_S,
            "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
            "keepalives_count": 3, "tcp_user_timeout": 10_000,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} "
                       f"-c lock_timeout={LOCK_TIMEOUT_MS} "
                       f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"}


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def connect(settings: Settings, *, migrate: bool = True) -> Database:
    engine = make_engine(settings.sqlalchemy_url)
    if migrate:
        with _migrate_lock:
            if settings.sqlalchemy_url not in _migrated:
                upgrade(engine)
                _migrated.add(settings.sqlalchemy_url)
    return Database(engine=engine, sessions=sessionmaker(engine, expire_on_commit=False))


def iso(dt: Optional[datetime]) -> Optional[str]:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    return None if dt is None else aware(dt).isoformat()


__all__ = ["Database", "connect", "make_engine", "upgrade", "iso", "db_now", "now_of", "aware",
           "Base", "Task", "TaskEvent", "Worker", "RenditionRow", "QueueMessage", "OutboxRow",
           "WebhookDelivery", "WebhookAttempt", "TaskKind", "TaskStatus", "utcnow"]
