"""Optimistic-locking versions on examples and training throughput on runs.

examples.version (starts at 1, +1 per edit) lets two editors detect each other's changes;
runs.train_samples_per_second records how fast a run trained.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("examples", sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    op.add_column("runs", sa.Column("train_samples_per_second", sa.Float))


def downgrade() -> None:
    op.drop_column("runs", "train_samples_per_second")
    op.drop_column("examples", "version")
