"""Who did what (core): every change attributed, undo reverts only the asking person's own change, a dataset in
use by an active run cannot be deleted, and an activity log keeps imports, deletions, run starts and cancels."""
from __future__ import annotations

import pytest

from core import storage


@pytest.fixture
def tickets(spanlab_home):
    storage.create_dataset("tickets", "classification",
                           [{"text": f"ticket {i}", "label": None} for i in range(4)], labels=["bug", "question"],
                           created_by="Ann")
    return storage.load_examples("tickets")


def test_undo_reverts_only_the_asking_persons_own_last_change(tickets):
    first, second = tickets[0], tickets[1]
    storage.set_label(first["id"], "bug", first["version"], person="Bea")
    storage.set_label(second["id"], "question", second["version"], person="Cal")
    preview = storage.last_undoable("tickets", person="Cal")
    assert (preview["position"], preview["replaced"], preview["restored"], preview["person"]) == (1, "question", None,
                                                                                                   "Cal")
    undone = storage.undo_last("tickets", person="Cal")
    assert undone["example_id"] == second["id"]
    labels = [example["label"] for example in storage.load_examples("tickets")]
    assert labels[:2] == ["bug", None]  # Bea's label kept, Cal's reverted
    assert storage.undo_last("tickets", person="Cal") is None  # Cal has nothing left to undo
    assert storage.last_undoable("tickets", person="Bea")["replaced"] == "bug"
    history = storage.label_history("tickets")
    assert [(event["actor"], event["person"]) for event in history] == [("undo", "Cal"), ("user", "Cal"),
                                                                        ("user", "Bea")]


def test_undo_refuses_a_change_someone_else_has_overwritten(tickets):
    row = tickets[2]
    version = storage.set_label(row["id"], "bug", row["version"], person="Bea")
    storage.set_label(row["id"], "question", version, person="Cal")
    with pytest.raises(storage.InvalidEditError, match=r"row 3 was changed again by Cal"):
        storage.undo_last("tickets", person="Bea")
    assert storage.load_examples("tickets")[2]["label"] == "question"  # nothing reverted
    storage.undo_last("tickets", person="Cal")  # once Cal's change is undone, Bea's can be
    assert storage.undo_last("tickets", person="Bea")["restored"] is None
    assert storage.load_examples("tickets")[2]["label"] is None


def test_bulk_and_rename_are_attributed_and_undone_as_one(tickets):
    storage.set_labels_bulk([row["id"] for row in tickets], "bug", person="Bea")
    storage.rename_label("tickets", "bug", "defect", person="Cal")
    assert {event["person"] for event in storage.label_history("tickets") if event["actor"] == "rename"} == {"Cal"}
    assert storage.last_undoable("tickets", person="Bea")["count"] == 4
    with pytest.raises(storage.InvalidEditError, match="changed again by Cal"):
        storage.undo_last("tickets", person="Bea")
    assert storage.undo_last("tickets", person="Cal")["count"] == 4
    assert storage.undo_last("tickets", person="Bea")["count"] == 4
    assert [row["label"] for row in storage.load_examples("tickets")] == [None] * 4


def test_dataset_used_by_an_active_run_is_not_deleted(tickets):
    storage.create_dataset("holdout", "classification", [{"text": "x", "label": "bug"}], created_by="Ann")
    run_id = storage.create_run("tickets", "classification", "tiny", {}, eval_dataset="holdout", created_by="Dan")
    assert storage.get_run(run_id)["created_by"] == "Dan"
    for name in ("tickets", "holdout"):
        with pytest.raises(storage.DatasetInUseError, match=rf"'{name}' is not deleted: run #{run_id} \(queued, "
                                                             r"started by Dan\) uses it"):
            storage.delete_dataset(name, by="Eve")
    assert storage.get_dataset("tickets")["rows"] == 4
    storage.update_run(run_id, status="running")
    with pytest.raises(storage.DatasetInUseError):
        storage.delete_dataset("tickets", by="Eve")
    storage.record_cancel(run_id, by="Eve")
    storage.update_run(run_id, status="cancelled")
    assert storage.get_run(run_id)["cancelled_by"] == "Eve"
    storage.delete_dataset("tickets", by="Eve")
    assert [(line["person"], line["action"]) for line in storage.activity()] == [
        ("Eve", "deleted dataset"), ("Eve", "cancelled run"), ("Dan", "started run"), ("Ann", "imported dataset"),
        ("Ann", "imported dataset")]
    assert storage.get_dataset("holdout")["created_by"] == "Ann"


def test_nobody_named_is_recorded_as_unknown(spanlab_home):
    storage.create_dataset("plain", "classification", [{"text": "a", "label": None}], labels=["x"])
    row = storage.load_examples("plain")[0]
    storage.set_label(row["id"], "x", row["version"], person="   ")
    assert storage.get_dataset("plain")["created_by"] == storage.UNKNOWN_PERSON
    assert storage.label_history("plain")[0]["person"] == storage.UNKNOWN_PERSON
    assert storage.undo_last("plain", person="") is not None  # the unnamed person's own change
