"""Metadata columns: the columns of an import file that are no task field (a ticket id, a channel...).

examples.meta holds them as JSON {column name: text}, in the file's column order, so exports and batch predictions
can be joined back to the source. Rows imported before this revision keep NULL (no metadata).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, as in 0006: a batch copy of examples would drop the table (and its label events by cascade).
def upgrade() -> None:
    op.add_column("examples", sa.Column("meta", sa.JSON))


def downgrade() -> None:
    op.drop_column("examples", "meta")
