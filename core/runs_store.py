"""Label edits (with undo) and training runs: the write-often half of core.storage.

Import these functions from ``core.storage``; they live here only to keep that module short.
Every label/answer edit checks the example's version, applies the change, bumps the version and
logs a label_events row in one transaction, so edits can be refused when stale and undone later.
A run row copies its dataset's name, so run history survives deleting the dataset.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import socket
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import tasks
from core.config import runs_dir
from core.storage import (TASKS, UNKNOWN_PERSON, Dataset, DuplicateNameError, Example, InvalidEditError, LabelEvent,
                          MetricPoint, NotFoundError, Run, StaleEditError, StorageError, find_dataset, log_activity,
                          person_name, reading, utcnow, writing)
from core.storage import _checked_name
from core.tasks.base import TaskDataError, optional_str, quoted

log = logging.getLogger(__name__)
_IN_CHUNK = 900  # ids per "IN (...)" clause, below every SQLite variable limit


# --- Labeling ---------------------------------------------------------------------------------------

def _locked_example(session: Session, example_id: int) -> tuple[Example, Dataset]:
    row = session.execute(select(Example, Dataset).join(Dataset, Example.dataset_id == Dataset.id)
                          .where(Example.id == example_id).with_for_update(of=Example)).first()
    if row is None:
        raise NotFoundError(f"no example with id {example_id}: it may have been deleted; reload the dataset")
    return row[0], row[1]


def _check_version(example: Example, expected_version: int) -> None:
    if example.version != expected_version:
        raise StaleEditError(example.id, example.version, expected_version)


def _task_of(dataset: Dataset):
    return tasks.get(dataset.task)


def _checked(dataset: Dataset, example: Example | None, field: str, value: Any):
    """``value`` for an edit of ``field`` on an example of ``dataset``, as the dataset's task accepts it."""
    task = _task_of(dataset)
    if task.edit_field != field:
        raise InvalidEditError(f"dataset {dataset.name!r} is a {dataset.task} dataset: edit {_plural(task.edit_field)}, "
                               f"not {_plural(field)}")
    try:
        return task.check_edit(example, value, list(dataset.labels or []))
    except TaskDataError as error:
        raise InvalidEditError(f"{error} (dataset {dataset.name!r})") from None


def _plural(field: str) -> str:
    return field if field.endswith("s") else field + "s"


def _apply(session: Session, example: Example, dataset: Dataset, value: Any, actor: str, undone: bool = False,
           person: str | None = None) -> Any:
    """Set the task's edited field to ``value``, bump the version and log the event; returns the old value."""
    task = _task_of(dataset)
    old = task.edit_value(example)
    for column, column_value in task.edit_columns(value).items():
        setattr(example, column, column_value)
    example.version += 1
    example.updated_at = utcnow()
    session.add(LabelEvent(dataset_id=example.dataset_id, example_id=example.id, actor=actor, field=task.edit_field,
                           old_value=old, new_value=value, undone=undone, created_at=example.updated_at,
                           person=person_name(person)))
    return old


def edit_example(example_id: int, field: str, value: Any, expected_version: int, actor: str = "user",
                 person: str | None = None) -> int:
    """Set an example's label ("label"), answer ("answer") or entity spans ("spans") — the one field its task edits —
    if it is still at ``expected_version``; returns the new version. Setting the value it already has changes
    nothing and returns the current version. ``actor`` says how (by hand, suggestion, ...), ``person`` who."""
    with writing() as session:
        example, dataset = _locked_example(session, example_id)
        _check_version(example, expected_version)
        value = _checked(dataset, example, field, value)
        if _task_of(dataset).edit_value(example) != value:
            _apply(session, example, dataset, value, actor, person=person)
        return example.version


def set_label(example_id: int, label: str | None, expected_version: int, actor: str = "user",
              person: str | None = None) -> int:
    """Label one classification example (None clears it) if it is still at ``expected_version``; returns the new
    version."""
    return edit_example(example_id, "label", label, expected_version, actor, person)


def set_answer(example_id: int, answer_text: str | None, answer_start: int | None, expected_version: int,
               actor: str = "user", person: str | None = None) -> int:
    """Set a QA example's answer: "" = unanswerable, None = not answered yet, otherwise the text must sit
    at ``answer_start`` in the context. Returns the new version."""
    return edit_example(example_id, "answer", {"answer_text": answer_text, "answer_start": answer_start},
                        expected_version, actor, person)


