"""Split tasks: a parent task and its chunk tasks, each chunk a time range of the parent's source.

Revision ID: 0005_split_tasks
Revises: 0004_rendition_choice
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_split_tasks"
down_revision = "0004_rendition_choice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="whole"))
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("range_start", sa.Float, nullable=True))
        batch.add_column(sa.Column("range_end", sa.Float, nullable=True))
        batch.create_foreign_key("fk_tasks_parent_id", "tasks", ["parent_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_tasks_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_parent_id")
        batch.drop_constraint("fk_tasks_parent_id", type_="foreignkey")
        batch.drop_column("range_end")
        batch.drop_column("range_start")
        batch.drop_column("parent_id")
        batch.drop_column("kind")
