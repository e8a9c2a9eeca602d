"""Entity spans on examples (the ner task): their spans and, for token files, the tokens' offsets.

examples.spans holds [{start, end, label}] character spans (NULL = not annotated yet, [] = no entities);
examples.tokens holds [[start, end], ...] when the rows came from a CoNLL-style token file, so an export gives the
same tokens back. Classification and QA rows keep both NULL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.add_column(sa.Column("spans", sa.JSON(none_as_null=True)))
        batch.add_column(sa.Column("tokens", sa.JSON(none_as_null=True)))


def downgrade() -> None:
    with op.batch_alter_table("examples") as batch:
        batch.drop_column("tokens")
        batch.drop_column("spans")