def set_spans(example_id: int, spans: list[dict] | None, expected_version: int, actor: str = "user",
              person: str | None = None) -> int:
    """Set an entity example's spans ([{start, end, label}]; [] = no entities, None = not annotated yet); every
    label must be one of the dataset's entity types. Returns the new version."""
    return edit_example(example_id, "spans", spans, expected_version, actor, person)


def _relabel_rows(session: Session, dataset: Dataset, changes: dict[int, tuple[Any, Any]], actor: str,
                  person: str | None = None) -> None:
    """Write new edit values ({example id: (old, new)}) with plain UPDATE/INSERT statements (no ORM objects), one
    UPDATE per distinct new value, and log one event per example."""
    task = _task_of(dataset)
    now = utcnow()
    groups: dict[str, list[int]] = {}
    for example_id, (_, new) in changes.items():
        groups.setdefault(json.dumps(new, sort_keys=True), []).append(example_id)
    for ids in groups.values():
        columns = task.edit_columns(changes[ids[0]][1])
        for start in range(0, len(ids), _IN_CHUNK):
            session.execute(update(Example).where(Example.id.in_(ids[start:start + _IN_CHUNK]))
                            .values(**columns, version=Example.version + 1, updated_at=now))
    if changes:
        session.execute(insert(LabelEvent.__table__), [
            {"dataset_id": dataset.id, "example_id": i, "actor": actor, "field": task.edit_field,
             "old_value": old, "new_value": new, "created_at": now, "undone": False, "person": person_name(person)}
            for i, (old, new) in changes.items()])


def set_labels_bulk(example_ids: list[int], label: str | None, actor: str = "bulk", person: str | None = None) -> int:
    """Give all these classification examples ``label`` (no version check); returns how many actually changed."""
    wanted = list(dict.fromkeys(example_ids))
    with writing() as session:
        rows = []
        for start in range(0, len(wanted), _IN_CHUNK):
            rows += session.execute(select(Example.id, Example.label, Example.dataset_id)
                                    .where(Example.id.in_(wanted[start:start + _IN_CHUNK]))).all()
        missing = set(wanted) - {row.id for row in rows}
        if missing:
            raise NotFoundError(f"{len(missing)} example id(s) do not exist (e.g. {sorted(missing)[:5]}): "
                                "reload the dataset")
        for dataset_id in {row.dataset_id for row in rows}:
            dataset = session.get(Dataset, dataset_id)
            label = _checked(dataset, None, "label", label)
            changed = {row.id: (row.label, label) for row in rows if row.dataset_id == dataset_id and row.label != label}
            _relabel_rows(session, dataset, changed, actor, person)
        return sum(1 for row in rows if row.label != label)


def _labeled_dataset(session: Session, ref: int | str) -> Dataset:
    dataset = find_dataset(session, ref)
    if not _task_of(dataset).has_labels:
        raise InvalidEditError(f"dataset {dataset.name!r} is a {dataset.task} dataset: it has no labels")
    return dataset


def add_label(ref: int | str, label: str) -> list[str]:
    """Append a label to a classification dataset's label set; returns the new label set."""
    name = optional_str(label)
    with writing() as session:
        dataset = _labeled_dataset(session, ref)
        if name is None:
            raise InvalidEditError("a label needs a non-empty name")
        _checked_name(name, "the label")
        if name in dataset.labels:
            raise DuplicateNameError(f"dataset {dataset.name!r} already has the label {name!r}")
        dataset.labels = [*dataset.labels, name]
        return list(dataset.labels)


