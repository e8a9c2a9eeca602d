"""Labeling logic behind the Label page, kept free of Streamlit so it can be unit-tested directly.

- what counts as labeled, progress counts and the "37 of 120 labeled" text;
- the order examples are shown in (import order, or least confident model suggestion first) and moving through
  that order (previous / next / next unlabeled);
- filtering the classification grid (unlabeled only, one label, text search) and showing the rows' metadata columns;
- saving the grid: diff the edited table against the snapshot the user saw and save each changed row with the
  version from that snapshot, so a row changed elsewhere in the meantime is refused, never overwritten;
- where a typed QA answer occurs in its context (with a snippet around each occurrence);
- how many labeled rows each label (class, entity type) has, for the Label page's chart;
- readable descriptions of an undo and of the recent label history.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

import pandas as pd

from core import storage, tasks

ORDER_IMPORT = "import order"
ORDER_LEAST_CONFIDENT = "least confident first"
ORDERS = (ORDER_IMPORT, ORDER_LEAST_CONFIDENT)
NONE_SHOWN = "(none)"  # how an empty label / unanswered question reads in messages


# --------------------------------------------------------------------------------------------------- progress


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def is_labeled(example: dict, task: str) -> bool:
    """As the task counts it: classification has a label; QA has an answer decision ("" = no answer counts as
    done); entities were reviewed ([] = no entities counts as done)."""
    return tasks.get(task).is_labeled(example)


def progress(examples: Sequence[dict], task: str) -> tuple[int, int]:
    """(labeled, total)."""
    return sum(is_labeled(example, task) for example in examples), len(examples)


def progress_text(labeled: int, total: int, task: str = tasks.NAMES[0]) -> str:
    """'37 of 120 labeled' (QA: 'answered')."""
    return f"{labeled} of {total} {tasks.get(task).labeled_word}"


def row_name(example: dict) -> str:
    """How the UI names an example: 'row 12' (its import position, counted from 1)."""
    return f"row {int(example['position']) + 1}"


def shorten(text: Any, limit: int = 60) -> str:
    """One line of at most ``limit`` characters, for naming an example in a message."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


# --------------------------------------------------------------------------------------------------- ordering


def order_examples(examples: Sequence[dict], suggestions: dict[int, dict] | None = None,
                   order: str = ORDER_IMPORT) -> list[dict]:
    """Examples in the order to show them. ``suggestions`` maps example id -> {label, score};
    "least confident first" puts the lowest suggestion score first (ties and rows without a suggestion keep import
    order, rows without a suggestion last)."""
    ordered = sorted(examples, key=lambda example: example["position"])
    if order == ORDER_IMPORT or not suggestions:
        return ordered
    if order != ORDER_LEAST_CONFIDENT:
        raise ValueError(f"unknown order {order!r}: use one of {', '.join(ORDERS)}")

    def confidence(example: dict) -> tuple[int, float]:
        found = suggestions.get(example["id"])
        return (1, 0.0) if found is None else (0, float(found["score"]))

    return sorted(ordered, key=confidence)  # sorted() is stable: equal scores stay in import order


def first_to_show(ordered: Sequence[dict], task: str) -> int | None:
    """Id of the first unlabeled example in ``ordered`` (the first example when all are labeled; None if empty)."""
    for example in ordered:
        if not is_labeled(example, task):
            return example["id"]
    return ordered[0]["id"] if ordered else None


def next_unlabeled(ordered: Sequence[dict], current_id: int | None, task: str) -> int | None:
    """Id of the next unlabeled example after ``current_id`` in ``ordered``, wrapping around; None when every other
    example is labeled. The current example itself is not a candidate (it was just labeled or skipped)."""
    ids = [example["id"] for example in ordered]
    start = ids.index(current_id) + 1 if current_id in ids else 0
    for offset in range(len(ordered)):
        example = ordered[(start + offset) % len(ordered)]
        if example["id"] != current_id and not is_labeled(example, task):
            return example["id"]
    return None


