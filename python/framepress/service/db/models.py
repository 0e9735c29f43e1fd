"""SQLAlchemy models of the service tables (DESIGN §3). Schema changes go through Alembic
migrations in `migrations/versions`; keep the two in step."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT autoincrement on Postgres; SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class TaskStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    RETRY_WAIT = "retry_wait"
    ESCALATED = "escalated"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INCOMPLETE = "incomplete"

    #: A delivery of a task in one of these states may take it.
    TAKEABLE = (QUEUED, RETRY_WAIT, INCOMPLETE)
    #: Final until an admin acts.
    SETTLED = (SUCCEEDED, ESCALATED, FAILED, CANCELLED)


class TaskKind:
    WHOLE = "whole"      # one worker transcodes the whole source
    PARENT = "parent"    # split into chunks; stitched from them once they all succeed
    CHUNK = "chunk"      # a time range of its parent's source, video only


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_uri: Mapped[str] = mapped_column(Text)
    output_uri: Mapped[str] = mapped_column(Text)
    ladder: Mapped[dict[str, Any]] = mapped_column(Json)
    options: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    worker_id: Mapped[Optional[str]] = mapped_column(String(128))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # Fencing: incremented by every take; a write carrying an older number is refused.
    lease_token: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    # Split tasks (DESIGN §6): a chunk names its parent and its time range of the parent's source.
    kind: Mapped[str] = mapped_column(String(16), default=TaskKind.WHOLE, server_default=TaskKind.WHOLE)
    parent_id: Mapped[Optional[str]] = mapped_column(String(36), ForeignKey("tasks.id", ondelete="CASCADE"),
                                                     index=True)
    range_start: Mapped[Optional[float]] = mapped_column(Float)
    range_end: Mapped[Optional[float]] = mapped_column(Float)


class TaskEvent(Base):
    __tablename__ = "task_events"
    __table_args__ = (Index("ix_task_events_task_id_id", "task_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    stage: Mapped[Optional[str]] = mapped_column(String(32))
    worker_id: Mapped[Optional[str]] = mapped_column(String(128))
    attempt: Mapped[Optional[int]] = mapped_column(Integer)
    message: Mapped[Optional[str]] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pod: Mapped[Optional[str]] = mapped_column(String(255))
    node: Mapped[Optional[str]] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    hardware: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="starting", index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    current_task_id: Mapped[Optional[str]] = mapped_column(String(36))
    progress: Mapped[Optional[float]] = mapped_column(Float)


class RenditionRow(Base):
    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("task_id", "name", name="uq_renditions_task_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(36), ForeignKey("tasks.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(Text)
    playlist_uri: Mapped[Optional[str]] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    bitrate: Mapped[int] = mapped_column(BigInteger)
    codec: Mapped[Optional[str]] = mapped_column(String(32))
    codec_string: Mapped[Optional[str]] = mapped_column(String(64))
    # The bitrate the encoder was asked for, and for a per-title ladder why it was chosen.
    target_bitrate: Mapped[Optional[int]] = mapped_column(BigInteger)
    choice: Mapped[Optional[str]] = mapped_column(Text)
    # Against the source at the rendition's size, when the task asked for quality (dB, 0..1).
    psnr: Mapped[Optional[float]] = mapped_column(Float)
    ssim: Mapped[Optional[float]] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QueueMessage(Base):
    """The local broker's queue (embedded mode): one row per message until it is acked."""
    __tablename__ = "queue_messages"
    __table_args__ = (Index("ix_queue_messages_pick", "queue", "available_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queue: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    leased_until: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxRow(Base):
    """A publish that must follow a commit, staged in the same transaction as the change it
    announces (`outbox.stage`); a relay publishes it with confirms, then deletes the row."""
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))           # "message" | "publish" | "cleanup"
    target: Mapped[str] = mapped_column(String(255))        # queue name ("" for the webhook)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    task_id: Mapped[Optional[str]] = mapped_column(String(36))
    # When the message should reach its consumer: a retry's backoff is kept across a late publish.
    deliver_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When a relay should next try it (pushed back after a failed publish).
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A relay holds a row while it publishes; a relay that dies lets go when this passes.
    claimed_until: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookDelivery(Base):
    """One task event for one subscriber (Standard Webhooks): staged with the change it
    announces, POSTed by a dispatcher until the receiver takes it. The id is the `webhook-id`
    header, the same on every attempt, so a receiver can drop duplicates."""
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    task_id: Mapped[Optional[str]] = mapped_column(String(36), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    subscription: Mapped[str] = mapped_column(String(16))     # "task" | "global" | "escalation"
    url: Mapped[str] = mapped_column(Text)                    # shown redacted only: may hold a token
    body: Mapped[str] = mapped_column(Text)                   # the exact bytes signed and sent
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A dispatcher holds a delivery while it posts; one that dies lets go when this passes.
    claimed_until: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[Optional[int]] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class WebhookAttempt(Base):
    """One POST of a delivery, written before it is sent (a dispatcher killed mid-request
    leaves it with no outcome) and completed with the receiver's answer."""
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(40), ForeignKey("webhook_deliveries.id",
                                                                    ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    dispatcher: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[Optional[int]] = mapped_column(Integer)
    error: Mapped[Optional[str]] = mapped_column(Text)


__all__ = ["Base", "Task", "TaskEvent", "Worker", "RenditionRow", "QueueMessage", "OutboxRow",
           "WebhookDelivery", "WebhookAttempt", "TaskKind", "TaskStatus", "utcnow"]