def rename_label(ref: int | str, old: str, new: str, person: str | None = None) -> int:
    """Rename a label everywhere (label set and examples); renaming onto an existing label merges the two.
    Each relabeled example gets an event with actor "rename". Returns how many examples changed."""
    old_name, new_name = optional_str(old), optional_str(new)
    with writing() as session:
        dataset = _labeled_dataset(session, ref)
        if old_name not in dataset.labels:
            raise InvalidEditError(f"dataset {dataset.name!r} has no label {old!r} "
                                   f"(labels: {quoted(dataset.labels) or 'none'})")
        if new_name is None:
            raise InvalidEditError(f"renaming {old_name!r}: the new name is empty")
        _checked_name(new_name, "the new label")
        if new_name == old_name:
            return 0
        if new_name in dataset.labels:
            dataset.labels = [name for name in dataset.labels if name != old_name]
        else:
            dataset.labels = [new_name if name == old_name else name for name in dataset.labels]
        task = _task_of(dataset)
        stored = session.execute(select(Example).where(Example.dataset_id == dataset.id,
                                                      getattr(Example, task.done_field).is_not(None))).scalars()
        changes = {}
        for example in stored:
            old_value = task.edit_value(example)
            new_value = task.relabel(old_value, old_name, new_name)
            if new_value != old_value:
                changes[example.id] = (old_value, new_value)
        _relabel_rows(session, dataset, changes, "rename", person)
        return len(changes)


GROUPED_ACTORS = ("bulk", "rename")  # one user action that changed many rows: undone as one


def _pending_edits(dataset: Dataset, person: str | None):
    """The dataset's edits not undone yet; only ``person``'s when given (None: everyone's)."""
    stmt = select(LabelEvent).where(LabelEvent.dataset_id == dataset.id, LabelEvent.undone.is_(False))
    if person is not None:
        name = person_name(person)
        stmt = stmt.where(LabelEvent.person == name) if name else stmt.where(LabelEvent.person.is_(None))
    return stmt


def _undo_group(session: Session, dataset: Dataset, person: str | None, lock: bool = False) -> list[LabelEvent]:
    """The newest pending edit (of ``person`` when given) and, for a bulk assignment or rename, the rest of that one
    action; newest first. Empty when there is nothing to undo."""
    pending = _pending_edits(dataset, person)
    newest = pending.order_by(LabelEvent.id.desc()).limit(1)
    last = session.scalar(newest.with_for_update() if lock else newest)
    if last is None:
        return []
    if last.actor not in GROUPED_ACTORS:
        return [last]
    return list(session.scalars(pending.where(LabelEvent.actor == last.actor, LabelEvent.created_at == last.created_at)
                                .order_by(LabelEvent.id.desc())).all())


def _overwritten(session: Session, event: LabelEvent) -> LabelEvent | None:
    """A newer edit of the same example, still in place, that replaced ``event``'s value; None when there is none."""
    return session.scalar(select(LabelEvent).where(LabelEvent.example_id == event.example_id,
                                                   LabelEvent.id > event.id, LabelEvent.undone.is_(False))
                          .order_by(LabelEvent.id.desc()).limit(1))


def _undo_summary(session: Session, events: list[LabelEvent]) -> dict:
    last = events[0]
    position = session.scalar(select(Example.position).where(Example.id == last.example_id))
    return {"example_id": last.example_id, "position": position, "field": last.field, "restored": last.old_value,
            "replaced": last.new_value, "actor": last.actor, "person": last.person or UNKNOWN_PERSON,
            "created_at": last.created_at, "event_id": last.id, "count": len(events)}


def last_undoable(ref: int | str, person: str | None = None) -> dict | None:
    """What undo_last(ref, person) would revert, without reverting it: {example_id, position, field, restored (the
    value it brings back), replaced (the value it removes), actor, person, created_at, event_id, count}; None when
    there is nothing to undo."""
    with reading() as session:
        dataset = find_dataset(session, ref)
        events = _undo_group(session, dataset, person)
        return _undo_summary(session, events) if events else None


def undo_last(ref: int | str, person: str | None = None) -> dict | None:
    """Revert the most recent edit not undone yet — ``person``'s own when given (so one person's undo never touches
    another's work), anyone's when None; None when there is nothing to undo.

    A bulk assignment or a rename is one action: all its rows are reverted together. An edit that someone else has
    since overwritten on the same row is not reverted (InvalidEditError names the row and who changed it): undoing it
    would erase their newer value. The revert is itself logged (actor "undo", by ``person``, already marked undone so
    it is never undone in turn). A restored label that has since left the label set is added back. Returns
    last_undoable's dict plus the example's new ``version``.
    """
    with writing() as session:
        dataset = find_dataset(session, ref)
        events = _undo_group(session, dataset, person, lock=True)
        if not events:
            return None
        summary = _undo_summary(session, events)
        task = _task_of(dataset)
        for event in events:
            newer = _overwritten(session, event)
            if newer is not None:
                position = session.scalar(select(Example.position).where(Example.id == event.example_id))
                raise InvalidEditError(f"row {position + 1} was changed again by {newer.person or UNKNOWN_PERSON} "
                                       "after your change, so it is not undone (that would erase their newer value): "
                                       "edit the row directly instead")
        for event in events:
            example, _ = _locked_example(session, event.example_id)
            gone = sorted(task.label_uses(event.old_value) - set(dataset.labels))
            if gone:
                dataset.labels = [*dataset.labels, *gone]
            event.undone = True
            _apply(session, example, dataset, event.old_value, "undo", undone=True, person=person)
        example, _ = _locked_example(session, summary["example_id"])
        return {**summary, "version": example.version}