def step(ordered: Sequence[dict], current_id: int | None, delta: int) -> int | None:
    """Id ``delta`` places from ``current_id`` in ``ordered``, stopping at both ends."""
    if not ordered:
        return None
    ids = [example["id"] for example in ordered]
    if current_id not in ids:
        return ids[0]
    return ids[max(0, min(len(ids) - 1, ids.index(current_id) + delta))]


def at_position(ordered: Sequence[dict], position: Any) -> int | None:
    """Id of the example at ``position`` (0-based) in ``ordered``, clamped to both ends; None when empty or when
    ``position`` is not an integer. Navigation names its target this way (an absolute place, not "one back"), so
    a repeated or coalesced click lands where the last click meant, never short of it."""
    if not ordered or not isinstance(position, int) or isinstance(position, bool):
        return None
    return ordered[max(0, min(len(ordered) - 1, position))]["id"]


def position_of(ordered: Sequence[dict], example_id: int) -> int:
    """0-based place of ``example_id`` in ``ordered`` (0 when absent)."""
    return next((i for i, example in enumerate(ordered) if example["id"] == example_id), 0)


# --------------------------------------------------------------------------------------------------- counts


def label_counts(examples: Sequence[dict], task: str, labels: Sequence[str] = ()) -> dict[str, int]:
    """Labeled rows per label, for a task with a label set (class labels, entity types: a row with two PER
    entities counts once for PER); the labels of ``labels`` first (0 when unused), then any other found, in
    order of appearance. {} for a task without a label set (QA)."""
    spec = tasks.get(task)
    if not spec.has_labels:
        return {}
    counts = dict.fromkeys(labels, 0)
    for example in examples:
        if not spec.is_labeled(example):
            continue
        for label in sorted(spec.label_uses(spec.edit_value(example))):
            counts[label] = counts.get(label, 0) + 1
    return counts


# --------------------------------------------------------------------------------------------------- grid


def filter_examples(frame: pd.DataFrame, *, unlabeled_only: bool = False, label: str | None = None,
                    search: str = "") -> pd.DataFrame:
    """Rows of a classification frame (columns id, text, label, ...) that pass every given filter.
    ``search`` matches text case-insensitively (Unicode casefolding, NFC-normalised), as plain text, not a pattern."""
    mask = pd.Series(True, index=frame.index)
    labels = frame["label"]
    if unlabeled_only:
        mask &= labels.isna() | (labels.astype(str) == "")
    if label is not None:
        mask &= labels == label
    needle = _fold(search.strip())
    if needle:
        mask &= frame["text"].fillna("").map(lambda text: needle in _fold(text)).astype(bool)
    return frame[mask]


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", str(text)).casefold()


def with_meta_columns(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The grid's frame with each metadata column (the import file's other columns, e.g. ticket_id) as a column of
    its own after the others (``meta_`` + its name where the frame has that column already), and their names in
    order. Rows without a value show an empty cell."""
    from core.exporting import meta_names
    metas = frame["meta"].tolist() if "meta" in frame.columns else []
    names = meta_names(({"meta": meta} for meta in metas if isinstance(meta, dict)), frame.columns)
    out = frame.copy()
    for key, name in names.items():
        out[name] = [meta.get(key, "") if isinstance(meta, dict) else "" for meta in metas]
    return out, list(names.values())


def meta_line(example: dict, limit: int = 40) -> str:
    """An example's metadata on one line, 'ticket_id: T-1 · channel: email' (empty values left out, long ones
    shortened); "" when it has none."""
    return " · ".join(f"{shorten(key, limit)}: {shorten(value, limit)}"
                      for key, value in (example.get("meta") or {}).items() if str(value).strip())


def attach_suggestions(frame: pd.DataFrame, suggestions: dict[int, dict] | None) -> pd.DataFrame:
    """A copy of ``frame`` with 'suggestion' and 'confidence' (0-1) columns for the rows the model scored."""
    out = frame.copy()
    found = [suggestions.get(example_id) if suggestions else None for example_id in out["id"]]
    out["suggestion"] = [item["label"] if item else None for item in found]
    out["confidence"] = [float(item["score"]) if item else float("nan") for item in found]
    return out


def least_confident_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Frame with a 'confidence' column sorted lowest first (rows without one last, otherwise import order)."""
    return frame.sort_values(["confidence", "position"], na_position="last", kind="stable")


