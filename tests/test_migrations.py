"""Tests for the Alembic migrations in core/migrations (run programmatically by core.storage)."""
from __future__ import annotations

from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from core import storage

HEAD = "0007"


@pytest.fixture
def old_database(database_url, monkeypatch):
    """A database (SQLite, then PostgreSQL: conftest's database_url) migrated only to 0001 holding one dataset with
    an edit and one run with points."""
    url = database_url
    monkeypatch.setenv("DATABASE_URL", url)
    storage.migrate(url, "0001")
    now = datetime(2024, 5, 1, 12, 0, 0)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO datasets (id, name, task, labels, source, created_at) "
                                "VALUES (1, 'reviews', 'classification', '[\"neg\", \"pos\"]', 'r.csv', :now)"),
                           {"now": now})
        connection.execute(text("INSERT INTO examples (id, dataset_id, position, split, text, label, updated_at) "
                                "VALUES (:id, 1, :pos, 'train', :text, :label, :now)"),
                           [{"id": 1, "pos": 0, "text": "great", "label": "pos", "now": now},
                            {"id": 2, "pos": 1, "text": "awful", "label": None, "now": now}])
        connection.execute(text("INSERT INTO label_events (dataset_id, example_id, actor, field, old_value, "
                                "new_value, created_at, undone) VALUES (1, 1, 'user', 'label', 'null', '\"pos\"', "
                                ":now, :undone)"), {"now": now, "undone": False})
        connection.execute(text("INSERT INTO runs (id, dataset_id, dataset_name, task, model, params, status, "
                                "created_at, step, total_steps, metrics) VALUES (1, 1, 'reviews', 'classification', "
                                "'tiny', '{\"lr\": 0.001}', 'completed', :now, 4, 4, '{\"eval/accuracy\": 0.5}')"),
                           {"now": now})
        connection.execute(text("INSERT INTO metric_points (run_id, step, epoch, name, value, created_at) "
                                "VALUES (1, 4, 1.0, 'eval/accuracy', 0.5, :now)"), {"now": now})
        columns = {c["name"] for c in inspect(connection).get_columns("examples")}
    engine.dispose()
    assert "version" not in columns
    yield url
    storage.dispose_engines()


def _revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def test_upgrade_from_0001_keeps_data_and_new_columns_work(old_database):
    # first use through core.storage upgrades the database to head
    assert storage.get_dataset("reviews")["rows"] == 2
    assert _revision(old_database) == HEAD

    dataset = storage.get_dataset("reviews")
    assert (dataset["labels"], dataset["labeled"], dataset["source"]) == (["neg", "pos"], 1, "r.csv")
    examples = storage.load_examples("reviews")
    assert [(e["text"], e["label"], e["version"]) for e in examples] == [("great", "pos", 1), ("awful", None, 1)]
    assert storage.label_history("reviews")[0]["new_value"] == "pos"
    assert storage.label_history("reviews")[0]["person"] == "unknown"  # changes from before 0006: nobody recorded
    assert dataset["created_by"] == "unknown" and storage.get_run(1)["created_by"] == "unknown"

    assert storage.set_label(2, "neg", expected_version=1) == 2  # examples.version is usable
    with pytest.raises(storage.StaleEditError):
        storage.set_label(2, "pos", expected_version=1)
    undone = storage.undo_last("reviews")
    assert undone["example_id"] == 2 and undone["restored"] is None

    run = storage.get_run(1)
    assert (run["params"], run["metrics"], run["train_samples_per_second"], run["worker_pid"]) == \
        ({"lr": 0.001}, {"eval/accuracy": 0.5}, None, None)
    storage.update_run(1, train_samples_per_second=42.0, worker_host="box", worker_pid=7)  # new columns usable
    assert storage.get_run(1)["train_samples_per_second"] == 42.0
    assert (storage.get_run(1)["worker_host"], storage.get_run(1)["worker_pid"]) == ("box", 7)
    assert storage.metric_frame(1)["value"].tolist() == [0.5]


def test_downgrade_to_0001_and_back_keeps_rows(old_database):
    storage.migrate(old_database)
    storage.migrate(old_database, "0001")
    assert _revision(old_database) == "0001"
    storage.migrate(old_database, "head")
    assert [e["text"] for e in storage.load_examples("reviews")] == ["great", "awful"]


