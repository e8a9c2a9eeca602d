"""Record which process owns a run (host + pid).

A process that starts up can then mark only the runs whose owner died as interrupted, instead of
also interrupting runs that another live process (the web app, a CLI) is still training.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("worker_host", sa.String(255)))
    op.add_column("runs", sa.Column("worker_pid", sa.Integer))


def downgrade() -> None:
    op.drop_column("runs", "worker_pid")
    op.drop_column("runs", "worker_host")