class GridSaveResult(NamedTuple):
    """Outcome of saving grid edits: how many rows were saved, and one message per refused row."""

    saved: int
    refused: list[str]


def _label_or_none(value: Any) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def grid_changes(original: pd.DataFrame, edited: pd.DataFrame) -> list[tuple[dict, str | None]]:
    """(original row, new label) for each row whose label differs between the two frames, matched on the index
    (``st.data_editor`` keeps the index of the frame it was given)."""
    missing = [column for column in ("id", "version", "label") if column not in original.columns]
    if missing:
        raise ValueError(f"the original grid lacks column(s) {missing}: it must come from storage.examples_frame")
    if "label" not in edited.columns:
        raise ValueError("the edited grid has no 'label' column")
    unknown = edited.index.difference(original.index)
    if len(unknown):
        raise ValueError(f"the edited grid has {len(unknown)} row(s) that were not in the original: "
                         "adding rows in the grid is not supported")
    changes = []
    for index, row in original.iterrows():
        if index not in edited.index:
            continue
        if "id" in edited.columns and int(edited.at[index, "id"]) != int(row["id"]):
            raise ValueError(f"grid row {index} holds example {edited.at[index, 'id']}, expected {row['id']}: "
                             "the rows were reordered; reload the grid")
        before, after = _label_or_none(row["label"]), _label_or_none(edited.at[index, "label"])
        if before != after:
            changes.append((row.to_dict(), after))
    return changes


def apply_grid_edits(original: pd.DataFrame, edited: pd.DataFrame, actor: str = "user",
                     person: str | None = None) -> GridSaveResult:
    """Save every changed label with ``storage.set_label`` at the version the user saw in ``original``.

    A row changed elsewhere since (StaleEditError) or an edit storage refuses (InvalidEditError, NotFoundError) is
    skipped and reported by row number and text; other rows are still saved.
    """
    saved, refused = 0, []
    for row, label in grid_changes(original, edited):
        name = f"Row {int(row['position']) + 1} ('{shorten(row.get('text'), 40)}')" if "position" in row \
            else f"Example {row['id']}"
        try:
            storage.set_label(int(row["id"]), label, int(row["version"]), actor=actor, person=person)
            saved += 1
        except storage.StaleEditError:
            refused.append(f"{name} was changed elsewhere (another tab or person) since you loaded the grid, so your "
                           f"label '{label or NONE_SHOWN}' was not saved: reload and check it again")
        except storage.StorageError as error:
            refused.append(f"{name}: not saved — {error}")
    return GridSaveResult(saved, refused)


# --------------------------------------------------------------------------------------------------- QA answers


@dataclass(frozen=True)
class Occurrence:
    """One place an answer occurs in a context: ``context[start:end] == answer``, with text either side."""

    start: int
    end: int
    before: str
    match: str
    after: str
    before_cut: bool = False  # the context goes on before ``before`` / after ``after``
    after_cut: bool = False

    @property
    def snippet(self) -> str:
        """'…text before «answer» text after…' on one line."""
        left = ("…" if self.before_cut else "") + re.sub(r"\s+", " ", self.before)
        right = re.sub(r"\s+", " ", self.after) + ("…" if self.after_cut else "")
        return f"{left}«{self.match}»{right}"


def find_occurrences(context: str, answer: str, window: int = 30) -> list[Occurrence]:
    """Every place ``answer`` occurs in ``context`` (exact, case-sensitive, overlapping matches included), with up to
    ``window`` characters of context each side. Offsets are Python string indices (code points), the same as
    ``answer_start`` in storage. An empty answer occurs nowhere."""
    if not answer or not context:
        return []
    found, position = [], context.find(answer)
    while position >= 0:
        end = position + len(answer)
        left, right = max(0, position - window), min(len(context), end + window)
        found.append(Occurrence(position, end, context[left:position], context[position:end], context[end:right],
                                before_cut=left > 0, after_cut=right < len(context)))
        position = context.find(answer, position + 1)
    return found


