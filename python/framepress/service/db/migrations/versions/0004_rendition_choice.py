"""Renditions record the bitrate a per-title ladder chose and why.

Revision ID: 0004_rendition_choice
Revises: 0003_webhooks
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_rendition_choice"
down_revision = "0003_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.add_column(sa.Column("target_bitrate", sa.BigInteger))
        batch.add_column(sa.Column("choice", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.drop_column("choice")
        batch.drop_column("target_bitrate")
