"""Service tables: tasks, task_events, workers, renditions, and the local broker's queue.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("source_uri", sa.Text, nullable=False),
        sa.Column("output_uri", sa.Text, nullable=False),
        sa.Column("ladder", Json, nullable=False),
        sa.Column("options", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("lease_token", sa.Integer, nullable=False),
        sa.Column("lease_expires_at", TS),
        sa.Column("next_attempt_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_table(
        "task_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(32)),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("attempt", sa.Integer),
        sa.Column("message", sa.Text),
        sa.Column("data", Json, nullable=False),
    )
    op.create_index("ix_task_events_task_id_id", "task_events", ["task_id", "id"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pod", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("hardware", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("current_task_id", sa.String(36)),
        sa.Column("progress", sa.Float),
    )
    op.create_index("ix_workers_state", "workers", ["state"])
    op.create_table(
        "renditions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(36), sa.ForeignKey("tasks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("playlist_uri", sa.Text),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("bitrate", sa.BigInteger, nullable=False),
        sa.Column("codec", sa.String(32)),
        sa.Column("codec_string", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("task_id", "name", name="uq_renditions_task_name"),
    )
    op.create_index("ix_renditions_task_id", "renditions", ["task_id"])
    op.create_table(
        "queue_messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("available_at", TS, nullable=False),
        sa.Column("leased_until", TS),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_queue_messages_pick", "queue_messages", ["queue", "available_at"])


def downgrade() -> None:
    for table in ("queue_messages", "renditions", "workers", "task_events", "tasks"):
        op.drop_table(table)