def test_upgrade_from_0006_keeps_rows_and_adds_metadata(database_url, monkeypatch):
    """0007 adds examples.meta in place: rows from before keep everything (and no metadata), new imports store
    theirs, and a downgrade to 0006 and back keeps the rows."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    storage.migrate(database_url, "0006")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO datasets (name, task, labels, source, created_at, created_by) "
                                "VALUES ('tickets', 'classification', '[\"billing\"]', 't.csv', :now, 'ann')"),
                           {"now": datetime(2026, 11, 1)})  # ids from the sequences: later inserts get theirs
        connection.execute(text("INSERT INTO examples (dataset_id, position, text, label, version, updated_at) "
                                "SELECT id, 0, 'charged twice', 'billing', 3, :now FROM datasets"),
                           {"now": datetime(2026, 11, 1)})
    engine.dispose()
    try:
        old = storage.load_examples("tickets")
        assert _revision(database_url) == HEAD
        assert [(e["text"], e["label"], e["version"], e["meta"]) for e in old] == [
            ("charged twice", "billing", 3, None)]
        storage.create_dataset("new", "classification", [{"text": "hi", "meta": {"ticket_id": "T-9"}}])
        assert storage.load_examples("new")[0]["meta"] == {"ticket_id": "T-9"}
        storage.migrate(database_url, "0006")
        storage.migrate(database_url, "head")
        assert [e["text"] for e in storage.load_examples("tickets")] == ["charged twice"]
    finally:
        storage.dispose_engines()


def test_orm_models_match_the_migrated_schema(database_url):
    with storage.get_engine().connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), storage.Base.metadata) == []
    storage.dispose_engines()


def test_head_revision_constant_matches_the_migration_scripts():
    """storage skips Alembic for a database already at HEAD_REVISION: that constant must be the real head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from core import storage
    config = Config()
    config.set_main_option("script_location", str(storage.MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == storage.HEAD_REVISION


def test_upgrade_to_0005_rebuilds_runs_in_place_so_ids_are_never_reused(old_database):
    """0005 rebuilds SQLite's runs table with AUTOINCREMENT: every run and its metric points survive (the rebuild
    must not cascade into metric_points), each run gets its own token, and a deleted run's id is never handed out
    again, also for ids below the largest one inserted before the upgrade."""
    engine = create_engine(old_database)
    with engine.begin() as connection:
        now = datetime(2024, 5, 2)
        connection.execute(text("INSERT INTO runs (id, dataset_id, dataset_name, task, model, params, status, "
                                "created_at, step, total_steps, metrics) VALUES (:id, 1, 'reviews', 'classification', "
                                "'tiny', '{}', 'completed', :now, 0, 0, '{}')"), [{"id": 2, "now": now},
                                                                                  {"id": 3, "now": now}])
        connection.execute(text("INSERT INTO metric_points (run_id, step, name, value, created_at) "
                                "VALUES (3, 1, 'train/loss', 0.25, :now)"), {"now": now})
    engine.dispose()
    storage.migrate(old_database, "0004")
    storage.migrate(old_database)  # 0004 -> head
    assert _revision(old_database) == HEAD
    assert storage.metric_frame([1, 3])["value"].tolist() == [0.5, 0.25]
    runs = {run["id"]: run for run in storage.list_runs()}
    assert sorted(runs) == [1, 2, 3] and len({run["token"] for run in runs.values()}) == 3
    assert runs[1]["metrics"] == {"eval/accuracy": 0.5} and runs[1]["cancel_requested"] is False
    storage.delete_run(3)
    assert storage.create_run("reviews", "classification", "m", {}) == 4  # not 3 again
    with storage.get_engine().connect() as connection:
        indexes = {index["name"] for index in inspect(connection).get_indexes("runs")}
        foreign = inspect(connection).get_foreign_keys("runs")
        if connection.dialect.name == "sqlite":
            sql = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'runs'")).scalar()
            assert "AUTOINCREMENT" in sql
    assert "ix_runs_dataset_name" in indexes
    assert [(f["referred_table"], f["options"].get("ondelete")) for f in foreign] == [("datasets", "SET NULL")]
