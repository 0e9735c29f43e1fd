"""Renditions record their PSNR and SSIM against the source, when the task measured them.

Revision ID: 0006_rendition_quality
Revises: 0005_split_tasks
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_rendition_quality"
down_revision = "0005_split_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.add_column(sa.Column("psnr", sa.Float))
        batch.add_column(sa.Column("ssim", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("renditions") as batch:
        batch.drop_column("ssim")
        batch.drop_column("psnr")
