"""SpanLab's database: datasets, their examples, label edits (with undo) and training runs.

Everything goes through SQLAlchemy 2 and comes back as plain dicts or pandas DataFrames, never ORM
objects, so callers (Streamlit pages, the job runner, the CLI) never hold a session.

The schema is owned by Alembic migrations in ``core/migrations``; the first ``get_engine`` call for a
database URL upgrades that database to the newest revision. SQLite databases run in WAL mode with
foreign keys on, and every writing transaction starts with ``BEGIN IMMEDIATE`` so a training thread
logging metrics and the UI editing labels queue for the write lock (up to 30 s) instead of failing
with "database is locked".

This module holds the schema, the engine and the datasets API. Label editing (set_label, set_answer,
rename_label, undo_last, ...) and the runs API (create_run, add_metric_points, ...) live in
``core/runs_store.py`` to keep both modules short; import them from here all the same.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        TypeDecorator, and_, case, create_engine, delete, event, false, func, insert, or_,
                        select, update)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from core import tasks
from core.config import database_url
from core.errors import UserError
from core.tasks.base import TaskDataError, check_name, clean_split, hidden_characters, optional_str, quoted

log = logging.getLogger(__name__)
TASKS = tasks.NAMES
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30  # one wait for SQLite's write lock...
SQLITE_WRITE_WAIT_S = 600  # ...repeated until a writer has waited this long in all (see _begin_immediate)
_WRITE_OPTION = "spanlab_write"  # execution option: this connection's transactions write (BEGIN IMMEDIATE)


# --- Errors -----------------------------------------------------------------------------------------

class StorageError(UserError):
    """Base class of every error this module raises on purpose."""


class NotFoundError(StorageError):
    """The dataset, example or run asked for does not exist."""


class DuplicateNameError(StorageError):
    """A dataset (or label) with that name already exists."""


class StaleEditError(StorageError):
    """The example changed since the caller read it; the caller must reload."""

    def __init__(self, example_id: int, current_version: int, expected_version: int):
        self.example_id, self.current_version, self.expected_version = example_id, current_version, expected_version
        super().__init__(f"this example was changed elsewhere (version {current_version}, you had "
                         f"{expected_version}): reload and try again (example id {example_id})")


class InvalidEditError(StorageError):
    """The requested change is not allowed (unknown label, answer not in the context, bad field, ...)."""


# --- Schema (must match the newest migration in core/migrations/versions) ---------------------------

class UTCDateTime(TypeDecorator):
    """Stores naive UTC timestamps, hands back timezone-aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    import_owner: Mapped[str | None] = mapped_column(String(255))  # set while an import writes its rows: invisible
    created_by: Mapped[str | None] = mapped_column(String(200))  # who imported it (NULL: before revision 0006)


class Example(Base):
    __tablename__ = "examples"
    __table_args__ = (Index("ix_examples_dataset_position", "dataset_id", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    split: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(200))
    context: Mapped[str | None] = mapped_column(Text)
    question: Mapped[str | None] = mapped_column(Text)
    answer_text: Mapped[str | None] = mapped_column(Text)
    answer_start: Mapped[int | None] = mapped_column(Integer)
    qid: Mapped[str | None] = mapped_column(String(200))
    spans: Mapped[list | None] = mapped_column(JSON(none_as_null=True))   # entity spans [{start, end, label}]
    tokens: Mapped[list | None] = mapped_column(JSON(none_as_null=True))  # a token file's token offsets
    meta: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))  # the file's other columns {name: text}
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabelEvent(Base):
    __tablename__ = "label_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(40))
    field: Mapped[str] = mapped_column(String(20))
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone: Mapped[bool] = mapped_column(Boolean, default=False)
    person: Mapped[str | None] = mapped_column(String(200))  # who made the change; actor says how


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = {"sqlite_autoincrement": True}  # a deleted run's id is never handed out again
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    dataset_name: Mapped[str] = mapped_column(String(200), index=True)
    eval_dataset_name: Mapped[str | None] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(20))
    model: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    device: Mapped[str | None] = mapped_column(String(100))
    precision: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    best_metric_name: Mapped[str | None] = mapped_column(String(100))
    best_metric: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    artifact_dir: Mapped[str | None] = mapped_column(Text)
    train_samples_per_second: Mapped[float | None] = mapped_column(Float)
    worker_host: Mapped[str | None] = mapped_column(String(255))  # who runs it: lets a restart spot dead owners
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    token: Mapped[str | None] = mapped_column(String(32))  # a UUID: a worker's writes must name it (its run only)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # refreshed by a live worker
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[str | None] = mapped_column(String(200))    # who started it
    cancelled_by: Mapped[str | None] = mapped_column(String(200))  # who asked it to stop


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_run_name", "run_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float | None] = mapped_column(Float)  # NULL stores NaN (a diverged loss)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Base):
    """One line per import, dataset deletion, run start, cancel and run deletion: who did what, when."""
    __tablename__ = "activity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    person: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)


