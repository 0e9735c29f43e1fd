"""The outbox: publishes staged in the transaction of the change they announce.

Revision ID: 0002_outbox
Revises: 0001
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_outbox"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("deliver_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("claimed_until", TS),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_outbox_due", "outbox", ["due_at"])


def downgrade() -> None:
    op.drop_table("outbox")