def answer_hint(context: str, answer: str) -> str | None:
    """Why a typed answer was not found, when there is a near miss (capitalisation, spaces); else None."""
    stripped = answer.strip()
    if stripped and stripped != answer and find_occurrences(context, stripped):
        return "the answer has spaces at its start or end — remove them"
    lowered = _fold(context).find(_fold(stripped)) if stripped else -1
    if lowered >= 0 and len(_fold(context)) == len(context):
        return f"it occurs as '{context[lowered:lowered + len(stripped)]}' — capitalisation differs; copy it exactly"
    return None


# --------------------------------------------------------------------------------------------------- history


def _shown(value: Any, field: str) -> str:
    if isinstance(value, list):  # entity spans: how many, of which types (never a raw list)
        if not value:
            return "no entities"
        types = ", ".join(dict.fromkeys(str(span.get("label")) for span in value if isinstance(span, dict)))
        return f"{len(value)} entit{'y' if len(value) == 1 else 'ies'}" + (f" ({types})" if types else "")
    if field == "answer" and isinstance(value, dict):
        text = value.get("answer_text")
        if text is None:
            return NONE_SHOWN
        return "no answer" if text == "" else f"'{shorten(text, 40)}' at {value.get('answer_start')}"
    return NONE_SHOWN if value is None else f"'{value}'"


def undo_button_text(pending: dict | None) -> str:
    """The Undo button's text for ``storage.last_undoable(dataset, person)``: what a click reverts."""
    if pending is None:
        return "↶ Nothing of yours to undo"
    count = pending.get("count", 1)
    if count > 1:
        return f"↶ Undo your {'rename' if pending.get('actor') == 'rename' else 'bulk change'} of {count} rows"
    return (f"↶ Undo your row {int(pending['position']) + 1} change: {_shown(pending['replaced'], pending['field'])} → "
            f"{_shown(pending['restored'], pending['field'])}")


def describe_undo(undone: dict | None, examples: Iterable[dict]) -> str:
    """Sentence for the result of ``storage.undo_last``."""
    if undone is None:
        return "Nothing of yours to undo: undo reverts only your own changes."
    by_id = {example["id"]: example for example in examples}
    example = by_id.get(undone["example_id"])
    where = row_name(example) if example else f"example {undone['example_id']}"
    what = {"label": "label", "answer": "answer", "spans": "entities"}.get(undone["field"], undone["field"])
    count = undone.get("count", 1)
    if count > 1:
        return (f"Undone: {count} rows changed together (bulk or rename) are back to their previous "
                f"{what if what.endswith('s') else what + 's'}.")
    verb = "are" if what.endswith("s") else "is"
    return f"Undone: {where} {what} {verb} back to {_shown(undone['restored'], undone['field'])}."


def history_frame(events: Sequence[dict]) -> pd.DataFrame:
    """``storage.label_history`` as a small table: when, row, change, who, how (by hand, bulk, rename, ...)."""
    rows = []
    for event in events:
        when = event["created_at"]
        rows.append({
            "when": when.astimezone().strftime("%H:%M:%S") if hasattr(when, "astimezone") else str(when),
            "row": int(event["position"]) + 1,
            "change": f"{_shown(event['old_value'], event['field'])} → {_shown(event['new_value'], event['field'])}",
            "who": event.get("person") or storage.UNKNOWN_PERSON,
            "how": HOW.get(event["actor"], event["actor"]) + (" (undone)" if event["undone"] and event["actor"] != "undo"
                                                              else ""),
        })
    return pd.DataFrame(rows, columns=["when", "row", "change", "who", "how"])


HOW = {"user": "by hand", "suggestion": "accepted suggestion", "bulk": "bulk", "rename": "label rename",
       "undo": "undo"}


__all__ = [
    "GridSaveResult", "ORDERS", "ORDER_IMPORT", "ORDER_LEAST_CONFIDENT", "Occurrence", "answer_hint",
    "apply_grid_edits", "at_position", "label_counts", "position_of", "attach_suggestions", "describe_undo", "undo_button_text", "filter_examples", "find_occurrences",
    "first_to_show", "grid_changes", "history_frame", "is_labeled", "least_confident_first", "next_unlabeled",
    "order_examples", "progress", "progress_text", "row_name", "shorten", "step",
]