UNKNOWN_PERSON = "unknown"  # shown for changes made before people were recorded (or by nobody named)


def person_name(person: str | None) -> str:
    """``person`` as stored: trimmed, at most 200 characters; None or blank when nobody is named."""
    name = " ".join(str(person or "").split())[:200]
    return name or None


def log_activity(session: Session, person: str | None, action: str, subject: str) -> None:
    """Add an activity line inside the caller's writing transaction."""
    session.add(Activity(created_at=utcnow(), person=person_name(person), action=action, subject=subject))


def activity(limit: int = 50) -> list[dict]:
    """The newest activity lines first: {created_at, person ("unknown" when not recorded), action, subject}."""
    with reading() as session:
        rows = session.scalars(select(Activity).order_by(Activity.id.desc()).limit(limit)).all()
        return [{"created_at": row.created_at, "person": row.person or UNKNOWN_PERSON, "action": row.action,
                 "subject": row.subject} for row in rows]


# --- Engine, migrations, sessions -------------------------------------------------------------------

_engines: dict[str, tuple[Engine, Engine]] = {}  # url -> (engine, the same engine flagged for writing)
_engines_lock = threading.Lock()


def _create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and BEGIN IMMEDIATE writes."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")  # one shared connection: for tests, not threads
    if not in_memory:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
                           **({"poolclass": StaticPool} if in_memory else {}))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A deferred transaction that reads and then writes can fail at once with "database is locked"
        # when another writer got in between; taking the write lock up front makes writers wait instead.
        if connection.get_execution_options().get(_WRITE_OPTION):
            _begin_immediate(connection.connection.dbapi_connection)
        else:
            connection.exec_driver_sql("BEGIN")

    return engine


def _begin_immediate(dbapi_connection) -> None:
    """Take SQLite's write lock, queueing behind other writers: each try waits up to the busy timeout, and a writer
    still locked out tries again (with a warning in the log) until SQLITE_WRITE_WAIT_S have passed. Nothing of the
    transaction has run yet, so trying again is safe."""
    import sqlite3
    deadline = time.monotonic() + SQLITE_WRITE_WAIT_S
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            if time.monotonic() >= deadline:
                raise StorageError(f"the database stayed locked by another writer for over {SQLITE_WRITE_WAIT_S} s: "
                                   "try again when the import or training writing to it has finished") from error
            log.warning("the database is locked by another writer (%s): still waiting for the write lock", error)


# The newest migration in core/migrations/versions (a test checks they agree). A database already there is
# opened without importing Alembic at all, which keeps the app's first page fast.
HEAD_REVISION = "0007"


def _alembic_config(connection):
    from alembic.config import Config as AlembicConfig
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _current_revision(engine: Engine) -> str | None:
    from sqlalchemy import inspect, text
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _migrating(engine: Engine) -> Iterator:
    """A connection in one writing transaction for running migrations. On SQLite, foreign keys are off meanwhile (a
    migration that rebuilds a table must not cascade the old table's DROP into the tables referring to it, as
    Alembic's batch mode requires), checked before the commit, and on again afterwards."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise StorageError(f"the migration left {len(broken)} broken reference(s) (e.g. "
                                           f"{tuple(broken[0])}); nothing was changed")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def _upgrade(engine: Engine, revision: str) -> None:
    if revision == "head" and _current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command
    with _migrating(engine) as connection:
        command.upgrade(_alembic_config(connection), revision)


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: DATABASE_URL / SPANLAB_HOME) to ``revision``
    ("head", "0001", "base", ...), downgrading when the database is newer than that."""
    from alembic import command
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    engine = _create_engine(url or database_url())
    try:
        with _migrating(engine) as connection:
            config = _alembic_config(connection)
            current = MigrationContext.configure(connection).get_current_revision()
            script = ScriptDirectory.from_config(config)
            older = {rev.revision for rev in script.iterate_revisions(current, "base")} if current else set()
            older.discard(current)
            if revision == "base" or revision in older:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    finally:
        engine.dispose()


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: core.config.database_url()), created and migrated on first use."""
    return _engine_pair(url)[0]


def _engine_pair(url: str | None = None) -> tuple[Engine, Engine]:
    url = url or database_url()
    with _engines_lock:
        pair = _engines.get(url)
        if pair is None:
            engine = _create_engine(url)
            _upgrade(engine, "head")
            pair = _engines[url] = (engine, engine.execution_options(**{_WRITE_OPTION: True}))
    return pair


def dispose_engines() -> None:
    """Close every cached engine's connections (tests, shutdown); the next call reopens them."""
    with _engines_lock:
        for engine, _ in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def reading() -> Iterator[Session]:
    """A session for queries."""
    with Session(_engine_pair()[0]) as session:
        yield session