def label_history(ref: int | str, limit: int = 50) -> list[dict]:
    """The dataset's label/answer edits, newest first (with the example's position)."""
    with reading() as session:
        dataset = find_dataset(session, ref)
        rows = session.execute(select(LabelEvent, Example.position)
                               .join(Example, Example.id == LabelEvent.example_id)
                               .where(LabelEvent.dataset_id == dataset.id)
                               .order_by(LabelEvent.id.desc()).limit(limit)).all()
        return [{"id": e.id, "example_id": e.example_id, "position": position, "actor": e.actor,
                 "person": e.person or UNKNOWN_PERSON, "field": e.field, "old_value": e.old_value,
                 "new_value": e.new_value, "created_at": e.created_at, "undone": e.undone} for e, position in rows]


# --- Runs -----------------------------------------------------------------------------------------
#
# Ownership: every run row gets a token (a UUID) when it is created. The process that trains it (its worker) names
# the token in every write (``owner=``), so a worker can only ever write to its own run: a deleted run's worker gets
# RunGoneError instead of writing into whatever row holds that id now (ids are never reused anyway: AUTOINCREMENT
# on SQLite, sequences on PostgreSQL). A live worker refreshes ``heartbeat_at`` every HEARTBEAT_INTERVAL_S; whenever
# runs are read, a queued/running run whose process is gone (same host, pid no longer alive) or whose heartbeat is
# older than STALE_HEARTBEAT_S (any host) is marked interrupted, and its partial model folders are removed.

RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
RUN_FIELDS = tuple(column.key for column in Run.__table__.columns if column.key != "id")
_INTERNAL_FIELDS = ("token", "heartbeat_at", "cancel_requested")  # written by the ownership functions only
METRIC_COLUMNS = ["run_id", "step", "epoch", "name", "value", "created_at"]
HEARTBEAT_INTERVAL_S = 5.0
STALE_HEARTBEAT_S = 120.0


class RunGoneError(NotFoundError):
    """The run a worker was training no longer exists (it was deleted): the worker must stop writing."""


