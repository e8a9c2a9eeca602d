"""Initial schema: datasets, examples, label_events, runs, metric_points.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "examples",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("split", sa.String(20)),
        sa.Column("text", sa.Text),
        sa.Column("label", sa.String(200)),
        sa.Column("context", sa.Text),
        sa.Column("question", sa.Text),
        sa.Column("answer_text", sa.Text),
        sa.Column("answer_start", sa.Integer),
        sa.Column("qid", sa.String(200)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_examples_dataset_position", "examples", ["dataset_id", "position"])
    op.create_table(
        "label_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("example_id", sa.Integer, sa.ForeignKey("examples.id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("field", sa.String(20), nullable=False),
        sa.Column("old_value", sa.JSON),
        sa.Column("new_value", sa.JSON),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("undone", sa.Boolean, nullable=False),
    )
    op.create_index("ix_label_events_dataset_id", "label_events", ["dataset_id"])
    op.create_index("ix_label_events_example_id", "label_events", ["example_id"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="SET NULL")),
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("eval_dataset_name", sa.String(200)),
        sa.Column("task", sa.String(20), nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("device", sa.String(100)),
        sa.Column("precision", sa.String(20)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("total_steps", sa.Integer, nullable=False),
        sa.Column("best_metric_name", sa.String(100)),
        sa.Column("best_metric", sa.Float),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("artifact_dir", sa.Text),
    )
    op.create_index("ix_runs_dataset_name", "runs", ["dataset_name"])
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Float),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_metric_points_run_name", "metric_points", ["run_id", "name"])


def downgrade() -> None:
    for table in ("metric_points", "runs", "label_events", "examples", "datasets"):
        op.drop_table(table)
