"""Runs that cannot be confused with one another, dead workers that can be spotted, imports that stay invisible
until complete.

runs: ids are never reused (SQLite: the table is rebuilt in place with AUTOINCREMENT, keeping every row; PostgreSQL's
sequences never hand an id out twice, and the sequence is moved past the largest id), a ``token`` (a UUID, backfilled
for old rows) that a worker's writes must match, ``heartbeat_at`` that a live worker refreshes, and
``cancel_requested`` that lets any process ask a run's worker to stop.
datasets: ``import_owner`` is set while an import is still writing its rows in batches (the dataset is invisible
until it is cleared), so a crashed import can be told from a finished one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RUN_COLUMNS = (
    ("token", lambda: sa.Column("token", sa.String(32))),
    ("heartbeat_at", lambda: sa.Column("heartbeat_at", sa.DateTime)),
    ("cancel_requested", lambda: sa.Column("cancel_requested", sa.Boolean, nullable=False,
                                           server_default=sa.false())),
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # core.storage turns foreign keys off around migrations, so dropping the old table does not cascade into
        # metric_points; the rebuilt table keeps its rows, index and foreign key.
        with op.batch_alter_table("runs", recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch:
            for _, column in RUN_COLUMNS:
                batch.add_column(column())
    else:
        for _, column in RUN_COLUMNS:
            op.add_column("runs", column())
        if bind.dialect.name == "postgresql":
            bind.exec_driver_sql("SELECT setval(pg_get_serial_sequence('runs', 'id'), "
                                 "COALESCE((SELECT MAX(id) FROM runs), 0) + 1, false)")
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("token", sa.String))
    for (run_id,) in bind.execute(sa.select(runs.c.id)).all():
        bind.execute(runs.update().where(runs.c.id == run_id).values(token=uuid.uuid4().hex))
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("import_owner", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("import_owner")
    with op.batch_alter_table("runs") as batch:
        for name, _ in reversed(RUN_COLUMNS):
            batch.drop_column(name)