def _this_worker() -> dict:
    """Who owns a run: this host and process (so another process can tell when the owner died)."""
    return {"worker_host": socket.gethostname(), "worker_pid": os.getpid()}


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` on this machine still exists (when unsure: yes)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes
        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists but belongs to someone else
        return True
    return True


def _get(session, run_id: int, for_update: bool = False) -> Run:
    run = session.get(Run, run_id, with_for_update=for_update or None)
    if run is None:
        raise NotFoundError(f"no run with id {run_id}: it may have been deleted; reload the runs list")
    return run


def _owned(session, run_id: int, owner: str | None) -> Run:
    """The run, locked for writing; with ``owner``, only if that is still its token (else RunGoneError)."""
    run = session.get(Run, run_id, with_for_update=True)
    if owner is not None and (run is None or run.token != owner):
        raise RunGoneError(f"run {run_id} was deleted while it was being trained: its worker stops writing")
    if run is None:
        raise NotFoundError(f"no run with id {run_id}: it may have been deleted; reload the runs list")
    return run


def _run_dict(run: Run) -> dict:
    data = {key: getattr(run, key) for key in ("id", *RUN_FIELDS)}
    data["params"], data["metrics"] = dict(run.params or {}), dict(run.metrics or {})
    data["created_by"] = run.created_by or UNKNOWN_PERSON
    duration = None
    if run.started_at is not None:
        duration = ((run.finished_at or utcnow()) - run.started_at).total_seconds()
    data["duration_s"] = duration
    return data


def model_folder_name(run_id: int, token: str | None) -> str:
    """A run's model folder inside runs_dir(): ``run-<id>-<first 8 of its token>``, unique per run (two databases
    sharing one SPANLAB_HOME, or a recreated database, never pick the same folder)."""
    return f"run-{run_id}-{(token or 'legacy')[:8]}"


def partial_folder_prefix(run_id: int, token: str | None) -> str:
    """How the temporary folders a run's model is written into start (renamed to model_folder_name when done)."""
    return f".{model_folder_name(run_id, token)}-"


def create_run(dataset: str | int, task: str, model: str, params: dict, eval_dataset: str | None = None,
               created_by: str | None = None) -> int:
    """Record a queued run on ``dataset`` (name or id), owned by this process and started by ``created_by``;
    returns the run id."""
    if task not in TASKS:
        raise InvalidEditError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    if not model:
        raise InvalidEditError("a run needs a model (a local folder or a model name)")
    with writing() as session:
        train = find_dataset(session, dataset)
        eval_name = find_dataset(session, eval_dataset).name if eval_dataset is not None else None
        run = Run(dataset_id=train.id, dataset_name=train.name, eval_dataset_name=eval_name, task=task,
                  model=str(model), params=dict(params or {}), status="queued", created_at=utcnow(),
                  step=0, total_steps=0, metrics={}, token=uuid.uuid4().hex, cancel_requested=False,
                  created_by=person_name(created_by), **_this_worker())
        session.add(run)
        session.flush()
        log_activity(session, created_by, "started run", f"#{run.id} on {train.name!r} ({model})")
        return run.id


def record_cancel(run_id: int, by: str | None = None) -> None:
    """Note that ``by`` asked run ``run_id`` to stop (the runner stops it)."""
    with writing() as session:
        _note_cancel(session, _get(session, run_id), by)


def _note_cancel(session, run: Run, by: str | None) -> None:
    """Record on ``run`` and in the activity log that ``by`` asked it to stop."""
    run.cancelled_by = person_name(by) or UNKNOWN_PERSON
    log_activity(session, by, "cancelled run", f"#{run.id} on {run.dataset_name!r}")


def update_run(run_id: int, owner: str | None = None, **fields: Any) -> None:
    """Set any runs columns (status, step, metrics={...}, finished_at=..., ...) on one run.
    Setting status="running" also makes this process the run's owner (worker_host, worker_pid).
    A worker passes ``owner`` (the run's token): the write happens only if the run is still the one it owns,
    otherwise RunGoneError; a live worker's writes also count as a heartbeat."""
    unknown = sorted(set(fields) - set(RUN_FIELDS) | set(fields) & set(_INTERNAL_FIELDS))
    if unknown:
        raise InvalidEditError(f"runs have no column(s) {unknown} to set: valid ones are "
                               f"{[f for f in RUN_FIELDS if f not in _INTERNAL_FIELDS]}")
    if "status" in fields and fields["status"] not in RUN_STATUSES:
        raise InvalidEditError(f"unknown run status {fields['status']!r}: use one of {list(RUN_STATUSES)}")
    for key in ("started_at", "finished_at", "created_at"):
        if fields.get(key) is not None and not isinstance(fields[key], datetime):
            raise InvalidEditError(f"{key} must be a datetime, not {fields[key]!r}")
    if fields.get("status") == "running":
        fields = {**_this_worker(), **fields}
    with writing() as session:
        run = _owned(session, run_id, owner)
        for key, value in fields.items():
            setattr(run, key, dict(value) if key in ("params", "metrics") and value is not None else value)
        if owner is not None and run.status == "running":
            run.heartbeat_at = utcnow()


def claim_run(run_id: int, owner: str) -> bool:
    """A worker starts its queued run: status running, this process its owner, a first heartbeat. False (and the
    run marked cancelled) when a cancel was asked for before it started; RunGoneError when it no longer exists."""
    with writing() as session:
        run = _owned(session, run_id, owner)
        if run.status != "queued" or run.cancel_requested:
            if run.status in ACTIVE_STATUSES:
                run.status, run.error, run.finished_at = "cancelled", "cancelled before it started", utcnow()
            return False
        now = utcnow()
        for key, value in {"status": "running", "started_at": now, "heartbeat_at": now, "error": None,
                           **_this_worker()}.items():
            setattr(run, key, value)
        return True


def heartbeat(run_id: int, owner: str) -> bool:
    """A live worker says so (refreshes heartbeat_at); returns whether someone asked the run to stop
    (request_cancel). RunGoneError when the run was deleted."""
    with writing() as session:
        run = _owned(session, run_id, owner)
        if run.status in ACTIVE_STATUSES:
            run.heartbeat_at = utcnow()
        return bool(run.cancel_requested)


def request_cancel(run_id: int, by: str | None = None) -> bool:
    """Ask a queued or running run to stop, whichever process trains it (its worker sees the request at its next
    heartbeat and keeps the best checkpoint so far); ``by`` (who asked) is recorded. Returns False when the run is
    not active."""
    reap_dead_runs()
    with writing() as session:
        run = _get(session, run_id, for_update=True)
        if run.status not in ACTIVE_STATUSES:
            return False
        run.cancel_requested = True
        _note_cancel(session, run, by)
        return True


def add_metric_points(run_id: int, points: list[dict], owner: str | None = None) -> None:
    """Append metric points ({step, epoch?, name, value}) to a run; a NaN value is stored as NULL. With ``owner``
    (the worker's token) only to the run it owns (else RunGoneError)."""
    now = utcnow()
    rows = []
    for number, point in enumerate(points, start=1):
        missing = [key for key in ("step", "name", "value") if key not in point]
        if missing:
            raise InvalidEditError(f"metric point {number} lacks {missing}: each needs step, name and value")
        value = None if point["value"] is None else float(point["value"])
        epoch = point.get("epoch")
        rows.append({"run_id": run_id, "step": int(point["step"]), "name": str(point["name"]),
                     "epoch": None if epoch is None else float(epoch),
                     "value": None if value is not None and math.isnan(value) else value, "created_at": now})
    with writing() as session:
        _owned(session, run_id, owner)
        if rows:
            session.execute(insert(MetricPoint.__table__), rows)


def get_run(run_id: int) -> dict:
    """All of a run's columns plus duration_s (seconds since start, up to now while it is running). A run whose
    worker died is reported (and recorded) as interrupted."""
    _reap_while_reading()
    with reading() as session:
        return _run_dict(_get(session, run_id))


def list_runs(dataset: str | int | None = None) -> list[dict]:
    """Runs newest first, optionally only those trained on the dataset with this name (or id). Runs whose worker
    died are reported (and recorded) as interrupted."""
    _reap_while_reading()
    with reading() as session:
        stmt = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
        if isinstance(dataset, int) and not isinstance(dataset, bool):
            stmt = stmt.where(Run.dataset_id == dataset)
        elif dataset is not None:
            stmt = stmt.where(Run.dataset_name == dataset)
        return [_run_dict(run) for run in session.scalars(stmt)]


def metric_frame(run_ids: list[int] | int) -> pd.DataFrame:
    """Metric points of one or more runs as DataFrame(run_id, step, epoch, name, value, created_at)."""
    ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
    with reading() as session:
        rows = session.execute(select(*(getattr(MetricPoint, c) for c in METRIC_COLUMNS))
                               .where(MetricPoint.run_id.in_(ids))
                               .order_by(MetricPoint.run_id, MetricPoint.name, MetricPoint.step, MetricPoint.id)).all()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=METRIC_COLUMNS)
    frame["value"] = frame["value"].astype(float)  # NULL -> NaN
    frame["epoch"] = frame["epoch"].astype(float)
    return frame


def delete_run(run_id: int, by: str | None = None) -> None:
    """Delete a finished run and its metric points, and its model folder when that lies inside runs_dir().
    A queued or running run is refused: cancel it first."""
    reap_dead_runs()
    with writing() as session:
        run = _get(session, run_id, for_update=True)
        if run.status in ACTIVE_STATUSES:
            raise InvalidEditError(f"run {run_id} is still {run.status}: cancel it first (the Train page's Cancel "
                                   f"button, `python -m core runs cancel {run_id}`, or Ctrl-C where it runs), "
                                   "then delete it once it has stopped")
        artifact_dir, token = run.artifact_dir, run.token
        log_activity(session, by, "deleted run", f"#{run_id} on {run.dataset_name!r} ({run.status})")
        session.execute(delete(MetricPoint).where(MetricPoint.run_id == run_id))
        session.execute(delete(Run).where(Run.id == run_id))
    _remove_partial_folders(run_id, token)
    if not artifact_dir:
        return
    folder, root = Path(artifact_dir).expanduser().resolve(), runs_dir().resolve()
    if folder != root and folder.is_relative_to(root) and folder.exists():
        try:
            shutil.rmtree(folder)
        except OSError as error:
            raise StorageError(f"run {run_id} was deleted but its folder {folder} could not be removed "
                               f"({error}): delete it by hand") from error


def _remove_partial_folders(run_id: int, token: str | None) -> None:
    """Remove the temporary model folders a run's worker left behind (``.run-<id>-<token8>-*``, and the
    ``.run-<id>-XXXXXXXX`` of runs from before model folders carried the token)."""
    legacy = re.compile(rf"^\.run-{run_id}-[a-z0-9_]{{8}}$")
    prefix = partial_folder_prefix(run_id, token) if token else None
    try:
        entries = list(runs_dir().iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() and ((prefix and entry.name.startswith(prefix)) or legacy.match(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed the partial model folder %s of run %s", entry, run_id)


def _why_dead(run, host: str, now: datetime, only_dead: bool) -> str | None:
    """Why the worker of an active run is known to be gone, or None when it may still be alive."""
    if not only_dead:
        return "stopped"
    if run.worker_pid is None:
        return "it has no recorded process"
    if run.worker_host == host and not _process_alive(run.worker_pid):
        return f"its process (pid {run.worker_pid}) is gone"
    if run.status == "running" and run.heartbeat_at is not None and run.worker_pid != os.getpid() \
            and (now - run.heartbeat_at).total_seconds() > STALE_HEARTBEAT_S:
        return (f"its worker (pid {run.worker_pid} on {run.worker_host}) has not been heard from for "
                f"{(now - run.heartbeat_at).total_seconds():.0f} s")
    return None


def reap_dead_runs(reason: str | None = None, only_dead: bool = True) -> int:
    """Mark queued/running runs whose worker died as interrupted and remove their partial model folders; returns
    how many. A run's worker is dead when it runs on this host and its pid is gone, or when it has sent no
    heartbeat for STALE_HEARTBEAT_S (any host). Cheap when nothing died: one read of the active runs."""
    host, now = socket.gethostname(), utcnow()
    with reading() as session:
        active = session.execute(select(Run.id, Run.token, Run.status, Run.worker_host, Run.worker_pid,
                                        Run.heartbeat_at).where(Run.status.in_(ACTIVE_STATUSES))).all()
    dead = {run.id: (run.token, why) for run in active if (why := _why_dead(run, host, now, only_dead))}
    if not dead:
        return 0
    marked = 0
    with writing() as session:
        for run_id, (token, why) in dead.items():
            error = reason or f"interrupted: {why} before the run finished"
            marked += session.execute(update(Run).where(Run.id == run_id, Run.token == token if token else
                                                        Run.token.is_(None), Run.status.in_(ACTIVE_STATUSES))
                                      .values(status="interrupted", error=error, finished_at=now)).rowcount
    for run_id, (token, _) in dead.items():
        _remove_partial_folders(run_id, token)
    if marked:
        log.warning("marked %d run(s) whose worker died as interrupted", marked)
    return marked


def _reap_while_reading() -> None:
    """reap_dead_runs for a reader: a database it cannot write to (read-only, a disk full) must not stop it reading."""
    try:
        reap_dead_runs()
    except (SQLAlchemyError, StorageError, OSError) as error:
        log.warning("could not mark runs whose worker died as interrupted: %s", error)


def mark_interrupted(reason: str = "the process running it stopped", only_dead: bool = False) -> int:
    """Mark queued or running runs as interrupted and remove their partial model folders; returns the count.

    With ``only_dead`` only runs whose worker is gone are marked (see reap_dead_runs): runs owned by a live process
    on this machine, or by a process on another machine that still sends heartbeats, are left alone; runs with no
    recorded owner count as dead.
    """
    return reap_dead_runs(None if only_dead else reason, only_dead=only_dead)