@contextmanager
def writing() -> Iterator[Session]:
    """A session whose single transaction holds the write lock from the start and commits on exit."""
    with Session(_engine_pair()[1], expire_on_commit=False) as session, session.begin():
        yield session


# --- Datasets -------------------------------------------------------------------------------------

def _task(name: str):
    try:
        return tasks.get(name)
    except ValueError as error:
        raise InvalidEditError(str(error)) from None


def _clean_rows(task, rows: list[dict], first: int = 1) -> list[dict]:
    """Every row's stored columns (all of them, NULL where the task has none), checked by the task; ``first`` is
    the number of the first row in messages."""
    empty = dict.fromkeys(ROW_COLUMNS)
    try:
        return [{**empty, **task.clean_row(row, number), "meta": _clean_meta(row.get("meta"), number)}
                for number, row in enumerate(rows, start=first)]
    except TaskDataError as error:
        raise InvalidEditError(str(error)) from None


def _clean_meta(meta: Any, number: int) -> dict[str, str] | None:
    """A row's metadata as stored: {column name: text} in the file's order (values as text, None as ""), or None
    when the row has none."""
    if meta is None or (isinstance(meta, dict) and not meta):
        return None
    if not isinstance(meta, dict):
        raise TaskDataError(f"row {number}: 'meta' must be a mapping of column name to value, not "
                            f"{type(meta).__name__}")
    from core.tasks.base import cell
    return {str(key): cell(value) for key, value in meta.items()}


def _checked_name(value: str, what: str) -> str:
    try:
        return check_name(value, what)
    except TaskDataError as error:
        raise InvalidEditError(str(error)) from None


def _clean_label_list(labels: Sequence[Any]) -> list[str]:
    cleaned: list[str] = []
    for value in labels:
        label = optional_str(value)
        if label is None:
            raise InvalidEditError(f"labels contain an empty value ({value!r}): every label needs a name")
        _checked_name(label, "the label")
        if label not in cleaned:
            cleaned.append(label)
    return cleaned


