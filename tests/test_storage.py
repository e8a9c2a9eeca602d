"""Tests for core.storage (datasets, labeling, undo) and the runs API it serves from core.runs_store."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from core import storage
from core.config import runs_dir
from core.storage import (DuplicateNameError, InvalidEditError, NotFoundError, StaleEditError, add_label,
                          add_metric_points, create_dataset, create_run, delete_dataset, delete_run,
                          examples_frame, get_dataset, get_run, label_history, list_datasets, list_runs,
                          load_examples, mark_interrupted, metric_frame, rename_label, set_answer, set_label,
                          set_labels_bulk, undo_last, update_run)

CONTEXT = "SpanBERT was released by Facebook AI in 2019."


@pytest.fixture(autouse=True)
def spanlab_home(database_url, tmp_path):
    """Every test here runs on SQLite and on PostgreSQL (conftest's database_url), with a private SPANLAB_HOME."""
    return tmp_path / "home"


sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def make_sentiment(name="reviews", labels=None):
    rows = [{"text": "great film", "label": "pos", "split": "train"},
            {"text": "awful plot", "label": "neg", "split": "train"},
            {"text": "fine I guess", "label": None, "split": "validation"},
            {"text": "loved it", "label": "pos", "split": "test"}]
    return create_dataset(name, "classification", rows, labels=labels, source="reviews.csv")


def make_qa(name="facts"):
    rows = [{"context": CONTEXT, "question": "Who released SpanBERT?", "answer_text": "Facebook AI",
             "answer_start": CONTEXT.index("Facebook AI"), "qid": "q1"},
            {"context": CONTEXT, "question": "When?", "answer_text": "2019"},  # start looked up
            {"context": CONTEXT, "question": "Who won the cup?", "answer_text": ""},  # unanswerable
            {"context": CONTEXT, "question": "Not yet answered"}]
    return create_dataset(name, "qa", rows)


def example_ids(ref):
    return [row["id"] for row in load_examples(ref)]


# --- datasets -------------------------------------------------------------------------------------

def test_create_list_get_delete_datasets():
    created = make_sentiment()
    assert created["labels"] == ["neg", "pos"]  # sorted distinct labels of the rows
    assert (created["rows"], created["labeled"], created["source"]) == (4, 3, "reviews.csv")
    make_qa()

    listed = {d["name"]: d for d in list_datasets()}
    assert list(listed) == ["facts", "reviews"]
    assert (listed["facts"]["task"], listed["facts"]["rows"], listed["facts"]["labeled"]) == ("qa", 4, 3)
    assert listed["facts"]["labels"] == []
    assert get_dataset("reviews") == get_dataset(created["id"]) == listed["reviews"]

    delete_dataset("reviews")
    assert [d["name"] for d in list_datasets()] == ["facts"]
    with pytest.raises(NotFoundError, match="no dataset 'reviews'.*'facts'"):
        get_dataset("reviews")
    with storage.get_engine().connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM examples")).scalar() == 4


def test_load_examples_fields_order_and_splits():
    make_sentiment()
    rows = load_examples("reviews")
    assert [r["position"] for r in rows] == [0, 1, 2, 3]
    assert set(rows[0]) == {"id", "version", "position", "split", "text", "label", "meta"}
    assert [r["text"] for r in load_examples("reviews", split="train")] == ["great film", "awful plot"]

    make_qa()
    qa = load_examples("facts")
    assert set(qa[0]) == {"id", "version", "position", "split", "context", "question", "answer_text",
                          "answer_start", "qid", "meta"}
    assert qa[1]["answer_start"] == CONTEXT.index("2019")
    assert (qa[2]["answer_text"], qa[2]["answer_start"]) == ("", None)
    assert qa[3]["answer_text"] is None

    frame = examples_frame("facts")
    assert list(frame.columns) == ["id", "version", "position", "split", "context", "question", "answer_text",
                                   "answer_start", "qid", "meta"]
    empty = examples_frame(create_dataset("empty", "classification", [], labels=["a"])["id"])
    assert list(empty.columns) == ["id", "version", "position", "split", "text", "label", "meta"] and empty.empty


def test_create_dataset_refuses_bad_input_naming_the_row():
    make_sentiment()
    with pytest.raises(DuplicateNameError, match="already exists"):
        make_sentiment()
    with pytest.raises(InvalidEditError, match="non-empty name"):
        create_dataset("  ", "classification", [{"text": "x"}])
    with pytest.raises(InvalidEditError, match="unknown task 'translation'"):
        create_dataset("n", "translation", [])
    with pytest.raises(InvalidEditError, match="row 2: 'text' is empty"):
        create_dataset("n", "classification", [{"text": "ok"}, {"text": "  "}])
    with pytest.raises(InvalidEditError, match="row 1: label 'meh' is not in the label set"):
        create_dataset("n", "classification", [{"text": "x", "label": "meh"}], labels=["pos", "neg"])
    with pytest.raises(InvalidEditError, match="row 1: split 'holdout'"):
        create_dataset("n", "classification", [{"text": "x", "split": "holdout"}])
    with pytest.raises(InvalidEditError, match="row 1: the answer 'AI' is not at position 0"):
        create_dataset("n", "qa", [{"context": CONTEXT, "question": "q", "answer_text": "AI", "answer_start": 0}])
    with pytest.raises(InvalidEditError, match="does not occur in the context"):
        create_dataset("n", "qa", [{"context": CONTEXT, "question": "q", "answer_text": "Google"}])
    assert [d["name"] for d in list_datasets()] == ["reviews"]  # nothing half-created


def test_given_label_set_keeps_its_order_and_csv_numbers_become_strings():
    made = make_sentiment(labels=["pos", "neg", "neutral"])
    assert made["labels"] == ["pos", "neg", "neutral"]
    numeric = create_dataset("numbers", "classification", [{"text": "a", "label": 1.0}, {"text": "b", "label": 0},
                                                             {"text": "c", "label": float("nan"), "split": "dev"}])
    assert numeric["labels"] == ["0", "1"]
    assert [(r["label"], r["split"]) for r in load_examples("numbers")] == \
        [("1", None), ("0", None), (None, "validation")]


def test_bulk_insert_of_100k_classification_rows():
    rows = [{"text": f"review number {i}", "label": ("pos", "neg", None)[i % 3],
             "split": ("train", "validation")[i % 2]} for i in range(100_000)]
    made = create_dataset("big", "classification", rows)
    assert (made["rows"], made["labeled"], made["labels"]) == (100_000, 66_667, ["neg", "pos"])
    loaded = load_examples("big")
    assert len(loaded) == 100_000
    assert loaded[-1]["position"] == 99_999 and loaded[-1]["text"] == "review number 99999"
    assert len(load_examples("big", split="validation")) == 50_000
    assert get_dataset("big")["labeled"] == 66_667


# --- labeling -------------------------------------------------------------------------------------

def test_set_label_with_stale_version_is_refused_and_keeps_the_saved_value():
    make_sentiment()
    first = load_examples("reviews")[0]
    assert set_label(first["id"], "neg", expected_version=1) == 2
    with pytest.raises(StaleEditError, match=r"changed elsewhere \(version 2, you had 1\): reload") as caught:
        set_label(first["id"], "pos", expected_version=1)
    assert (caught.value.current_version, caught.value.expected_version) == (2, 1)
    saved = load_examples("reviews")[0]
    assert (saved["label"], saved["version"]) == ("neg", 2)
    assert set_label(first["id"], "neg", expected_version=2) == 2  # same value: no new version, no event
    assert set_label(first["id"], None, expected_version=2) == 3  # clearing is allowed
    assert len(label_history("reviews")) == 2


def test_unknown_label_and_wrong_task_are_refused():
    make_sentiment()
    make_qa()
    first = load_examples("reviews")[0]
    with pytest.raises(InvalidEditError, match="unknown label 'meh'.*add the label first"):
        set_label(first["id"], "meh", expected_version=1)
    assert load_examples("reviews")[0]["label"] == "pos"
    with pytest.raises(InvalidEditError, match="qa dataset"):
        set_label(load_examples("facts")[0]["id"], "pos", expected_version=1)
    with pytest.raises(NotFoundError, match="no example with id 999"):
        set_label(999, "pos", expected_version=1)


def test_set_answer_validation():
    make_qa()
    make_sentiment()
    unanswered = load_examples("facts")[3]
    with pytest.raises(InvalidEditError, match="not at position 3 of the context \\(found 'nBER' there\\)"):
        set_answer(unanswered["id"], "BERT", 3, expected_version=1)
    with pytest.raises(InvalidEditError, match="give answer_start"):
        set_answer(unanswered["id"], "BERT", None, expected_version=1)
    start = CONTEXT.index("SpanBERT")
    assert set_answer(unanswered["id"], "SpanBERT", start, expected_version=1) == 2
    assert set_answer(unanswered["id"], "", 5, expected_version=2) == 3  # unanswerable: start dropped
    saved = load_examples("facts")[3]
    assert (saved["answer_text"], saved["answer_start"], saved["version"]) == ("", None, 3)
    with pytest.raises(StaleEditError):
        set_answer(unanswered["id"], "2019", CONTEXT.index("2019"), expected_version=2)
    with pytest.raises(InvalidEditError, match="classification dataset"):
        set_answer(load_examples("reviews")[0]["id"], "great", 0, expected_version=1)


def test_set_labels_bulk_counts_changes_and_logs_events():
    make_sentiment()
    ids = example_ids("reviews")
    assert set_labels_bulk(ids, "pos") == 2  # rows 0 and 3 are already "pos"
    assert [r["label"] for r in load_examples("reviews")] == ["pos"] * 4
    assert [r["version"] for r in load_examples("reviews")] == [1, 2, 2, 1]
    assert {e["actor"] for e in label_history("reviews")} == {"bulk"}
    with pytest.raises(InvalidEditError, match="unknown label"):
        set_labels_bulk(ids, "meh")
    with pytest.raises(NotFoundError, match="1 example id"):
        set_labels_bulk([ids[0], 12345], "neg")
    assert load_examples("reviews")[0]["label"] == "pos"


def test_add_rename_and_merge_labels():
    make_sentiment()
    assert add_label("reviews", "neutral") == ["neg", "pos", "neutral"]
    with pytest.raises(DuplicateNameError):
        add_label("reviews", "pos")
    assert rename_label("reviews", "pos", "positive") == 2
    assert get_dataset("reviews")["labels"] == ["neg", "positive", "neutral"]
    assert [r["label"] for r in load_examples("reviews")] == ["positive", "neg", None, "positive"]
    assert [e["actor"] for e in label_history("reviews")] == ["rename", "rename"]

    assert rename_label("reviews", "neg", "positive") == 1  # merge into an existing label
    assert get_dataset("reviews")["labels"] == ["positive", "neutral"]
    assert [r["label"] for r in load_examples("reviews")] == ["positive", "positive", None, "positive"]
    with pytest.raises(InvalidEditError, match="has no label 'neg'"):
        rename_label("reviews", "neg", "x")


def test_undo_label_edit_rename_and_answer():
    make_sentiment()
    assert undo_last("reviews") is None
    ids = example_ids("reviews")
    set_label(ids[2], "neg", expected_version=1)
    set_label(ids[0], "neg", expected_version=1)

    undone = undo_last("reviews")
    assert (undone["example_id"], undone["field"], undone["restored"]) == (ids[0], "label", "pos")
    assert load_examples("reviews")[0]["version"] == 3  # undo is an edit too
    undone = undo_last("reviews")  # the undo itself is not undone: the earlier edit is
    assert (undone["example_id"], undone["restored"]) == (ids[2], None)
    assert undo_last("reviews") is None
    assert [r["label"] for r in load_examples("reviews")] == ["pos", "neg", None, "pos"]
    history = label_history("reviews")
    assert [e["actor"] for e in history] == ["undo", "undo", "user", "user"] and all(e["undone"] for e in history)

    rename_label("reviews", "neg", "pos")  # merge: "neg" leaves the label set
    assert get_dataset("reviews")["labels"] == ["pos"]
    undone = undo_last("reviews")
    assert (undone["example_id"], undone["restored"]) == (ids[1], "neg")
    assert get_dataset("reviews")["labels"] == ["pos", "neg"]  # restored label added back
    assert load_examples("reviews")[1]["label"] == "neg"

    # a bulk assignment is one action: one undo reverts every row it changed, and only those
    before = [r["label"] for r in load_examples("reviews")]
    set_label(ids[2], "pos", expected_version=load_examples("reviews")[2]["version"])
    assert set_labels_bulk(ids, "neg") == 3
    undone = undo_last("reviews")
    assert undone["count"] == 3
    assert [r["label"] for r in load_examples("reviews")] == [*before[:2], "pos", before[3]]
    assert undo_last("reviews")["example_id"] == ids[2]  # then the single edit before it

    make_qa()
    qa = load_examples("facts")[0]
    set_answer(qa["id"], "2019", CONTEXT.index("2019"), expected_version=1)
    undone = undo_last("facts")
    assert undone["restored"] == {"answer_text": "Facebook AI", "answer_start": CONTEXT.index("Facebook AI")}
    saved = load_examples("facts")[0]
    assert (saved["answer_text"], saved["answer_start"], saved["version"]) == \
        ("Facebook AI", CONTEXT.index("Facebook AI"), 3)


# --- runs -----------------------------------------------------------------------------------------

def test_runs_crud_and_metric_points():
    made = make_sentiment()
    make_qa()
    first = create_run("reviews", "classification", "tiny-bert", {"lr": 5e-5, "epochs": 2}, eval_dataset="facts")
    second = create_run(made["id"], "classification", "tiny-bert", {"lr": 1e-4})
    qa_run = create_run("facts", "qa", "tiny-bert", {})
    run = get_run(first)
    assert (run["status"], run["dataset_name"], run["eval_dataset_name"], run["params"]) == \
        ("queued", "reviews", "facts", {"lr": 5e-5, "epochs": 2})
    assert run["duration_s"] is None and run["train_samples_per_second"] is None

    started = run["created_at"]
    update_run(first, status="completed", started_at=started, finished_at=started + timedelta(seconds=90),
               metrics={"eval/accuracy": 0.75}, best_metric_name="eval/accuracy", best_metric=0.75,
               step=10, total_steps=10, device="cpu", precision="fp32", train_samples_per_second=12.5)
    run = get_run(first)
    assert (run["status"], run["metrics"], run["duration_s"], run["train_samples_per_second"]) == \
        ("completed", {"eval/accuracy": 0.75}, 90.0, 12.5)
    with pytest.raises(InvalidEditError, match=r"no column\(s\) \['colour'\] to set"):
        update_run(first, colour="red")
    with pytest.raises(InvalidEditError, match="unknown run status"):
        update_run(first, status="done")
    with pytest.raises(NotFoundError, match="no run with id 999"):
        update_run(999, step=1)

    assert [r["id"] for r in list_runs()] == [qa_run, second, first]
    assert [r["id"] for r in list_runs("reviews")] == [second, first]

    add_metric_points(first, [{"step": s, "epoch": s / 5, "name": "train/loss", "value": 1 / s} for s in (1, 2)])
    add_metric_points(first, [{"step": 2, "epoch": 0.4, "name": "eval/accuracy", "value": 0.5}])
    add_metric_points(second, [{"step": 1, "name": "train/loss", "value": float("nan")}])
    frame = metric_frame([first, second])
    assert list(frame.columns) == ["run_id", "step", "epoch", "name", "value", "created_at"]
    assert len(frame) == 4 and frame["value"].isna().sum() == 1
    assert frame[frame.run_id == first].set_index(["name", "step"])["value"].to_dict() == \
        {("eval/accuracy", 2): 0.5, ("train/loss", 1): 1.0, ("train/loss", 2): 0.5}
    assert list(metric_frame(qa_run).columns) == list(frame.columns) and metric_frame(qa_run).empty
    with pytest.raises(InvalidEditError, match="metric point 1 lacks \\['value'\\]"):
        add_metric_points(first, [{"step": 3, "name": "train/loss"}])

    update_run(second, status="failed")  # a dataset an active run uses is not deleted (tests/test_people.py)
    delete_dataset("reviews")  # run history survives the dataset
    kept = get_run(first)
    assert (kept["dataset_id"], kept["dataset_name"]) == (None, "reviews")


def test_delete_run_removes_its_folder_only_inside_runs_dir(tmp_path):
    make_sentiment()
    inside = runs_dir() / "run-1"
    (inside / "model").mkdir(parents=True)
    (inside / "model" / "config.json").write_text("{}")
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    run_in, run_out = (create_run("reviews", "classification", "m", {}) for _ in range(2))
    update_run(run_in, artifact_dir=str(inside), status="completed")
    update_run(run_out, artifact_dir=str(outside), status="completed")
    add_metric_points(run_in, [{"step": 1, "name": "train/loss", "value": 0.3}])

    delete_run(run_in)
    assert not inside.exists() and runs_dir().exists()
    with pytest.raises(NotFoundError):
        get_run(run_in)
    assert metric_frame(run_in).empty
    delete_run(run_out)
    assert outside.exists()  # never delete folders SpanLab does not own
    with pytest.raises(NotFoundError):
        delete_run(run_out)


def test_mark_interrupted():
    make_sentiment()
    queued, running, done = (create_run("reviews", "classification", "m", {}) for _ in range(3))
    update_run(running, status="running", started_at=get_run(running)["created_at"])
    update_run(done, status="completed")
    assert mark_interrupted("the app restarted") == 2
    for run_id in (queued, running):
        run = get_run(run_id)
        assert (run["status"], run["error"]) == ("interrupted", "the app restarted")
        assert run["finished_at"] is not None
    assert get_run(done)["status"] == "completed"
    assert mark_interrupted() == 0


def test_mark_interrupted_only_dead_spares_runs_of_live_processes():
    make_sentiment()
    mine, orphan, remote, unowned = (create_run("reviews", "classification", "m", {}) for _ in range(4))
    assert get_run(mine)["worker_pid"] == os.getpid()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    update_run(orphan, status="running", worker_pid=dead_pid)
    update_run(remote, status="running", worker_host="another-machine", worker_pid=dead_pid)
    update_run(unowned, worker_host=None, worker_pid=None)
    assert mark_interrupted(only_dead=True) == 2
    assert [get_run(r)["status"] for r in (mine, orphan, remote, unowned)] == \
        ["queued", "interrupted", "running", "interrupted"]


# --- engine ---------------------------------------------------------------------------------------

@sqlite_only
def test_sqlite_uses_wal_and_foreign_keys(spanlab_home):
    engine = storage.get_engine()
    assert str(spanlab_home) in str(engine.url)
    assert storage.get_engine() is engine  # cached per URL
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


@sqlite_only
def test_engine_follows_spanlab_home(tmp_path, monkeypatch):
    make_sentiment()
    monkeypatch.setenv("SPANLAB_HOME", str(tmp_path / "other"))
    assert list_datasets() == []
    make_sentiment()  # same name, different database


@sqlite_only
def test_in_memory_database_url_works(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    make_sentiment()
    assert get_dataset("reviews")["rows"] == 4


def test_two_threads_write_concurrently_without_lock_errors():
    make_sentiment()
    run_id = create_run("reviews", "classification", "m", {})
    ids = example_ids("reviews")
    errors: list[BaseException] = []
    rounds = 150

    def log_metrics():
        try:
            for step in range(rounds):
                add_metric_points(run_id, [{"step": step, "epoch": step / rounds, "name": "train/loss", "value": 1.0}])
                update_run(run_id, step=step)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def edit_labels():
        try:
            versions = {row["id"]: row["version"] for row in load_examples("reviews")}
            for i in range(rounds):
                example_id = ids[i % len(ids)]
                versions[example_id] = set_label(example_id, ("pos", "neg")[i % 2], versions[example_id])
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=log_metrics), threading.Thread(target=edit_labels)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(metric_frame(run_id)) == rounds and get_run(run_id)["step"] == rounds - 1
    assert len(label_history("reviews", limit=1000)) > 0


# --- runs: ids never reused, active runs kept, each worker writes only to its own run (issue 12, findings 4 and 6) ----

def test_run_ids_are_never_reused_after_deleting_the_newest_run():
    make_sentiment()
    first = create_run("reviews", "classification", "m", {})
    newest = create_run("reviews", "classification", "m", {})
    update_run(newest, status="completed")
    delete_run(newest)
    again = create_run("reviews", "classification", "m", {})
    assert again > newest > first  # SQLite without AUTOINCREMENT handed out `newest` again


def test_an_active_run_cannot_be_deleted_until_it_is_cancelled():
    make_sentiment()
    queued, running = (create_run("reviews", "classification", "m", {}) for _ in range(2))
    update_run(running, status="running")
    for run_id, status in ((queued, "queued"), (running, "running")):
        with pytest.raises(InvalidEditError, match=rf"run {run_id} is still {status}: cancel it first"):
            delete_run(run_id)
        assert get_run(run_id)["status"] == status
    assert storage.request_cancel(running) and get_run(running)["cancel_requested"]
    update_run(running, status="cancelled")
    assert not storage.request_cancel(running)  # nothing to cancel any more
    delete_run(running)
    with pytest.raises(NotFoundError):
        get_run(running)


def test_a_worker_writes_only_to_the_run_it_owns():
    make_sentiment()
    mine = create_run("reviews", "classification", "m", {})
    token = get_run(mine)["token"]
    other = create_run("reviews", "classification", "m", {})
    assert len(token) == 32 and get_run(other)["token"] != token
    assert storage.claim_run(mine, token) and get_run(mine)["heartbeat_at"] is not None
    add_metric_points(mine, [{"step": 1, "name": "train/loss", "value": 0.5}], owner=token)
    update_run(mine, owner=token, step=1)
    with pytest.raises(storage.RunGoneError):  # another run's token: never written
        update_run(other, owner=token, status="completed", artifact_dir="/elsewhere")
    with pytest.raises(storage.RunGoneError):
        add_metric_points(other, [{"step": 1, "name": "train/loss", "value": 9.0}], owner=token)
    assert (get_run(other)["status"], get_run(other)["artifact_dir"], len(metric_frame(other))) == ("queued", None, 0)
    with pytest.raises(InvalidEditError, match=r"\['token'\]"):
        update_run(other, token=token)  # ownership cannot be taken over through update_run

    update_run(mine, status="cancelled")  # stopped; then deleted under its (still live) worker's feet
    delete_run(mine)
    with pytest.raises(storage.RunGoneError):
        update_run(mine, owner=token, status="completed")
    with pytest.raises(storage.RunGoneError):
        storage.heartbeat(mine, token)


def test_cancel_requested_before_start_is_honoured_by_claim_run():
    make_sentiment()
    run_id = create_run("reviews", "classification", "m", {})
    assert storage.request_cancel(run_id)
    assert storage.claim_run(run_id, get_run(run_id)["token"]) is False
    assert (get_run(run_id)["status"], get_run(run_id)["error"]) == ("cancelled", "cancelled before it started")
    running = create_run("reviews", "classification", "m", {})
    token = get_run(running)["token"]
    assert storage.claim_run(running, token) and storage.heartbeat(running, token) is False
    storage.request_cancel(running)
    assert storage.heartbeat(running, token) is True  # the worker learns it at its next heartbeat


def _dead_pid() -> int:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(gone.stdout)


def test_reading_runs_marks_dead_workers_interrupted_and_removes_their_partial_folders():
    make_sentiment()
    dead, stale, alive, remote_fresh = (create_run("reviews", "classification", "m", {}) for _ in range(4))
    now = get_run(dead)["created_at"]
    update_run(dead, status="running", worker_pid=_dead_pid())
    update_run(stale, status="running", worker_host="another-machine", worker_pid=4321)
    update_run(remote_fresh, status="running", worker_host="another-machine", worker_pid=4321)
    engine = storage.get_engine()
    with engine.begin() as connection:  # another machine's worker: last heard of long ago vs. just now
        connection.execute(text("UPDATE runs SET heartbeat_at = :t WHERE id = :id"),
                           [{"t": (now - timedelta(hours=1)).replace(tzinfo=None), "id": stale},
                            {"t": now.replace(tzinfo=None), "id": remote_fresh}])
    with engine.connect() as connection:
        token = connection.execute(text("SELECT token FROM runs WHERE id = :id"), {"id": dead}).scalar()
    partial = runs_dir() / f"{storage.partial_folder_prefix(dead, token)}abc123"
    (partial / "model").mkdir(parents=True)
    (partial / "model" / "model.safetensors").write_bytes(b"\0" * 1024)
    legacy = runs_dir() / f".run-{dead}-k2j4x_9q"  # the partial folder name before folders carried the token
    legacy.mkdir()
    kept = runs_dir() / f"{storage.partial_folder_prefix(alive, get_run(alive)['token'])}zzz"
    kept.mkdir()

    by_id = {run["id"]: run for run in list_runs()}  # reading the runs is enough
    assert by_id[dead]["status"] == "interrupted" and "pid" in by_id[dead]["error"]
    assert by_id[dead]["finished_at"] is not None
    assert by_id[stale]["status"] == "interrupted" and "not been heard from" in by_id[stale]["error"]
    assert (by_id[alive]["status"], by_id[remote_fresh]["status"]) == ("queued", "running")
    assert not partial.exists() and not legacy.exists() and kept.exists()


# --- imports in short batches, writers that wait instead of failing (issue 12, finding 7) --------------------------

def big_rows(n: int) -> list[dict]:
    return [{"text": f"review number {i}", "label": ("pos", "neg")[i % 2]} for i in range(n)]


def test_a_big_import_writes_in_short_batches_invisible_until_done_while_others_write(monkeypatch):
    make_sentiment("other")
    monkeypatch.setattr(storage, "IMPORT_BATCH_ROWS", 100)
    real_writing, seen, errors = storage.writing, [], []

    @contextlib.contextmanager
    def watched_writing():
        # Between two of the import's transactions: nobody sees a half dataset, and another writer gets in at once
        # (one transaction for the whole import would keep it waiting until the import ends).
        seen.append([d["name"] for d in list_datasets()])
        writer = threading.Thread(target=lambda: _record_errors(errors, create_run, "other", "classification", "m", {}))
        writer.start()
        writer.join(timeout=60)
        assert not writer.is_alive()
        with real_writing() as session:
            yield session

    monkeypatch.setattr(storage, "writing", watched_writing)
    created = create_dataset("big", "classification", big_rows(1000))
    monkeypatch.setattr(storage, "writing", real_writing)
    assert errors == []
    assert len(seen) >= 12  # the staging row, 10 batches of 100 rows, the final rename
    assert all(names == ["other"] for names in seen)
    assert created["rows"] == 1000 and get_dataset("big")["rows"] == 1000
    assert [e["text"] for e in load_examples("big")][:3] == ["review number 0", "review number 1", "review number 2"]
    assert [e["position"] for e in load_examples("big")] == list(range(1000))
    assert len(list_runs()) == len(seen)  # every concurrent writer got its turn


def _record_errors(errors, function, *args):
    try:
        function(*args)
    except BaseException as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def test_an_import_failing_midway_leaves_nothing_and_frees_the_name(monkeypatch):
    monkeypatch.setattr(storage, "IMPORT_BATCH_ROWS", 100)
    real_writing, calls = storage.writing, []

    @contextlib.contextmanager
    def failing_writing():
        calls.append(1)
        if len(calls) == 5:  # the 4th batch
            raise OSError("disk full")
        with real_writing() as session:
            yield session

    monkeypatch.setattr(storage, "writing", failing_writing)
    with pytest.raises(OSError, match="disk full"):
        create_dataset("big", "classification", big_rows(1000))
    monkeypatch.setattr(storage, "writing", real_writing)
    assert list_datasets() == []
    with storage.get_engine().connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM examples")).scalar() == 0
        assert connection.execute(text("SELECT COUNT(*) FROM datasets")).scalar() == 0
    assert create_dataset("big", "classification", big_rows(10))["rows"] == 10


def test_the_rows_of_an_import_whose_process_was_killed_are_removed():
    make_sentiment()
    dead_pid = _dead_pid()
    engine = storage.get_engine()
    with engine.begin() as connection:  # what a process killed between two batches leaves behind
        staged = connection.execute(text(
            "INSERT INTO datasets (name, task, labels, created_at, import_owner) VALUES "
            "('.importing-x', 'classification', '[]', :now, :owner) RETURNING id"),
            {"now": storage.utcnow().replace(tzinfo=None), "owner": f"{socket.gethostname()}:{dead_pid}:abcd1234"}
        ).scalar()
        connection.execute(text("INSERT INTO examples (dataset_id, position, text, version, updated_at) "
                                "VALUES (:d, :p, 'x', 1, :now)"),
                           [{"d": staged, "p": p, "now": storage.utcnow().replace(tzinfo=None)} for p in range(50)])
    assert [d["name"] for d in list_datasets()] == ["reviews"]  # invisible
    with pytest.raises(NotFoundError):
        get_dataset(staged)
    assert storage.remove_abandoned_imports() == 1
    with engine.connect() as connection:
        left = connection.execute(text("SELECT COUNT(*) FROM examples WHERE dataset_id = :d"), {"d": staged}).scalar()
        assert left == 0
        assert connection.execute(text("SELECT COUNT(*) FROM datasets")).scalar() == 1


@sqlite_only
def test_a_writer_waits_for_a_lock_held_longer_than_the_busy_timeout(monkeypatch, caplog, spanlab_home):
    """A run started while an import holds SQLite's write lock for longer than the busy timeout used to fail with
    'database is locked'; now the writer keeps queueing (with a warning in the log) and succeeds."""
    import sqlite3
    make_sentiment()
    storage.dispose_engines()
    monkeypatch.setattr(storage, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(spanlab_home / "spanlab.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    result, errors = [], []
    writer = threading.Thread(target=lambda: _record_errors(errors, lambda: result.append(
        create_run("reviews", "classification", "m", {}))))
    with caplog.at_level("WARNING", logger="core.storage"):
        writer.start()
        deadline = time.monotonic() + 60
        while not any("still waiting for the write lock" in r.getMessage() for r in caplog.records):
            assert writer.is_alive() and time.monotonic() < deadline, errors
            time.sleep(0.05)
        assert writer.is_alive() and result == []  # locked out past its busy timeout, still waiting
        holder.execute("COMMIT")
        writer.join(timeout=60)
    holder.close()
    assert errors == [] and len(result) == 1 and get_run(result[0])["status"] == "queued"


@sqlite_only
def test_runs_can_still_be_read_when_the_database_cannot_be_written(spanlab_home, monkeypatch, caplog):
    make_sentiment()
    run_id = create_run("reviews", "classification", "m", {})
    update_run(run_id, status="running", worker_pid=_dead_pid())
    storage.dispose_engines()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///file:{spanlab_home / 'spanlab.db'}?mode=ro&uri=true")
    with caplog.at_level("WARNING", logger="core.runs_store"):
        assert [run["status"] for run in list_runs()] == ["running"]  # cannot be marked: still readable
    assert "could not mark runs whose worker died" in caplog.text
