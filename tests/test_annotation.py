"""core.annotation: progress, ordering, grid filters and saving (stale rows refused), QA answer occurrences."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from core import annotation, storage


def _examples(labels: list[str | None]) -> list[dict]:
    return [{"id": 10 + i, "version": 1, "position": i, "text": f"text {i}", "label": label}
            for i, label in enumerate(labels)]


# --------------------------------------------------------------------------------------------------- progress

def test_progress_counts_labels_and_qa_decisions():
    assert annotation.progress(_examples(["a", None, "b"]), "classification") == (2, 3)
    qa = [{"answer_text": None}, {"answer_text": ""}, {"answer_text": "x"}]
    assert annotation.progress(qa, "qa") == (2, 3)  # "" (no answer) is a decision
    assert annotation.progress_text(37, 120) == "37 of 120 labeled"
    assert annotation.progress_text(1, 2, "qa") == "1 of 2 answered"


def test_next_unlabeled_wraps_and_skips_the_current_example():
    ordered = _examples(["a", None, "b", None])
    assert annotation.first_to_show(ordered, "classification") == 11
    assert annotation.next_unlabeled(ordered, 11, "classification") == 13
    assert annotation.next_unlabeled(ordered, 13, "classification") == 11  # wraps around
    assert annotation.next_unlabeled(_examples(["a", None]), 11, "classification") is None  # only itself left
    assert annotation.first_to_show(_examples(["a", "b"]), "classification") == 10  # all labeled: the first
    assert annotation.step(ordered, 10, -1) == 10 and annotation.step(ordered, 13, +1) == 13
    assert annotation.step(ordered, 11, +1) == 12


def test_least_confident_first_ordering():
    examples = _examples([None, None, None, None])
    suggestions = {10: {"label": "a", "score": 0.9}, 11: {"label": "a", "score": 0.4},
                   13: {"label": "b", "score": 0.4}}  # 12 has no suggestion
    ordered = annotation.order_examples(examples, suggestions, annotation.ORDER_LEAST_CONFIDENT)
    assert [example["id"] for example in ordered] == [11, 13, 10, 12]  # ties keep import order, unscored last
    assert [e["id"] for e in annotation.order_examples(examples[::-1], suggestions)] == [10, 11, 12, 13]
    with pytest.raises(ValueError, match="unknown order"):
        annotation.order_examples(examples, suggestions, "random")

    frame = annotation.attach_suggestions(pd.DataFrame(examples), suggestions)
    assert frame["suggestion"].isna().tolist() == [False, False, True, False]
    assert frame.loc[frame["id"] == 13, "suggestion"].item() == "b"
    assert annotation.least_confident_first(frame)["id"].tolist() == [11, 13, 10, 12]


# --------------------------------------------------------------------------------------------------- grid

def test_filters_unlabeled_label_and_unicode_search():
    frame = pd.DataFrame({"id": [1, 2, 3, 4], "position": [0, 1, 2, 3],
                          "text": ["Great CAFÉ", "Straße closed", "cafe\u0301 au lait", "nothing"],
                          "label": ["pos", None, "neg", "pos"]})
    assert annotation.filter_examples(frame, unlabeled_only=True)["id"].tolist() == [2]
    assert annotation.filter_examples(frame, label="pos")["id"].tolist() == [1, 4]
    # casefold (ß ~ ss) and NFC (e + combining accent == é)
    assert annotation.filter_examples(frame, search="café")["id"].tolist() == [1, 3]
    assert annotation.filter_examples(frame, search="STRASSE")["id"].tolist() == [2]
    assert annotation.filter_examples(frame, search="(")["id"].tolist() == []  # plain text, not a regex
    assert annotation.filter_examples(frame, label="pos", search="great")["id"].tolist() == [1]
    assert len(annotation.filter_examples(frame)) == 4


def test_apply_grid_edits_saves_changes_and_refuses_stale_rows(spanlab_home):
    storage.create_dataset("d", "classification",
                           [{"text": "one", "label": "a"}, {"text": "two"}, {"text": "three", "label": "b"}])
    original = storage.examples_frame("d")
    edited = original.copy()
    edited.loc[0, "label"] = "b"      # change
    edited.loc[1, "label"] = "a"      # label an unlabeled row, but it goes stale below
    edited.loc[2, "label"] = None     # clear
    assert len(annotation.grid_changes(original, edited)) == 3
    storage.set_label(int(original.loc[1, "id"]), "b", 1, actor="user")  # another tab got there first

    result = annotation.apply_grid_edits(original, edited)
    assert result.saved == 2
    assert len(result.refused) == 1 and result.refused[0].startswith("Row 2 ('two') was changed elsewhere")
    saved, refused = result  # unpacks like a tuple
    labels = [example["label"] for example in storage.load_examples("d")]
    assert labels == ["b", "b", None]  # the other tab's label survived
    assert storage.label_history("d")[0]["actor"] == "user"

    # nothing changed -> nothing saved; an unknown label is refused with the row named
    fresh = storage.examples_frame("d")
    assert annotation.apply_grid_edits(fresh, fresh.copy()) == (0, [])
    bad = fresh.copy()
    bad.loc[0, "label"] = "zzz"
    outcome = annotation.apply_grid_edits(fresh, bad)
    assert outcome.saved == 0 and "Row 1" in outcome.refused[0] and "unknown label" in outcome.refused[0]


def test_grid_changes_matches_rows_by_index_after_filtering():
    original = pd.DataFrame({"id": [5, 7], "version": [1, 1], "position": [4, 6], "text": ["x", "y"],
                             "label": ["a", float("nan")]}, index=[4, 6])
    edited = original.copy()
    edited.loc[6, "label"] = "b"
    edited.loc[4, "label"] = "a "  # whitespace only: no change
    assert [(row["id"], label) for row, label in annotation.grid_changes(original, edited)] == [(7, "b")]
    with pytest.raises(ValueError, match="adding rows"):
        annotation.grid_changes(original, pd.concat([edited, edited.iloc[:1].rename(index={4: 99})]))


# --------------------------------------------------------------------------------------------------- QA

def test_find_occurrences_with_unicode_and_snippets():
    context = "Zürich 🙂 café — the café in Zürich, 東京の café."
    found = annotation.find_occurrences(context, "café")
    assert [item.start for item in found] == [9, 20, 40]
    assert all(context[item.start:item.end] == "café" for item in found)
    assert found[1].snippet == "Zürich 🙂 café — the «café» in Zürich, 東京の café."
    short = annotation.find_occurrences(context, "café", window=5)
    assert short[1].snippet == "… the «café» in Z…"
    assert annotation.find_occurrences(context, "") == []
    assert annotation.find_occurrences(context, "Café") == []  # exact, case-sensitive
    assert [item.start for item in annotation.find_occurrences("aaa", "aa")] == [0, 1]  # overlapping
    assert [item.start for item in annotation.find_occurrences("東京 and 東京", "東京")] == [0, 7]
    snippet = annotation.find_occurrences("line one\n\nbob", "bob")[0].snippet
    assert "\n" not in snippet and snippet == "line one «bob»"


def test_answer_hint_names_near_misses():
    assert "capitalisation" in annotation.answer_hint("Alice met Bob", "bob")
    assert "spaces" in annotation.answer_hint("Alice met Bob", " Bob ")
    assert annotation.answer_hint("Alice met Bob", "carol") is None


# --------------------------------------------------------------------------------------------------- history

def test_describe_undo_and_history_frame():
    examples = _examples([None, "a"])
    assert annotation.describe_undo(None, examples) == "Nothing of yours to undo: undo reverts only your own changes."
    undone = {"example_id": 11, "field": "label", "restored": None}
    assert annotation.describe_undo(undone, examples) == "Undone: row 2 label is back to (none)."
    answer = {"example_id": 10, "field": "answer", "restored": {"answer_text": "", "answer_start": None}}
    assert annotation.describe_undo(answer, examples) == "Undone: row 1 answer is back to no answer."
    when = datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc)
    frame = annotation.history_frame([
        {"position": 1, "field": "label", "old_value": None, "new_value": "a", "actor": "user", "undone": True,
         "created_at": when, "person": "Bea"},
        {"position": 0, "field": "answer", "old_value": None, "new_value": {"answer_text": "bob", "answer_start": 8},
         "actor": "suggestion", "undone": False, "created_at": when},
    ])
    assert frame["row"].tolist() == [2, 1]
    assert frame["change"].tolist() == ["(none) → 'a'", "(none) → 'bob' at 8"]
    assert frame["who"].tolist() == ["Bea", "unknown"]
    assert frame["how"].tolist() == ["by hand (undone)", "accepted suggestion"]
    pending = {"position": 1, "field": "label", "replaced": "a", "restored": None, "count": 1, "actor": "user"}
    assert annotation.undo_button_text(pending) == "↶ Undo your row 2 change: 'a' → (none)"
    assert annotation.undo_button_text({**pending, "count": 3, "actor": "bulk"}) == "↶ Undo your bulk change of 3 rows"
    assert annotation.undo_button_text(None) == "↶ Nothing of yours to undo"
    spans = [{"start": 0, "end": 4, "label": "PER"}, {"start": 9, "end": 14, "label": "ORG"}]
    assert annotation.undo_button_text({**pending, "field": "spans", "replaced": spans, "restored": []}) == \
        "↶ Undo your row 2 change: 2 entities (PER, ORG) → no entities"  # never a raw Python list


# --------------------------------------------------------------------------------------------------- counts, places

def test_label_counts_per_label_and_entity_type():
    counts = annotation.label_counts(_examples(["a", None, "b", "a", "c"]), "classification", ["b", "a", "unused"])
    assert counts == {"b": 1, "a": 2, "unused": 0, "c": 1}  # the label set's order, then others found
    ner = [{"text": "Ann met Bob in Rome", "spans": [{"start": 0, "end": 3, "label": "PER"},
                                                    {"start": 8, "end": 11, "label": "PER"},
                                                    {"start": 15, "end": 19, "label": "LOC"}]},
           {"text": "nothing here", "spans": []}, {"text": "not reviewed", "spans": None}]
    assert annotation.label_counts(ner, "ner", ["LOC", "ORG", "PER"]) == {"LOC": 1, "ORG": 0, "PER": 1}
    assert annotation.label_counts([{"answer_text": "x", "answer_start": 0}], "qa") == {}  # no label set


def test_navigation_names_absolute_places():
    ordered = _examples([None] * 5)
    assert annotation.at_position(ordered, 0) == 10 and annotation.at_position(ordered, 4) == 14
    assert annotation.at_position(ordered, -3) == 10 and annotation.at_position(ordered, 99) == 14  # clamped
    assert annotation.at_position(ordered, "2") is None and annotation.at_position([], 0) is None
    assert annotation.position_of(ordered, 13) == 3 and annotation.position_of(ordered, 99) == 0