def create_dataset(name: str, task: str, rows: list[dict], labels: list[str] | None = None,
                   source: str | None = None, created_by: str | None = None) -> dict:
    """Store a new dataset and its rows (in order); returns the dataset dict. The rows are written in bounded
    batches, each a short transaction, and the dataset becomes visible only once all of them are in (a failure or
    a killed process leaves nothing visible behind).

    Rows are numbered from 1 in error messages. Classification rows: {text, label?, split?};
    QA rows: {context, question, answer_text?, answer_start?, qid?, split?} where answer_text "" means
    unanswerable and a missing answer_start is looked up in the context. The label set is ``labels``
    when given (every row label must be in it), else the sorted distinct labels of the rows. Any row may carry
    ``meta``: {column name: value}, the import file's other columns, stored as text and given back by load_examples.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidEditError("a dataset needs a non-empty name")
    _checked_name(name, "the dataset name")
    task_obj = _task(task)
    cleaned = _clean_rows(task_obj, rows)
    if not task_obj.has_labels:
        if labels:
            raise InvalidEditError(f"{task_obj.name} datasets have no label set: leave labels empty")
        label_set: list[str] = []
    elif labels is not None:
        label_set = _clean_label_list(labels)
        allowed = set(label_set)
        for number, row in enumerate(cleaned, start=1):
            for label in sorted(task_obj.row_labels(row) - allowed):
                raise InvalidEditError(f"row {number}: label {label!r} is not in the label set "
                                       f"({quoted(label_set)}): add it to the labels or fix the row")
    else:
        label_set = sorted({label for row in cleaned for label in task_obj.row_labels(row)})
    for label in label_set:
        if hidden_characters(label):
            number = next(n for n, row in enumerate(cleaned, start=1) if label in task_obj.row_labels(row))
            _checked_name(label, f"row {number}: the label")
    return _store_dataset(name, task, task_obj, [cleaned], label_set, source, created_by)


def create_dataset_streamed(name: str, task: str, batches: Iterable[list[dict]], labels: list[str] | None = None,
                            source: str | None = None, created_by: str | None = None) -> dict:
    """create_dataset for rows that arrive in batches (a large file read chunk by chunk): each batch is checked
    and written as it comes, so memory holds one batch, never the dataset. The label set (``labels``, else the
    rows' distinct labels, sorted) is stored with the name in the last transaction. A row that fails its checks, or
    an exception from ``batches``, removes what was written: nothing becomes visible."""
    name = (name or "").strip()
    if not name:
        raise InvalidEditError("a dataset needs a non-empty name")
    _checked_name(name, "the dataset name")
    task_obj = _task(task)
    if not task_obj.has_labels and labels:
        raise InvalidEditError(f"{task_obj.name} datasets have no label set: leave labels empty")
    allowed = _clean_label_list(labels) if task_obj.has_labels and labels is not None else None
    allowed_set = set(allowed or [])
    found: dict[str, None] = {}

    def cleaned_batches() -> Iterator[list[dict]]:
        number = 0
        for rows in batches:
            cleaned = _clean_rows(task_obj, rows, first=number + 1)
            for row_number, row in enumerate(cleaned, start=number + 1):
                used = task_obj.row_labels(row)
                for label in sorted(used - allowed_set) if allowed is not None else ():
                    raise InvalidEditError(f"row {row_number}: label {label!r} is not in the label set "
                                           f"({quoted(allowed)}): add it to the labels or fix the row")
                for label in used:
                    if label not in found:
                        found[label] = None
                        if hidden_characters(label):
                            _checked_name(label, f"row {row_number}: the label")
            number += len(cleaned)
            yield cleaned

    label_set = (lambda: allowed) if allowed is not None else (lambda: sorted(found) if task_obj.has_labels else [])
    return _store_dataset(name, task, task_obj, cleaned_batches(), label_set, source, created_by)


IMPORT_BATCH_ROWS = 5000  # rows per writing transaction of an import: each holds the write lock only briefly


def _import_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _visible(stmt):
    """Only datasets whose import has finished (a staged import is invisible to everyone)."""
    return stmt.where(Dataset.import_owner.is_(None))


def _duplicate(session: Session, name: str) -> None:
    if session.scalar(_visible(select(Dataset.id).where(Dataset.name == name))) is not None:
        raise DuplicateNameError(f"a dataset named {name!r} already exists: pick another name or delete it first")


def _store_dataset(name: str, task: str, task_obj, batches: Iterable[list[dict]],
                   label_set: list[str] | Callable[[], list[str]], source: str | None,
                   created_by: str | None = None) -> dict:
    """Write checked rows (``batches`` of them, in order) in bounded batches, each its own short transaction, under a
    staging name with ``import_owner`` set (invisible to every reader); the last transaction gives it its name and,
    when ``label_set`` is a function (rows still arriving), its label set. A failure removes what was written; a
    process killed midway leaves an invisible staged dataset that remove_abandoned_imports clears."""
    remove_abandoned_imports()
    now, owner = utcnow(), _import_owner()
    with writing() as session:
        _duplicate(session, name)
        staged_labels = label_set if isinstance(label_set, list) else []
        dataset = Dataset(name=f".importing-{owner}", task=task, labels=staged_labels, source=source, created_at=now,
                          import_owner=owner, created_by=person_name(created_by))
        session.add(dataset)
        session.flush()
        dataset_id = dataset.id
    count = labeled = 0
    try:
        for cleaned in batches:
            for start in range(0, len(cleaned), IMPORT_BATCH_ROWS):
                batch = cleaned[start:start + IMPORT_BATCH_ROWS]
                for position, row in enumerate(batch, start=count):
                    row.update(dataset_id=dataset_id, position=position, version=1, updated_at=now)
                with writing() as session:
                    session.execute(insert(Example.__table__), batch)
                count += len(batch)
                labeled += sum(1 for row in batch if row[task_obj.done_field] is not None)
        with writing() as session:
            _duplicate(session, name)  # another import may have taken the name meanwhile
            dataset = session.get(Dataset, dataset_id, with_for_update=True)
            dataset.name, dataset.import_owner = name, None
            if callable(label_set):
                dataset.labels = list(label_set())
            try:
                session.flush()
            except IntegrityError:
                raise DuplicateNameError(f"a dataset named {name!r} already exists: pick another name") from None
            log_activity(session, created_by, "imported dataset", f"{name!r} ({count} rows, {task})")
    except BaseException:
        _remove_staged(dataset_id)
        raise
    return _dataset_dict(dataset, count, labeled)


def _remove_staged(dataset_id: int) -> None:
    """Delete a staged (unfinished) import, its rows in bounded batches."""
    try:
        while True:
            with writing() as session:
                ids = select(Example.id).where(Example.dataset_id == dataset_id).limit(IMPORT_BATCH_ROWS)
                if not session.execute(delete(Example).where(Example.id.in_(ids.scalar_subquery()))).rowcount:
                    session.execute(delete(Dataset).where(Dataset.id == dataset_id, Dataset.import_owner.is_not(None)))
                    return
    except Exception as error:  # the original error matters more; the next import clears it
        log.warning("could not remove the unfinished import %s yet (%s)", dataset_id, error)


def remove_abandoned_imports() -> int:
    """Remove staged imports whose process died (on this host: its pid is gone); returns how many."""
    from core.runs_store import _process_alive
    host = socket.gethostname()
    with reading() as session:
        staged = session.execute(select(Dataset.id, Dataset.import_owner)
                                 .where(Dataset.import_owner.is_not(None))).all()
    abandoned = []
    for dataset_id, owner in staged:
        owner_host, pid, _ = (owner.rsplit(":", 2) + ["", ""])[:3]  # "host:pid:random" (see _import_owner)
        if owner_host == host and pid.isdigit() and not _process_alive(int(pid)):
            abandoned.append(dataset_id)
    for dataset_id in abandoned:
        log.warning("removing the rows of an import whose process died (dataset id %s)", dataset_id)
        _remove_staged(dataset_id)
    return len(abandoned)


ROW_COLUMNS = ("split", "text", "label", "context", "question", "answer_text", "answer_start", "qid", "spans",
               "tokens", "meta")


def _dataset_dict(dataset: Dataset, rows: int, labeled: int) -> dict:
    return {"id": dataset.id, "name": dataset.name, "task": dataset.task, "labels": list(dataset.labels or []),
            "source": dataset.source, "created_at": dataset.created_at, "created_by": dataset.created_by or UNKNOWN_PERSON,
            "rows": rows, "labeled": labeled}


def _dataset_summaries(where=None) -> list[dict]:
    is_labeled = or_(*(and_(Dataset.task == task.name, getattr(Example, task.done_field).is_not(None))
                       for task in tasks.ALL))
    stmt = _visible(select(Dataset, func.count(Example.id), func.count(case((is_labeled, 1))))
                    .outerjoin(Example, Example.dataset_id == Dataset.id).group_by(Dataset.id).order_by(Dataset.name))
    if where is not None:
        stmt = stmt.where(where)
    with reading() as session:
        return [_dataset_dict(dataset, rows, labeled) for dataset, rows, labeled in session.execute(stmt)]


def list_datasets() -> list[dict]:
    """Every dataset (by name) with its row count and how many rows are labeled/answered."""
    return _dataset_summaries()


def find_dataset(session: Session, ref: int | str) -> Dataset:
    if isinstance(ref, int) and not isinstance(ref, bool):
        dataset = session.scalar(_visible(select(Dataset).where(Dataset.id == ref)))
    elif isinstance(ref, str):
        dataset = session.scalar(_visible(select(Dataset).where(Dataset.name == ref.strip())))
    else:
        raise InvalidEditError(f"a dataset is named by its id (int) or name (str), not {type(ref).__name__}")
    if dataset is None:
        names = session.scalars(_visible(select(Dataset.name)).order_by(Dataset.name).limit(6)).all()
        known = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "") if names else "none yet"
        raise NotFoundError(f"no dataset {ref!r} (existing datasets: {known}): check the name or import it first")
    return dataset


def get_dataset(ref: int | str) -> dict:
    """One dataset's dict (same keys as list_datasets), by id or name."""
    with reading() as session:
        dataset_id = find_dataset(session, ref).id
    return _dataset_summaries(Dataset.id == dataset_id)[0]


class DatasetInUseError(StorageError):
    """The dataset cannot be deleted: a queued or running run trains on it (or evaluates on it)."""


def delete_dataset(ref: int | str, by: str | None = None) -> None:
    """Delete a dataset with its examples and label history; its runs stay, with dataset_id NULL. Refused
    (DatasetInUseError) while a queued or running run trains or evaluates on it."""
    with writing() as session:
        dataset = find_dataset(session, ref)
        dataset_id = dataset.id
        busy = session.execute(select(Run.id, Run.status, Run.created_by)
                               .where(Run.status.in_(("queued", "running")),
                                      or_(Run.dataset_id == dataset_id, Run.eval_dataset_name == dataset.name))
                               .order_by(Run.id)).all()
        if busy:
            runs = ", ".join(f"#{run.id} ({run.status}, started by {run.created_by or UNKNOWN_PERSON})" for run in busy)
            raise DatasetInUseError(f"dataset {dataset.name!r} is not deleted: run {runs} uses it. Wait until the "
                                    "run ends or cancel it, then delete the dataset")
        log_activity(session, by, "deleted dataset", f"{dataset.name!r} ({dataset.task})")
        session.execute(update(Run).where(Run.dataset_id == dataset_id).values(dataset_id=None))
        session.execute(delete(LabelEvent).where(LabelEvent.dataset_id == dataset_id))
        session.execute(delete(Example).where(Example.dataset_id == dataset_id))
        session.execute(delete(Dataset).where(Dataset.id == dataset_id))


EXAMPLE_KEYS = ("id", "version", "position", "split")
META_KEY = "meta"  # every example's metadata: the import file's other columns {name: text}, or None


def load_examples(ref: int | str, split: str | None = None) -> list[dict]:
    """The dataset's examples in import order (optionally one split) as dicts of id, version,
    position, split, the task's fields and meta."""
    with reading() as session:
        dataset = find_dataset(session, ref)
        columns = [getattr(Example, key) for key in EXAMPLE_KEYS + _task(dataset.task).stored + (META_KEY,)]
        stmt = select(*columns).where(Example.dataset_id == dataset.id).order_by(Example.position)
        if split is not None:
            try:
                stmt = stmt.where(Example.split == clean_split(split, 0))
            except TaskDataError as error:
                raise InvalidEditError(str(error)) from None
        return [dict(row) for row in session.execute(stmt).mappings()]


def examples_frame(ref: int | str) -> pd.DataFrame:
    """load_examples(ref) as a DataFrame; the columns are the same even for an empty dataset."""
    with reading() as session:
        task = find_dataset(session, ref).task
    columns = list(EXAMPLE_KEYS + _task(task).stored + (META_KEY,))
    frame = pd.DataFrame(load_examples(ref), columns=columns)
    for column in columns:  # whole numbers with gaps stay whole numbers (not floats)
        if isinstance(Example.__table__.columns[column].type, Integer) and column not in EXAMPLE_KEYS:
            frame[column] = frame[column].astype("Int64")
    return frame


# --- Labeling and runs: implemented in core/runs_store.py (which imports this module), served from here ---

LABELING_API = ("edit_example", "set_label", "set_labels_bulk", "set_answer", "set_spans", "add_label", "rename_label",
                "undo_last", "last_undoable", "label_history")
RUNS_API = ("create_run", "update_run", "add_metric_points", "get_run", "list_runs", "metric_frame",
            "delete_run", "mark_interrupted", "claim_run", "heartbeat", "request_cancel", "reap_dead_runs",
            "RunGoneError", "model_folder_name", "partial_folder_prefix", "record_cancel")

__all__ = ["StorageError", "NotFoundError", "DuplicateNameError", "StaleEditError", "InvalidEditError",
           "DatasetInUseError", "UNKNOWN_PERSON", "person_name", "activity",
           "get_engine", "migrate", "dispose_engines", "create_dataset", "list_datasets", "get_dataset",
           "remove_abandoned_imports",
           "delete_dataset", "load_examples", "examples_frame", *LABELING_API, *RUNS_API]


def __getattr__(name: str):
    """``from core.storage import set_label, create_run`` works: those live in core.runs_store."""
    if name in LABELING_API or name in RUNS_API:
        from core import runs_store
        return getattr(runs_store, name)
    raise AttributeError(f"module 'core.storage' has no attribute {name!r}")
