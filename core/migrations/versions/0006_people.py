"""Who did what: the person behind each dataset import, label change, run start and cancel, and an activity log.

datasets.created_by, runs.created_by and runs.cancelled_by name the person (sign-in name or the name chosen in the
sidebar; the command line's SPANLAB_USER or login name); label_events.person names who made each change (its
``actor`` column keeps saying how: by hand, bulk, rename, suggestion, undo). The activity table keeps a line per
import, deletion, run start, cancel and run deletion, so a deleted dataset's fate stays visible. Rows from before
this revision keep NULL there, shown as "unknown".

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE (SQLite 3.35+ drops columns natively): a batch copy of datasets or runs would drop the old table,
# and with foreign keys on that deletes every example or metric point through ON DELETE CASCADE.
COLUMNS = (("datasets", "created_by"), ("label_events", "person"), ("runs", "created_by"), ("runs", "cancelled_by"))


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(200)))
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("person", sa.String(200)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("activity")
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column)
