"""The task interface: everything SpanLab asks a task, so that the rest of the code never compares task names.

A task (``core/tasks/classification.py``, ``qa.py``, ``ner.py``) is one object, a subclass of :class:`Task`, that
owns what is specific to it:

* data: its import fields and their column-name synonyms, how a file's rows are checked (:meth:`Task.validate`,
  which fills an :class:`ImportResult`), how a row is stored (:meth:`Task.clean_row`), which edit the Label page
  makes (:attr:`Task.edit_field`), and the export formats;
* training: its defaults, the validation split, tokenised features, the model head;
* predictions: turning model outputs into what users see (with character offsets), and the metrics;
* views: which Label and Demo widgets its pages draw, and which metrics the charts show.

This module also holds what every task's row checks share: :class:`Problem`, :class:`ImportResult`, the one table
of split names and small column helpers. Nothing here imports torch or Streamlit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from core.errors import UserError

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {  # the one table of split names: what a file may say -> what is stored
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "eval": "validation", "test": "test", "testing": "test",
}
SPLIT_FIELD = ["split", "set", "fold"]
# Names a free-text column goes by besides "text" (case, spaces, "_" and "-" ignored: "Customer message" matches
# customer_message). The first match in this order wins; other matching columns are kept as metadata, with a warning.
TEXT_SYNONYMS = ["sentence", "content", "review", "message", "customer_message", "body", "comment", "document",
                 "utterance"]


class TaskDataError(UserError, ValueError):
    """The rows or settings do not suit the task (e.g. only one label to train on); the message says what to do."""


# --------------------------------------------------------------------------------------------------- import results

@dataclass
class Problem:
    """One thing wrong (or worth a look) in the input. ``line`` is None for file-level issues; ``row`` is the data
    row's number counted from 1 as the Label page counts rows (the file line differs: header, CoNLL sentences)."""

    line: int | None
    field: str
    message: str
    unit: str = "line"  # "line" for CSV/TSV/JSONL/CoNLL, "record" for JSON
    row: int | None = None

    @property
    def where(self) -> str:
        """'row 5 (line 6)', 'row 3' (a JSON record), 'line 4' (no row known) or 'whole file'."""
        if self.row is None:
            return f"{self.unit} {self.line}" if self.line is not None else "whole file"
        if self.line is None or (self.unit == "record" and self.line == self.row):
            return f"row {self.row}"
        return f"row {self.row} ({self.unit} {self.line})"

    def __str__(self) -> str:
        parts = []
        if self.line is not None or self.row is not None:
            parts.append(self.where)
        if self.field:
            parts.append(f"field '{self.field}'")
        where = ", ".join(parts)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ImportResult:
    """Outcome of validation. ``rows`` holds only the rows without problems."""

    rows: list[dict]
    problems: list[Problem]
    warnings: list[Problem]
    mapping: dict[str, str]
    labels: list[str]
    task: str = ""
    total_rows: int = 0
    meta_columns: list[str] = field(default_factory=list)  # the file's other columns, kept with each row as metadata

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, max_items: int = 20) -> str:
        """Readable report: counts, then at most ``max_items`` problems and ``max_items`` warnings."""
        if self.ok:
            lines = [f"{len(self.rows)} rows ready to import."]
        else:
            skipped = self.total_rows - len(self.rows)
            lines = [f"{len(self.problems)} problem(s): {skipped} of {self.total_rows} rows cannot be imported. "
                     "Fix them in the file and upload it again:"]
            lines += _bullets(self.problems, max_items)
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s) (these rows are kept):")
            lines += _bullets(self.warnings, max_items)
        return "\n".join(lines)


def _bullets(items: list[Problem], max_items: int) -> list[str]:
    shown = [f"- {item}" for item in items[:max_items]]
    if len(items) > max_items:
        shown.append(f"- ... and {len(items) - max_items} more")
    return shown


class FileChecks:
    """The row checks that compare rows across the whole file: exact repeats, and one text given different labels.

    A task's ``validate`` hands each row's key here (:func:`warn_duplicates`, :meth:`conflicting_labels`) and
    ``finish`` adds the warnings once every row is in. A large file is checked chunk by chunk with one FileChecks for
    all chunks, so only a 64-bit hash, the line and the row number of each row are kept (a chance of about 1 in
    10^7 per million rows that two different rows share a hash and one is called a repeat)."""

    def __init__(self) -> None:
        self._repeats: list[tuple] = []    # per chunk: key hashes, bad mask, lines, row numbers
        self._labeled: list[tuple] = []    # per chunk: text hashes, label hashes, lines, row numbers
        self._label_names: dict[int, str] = {}
        self._fields: dict[str, tuple[str, str]] = {}  # check -> (column named in warnings, unit)

    def repeats(self, rows: "Rows", keys: pd.DataFrame, bad: np.ndarray, field_name: str) -> None:
        hashes = np.fromiter((hash(key) for key in zip(*(keys[column].tolist() for column in keys.columns))),
                             dtype=np.int64, count=len(keys))
        self._fields.setdefault("repeats", (rows.mapping.get(field_name, field_name), rows.unit))
        self._repeats.append((hashes, np.asarray(bad, dtype=bool), np.asarray(rows.lines, dtype=np.int64),
                              rows.numbers()))

    def conflicting_labels(self, rows: "Rows", texts: Sequence[str], labels: Sequence[str], usable: np.ndarray,
                           field_name: str = "label") -> None:
        """Rows whose ``usable`` is True and whose label is not empty: the same text with two labels is warned."""
        keep = np.flatnonzero(np.asarray(usable, dtype=bool) & (np.asarray(labels, dtype=object) != ""))
        label_hashes = []
        for pos in keep.tolist():
            label = labels[pos]
            label_hashes.append(hash(label))
            self._label_names.setdefault(label_hashes[-1], label)
        self._fields.setdefault("labels", (rows.mapping.get(field_name, field_name), rows.unit))
        self._labeled.append((np.fromiter((hash(texts[pos]) for pos in keep.tolist()), dtype=np.int64,
                                          count=len(keep)),
                              np.asarray(label_hashes, dtype=np.int64), np.asarray(rows.lines, dtype=np.int64)[keep],
                              rows.numbers()[keep]))

    def finish(self, result: ImportResult) -> None:
        """Add the warnings of every check to ``result`` (repeats first, then conflicting labels)."""
        if self._repeats:
            hashes, bad, lines, numbers = (np.concatenate(part) for part in zip(*self._repeats))
            column, unit = self._fields["repeats"]
            repeated = pd.Series(hashes).duplicated(keep="first").to_numpy() & ~bad
            if repeated.any():
                first = pd.Series(np.arange(len(hashes))).groupby(hashes).transform("min").to_numpy()
                for pos in np.flatnonzero(repeated).tolist():
                    result.warnings.append(Problem(int(lines[pos]), column, (
                        f"this row repeats row {int(numbers[first[pos]])} exactly — it is kept; delete it if it was "
                        "not meant"), unit, row=int(numbers[pos])))
        if self._labeled:
            texts, labels, lines, numbers = (np.concatenate(part) for part in zip(*self._labeled))
            column, unit = self._fields["labels"]
            keys = pd.DataFrame({"text": texts, "label": labels})
            several = keys.groupby("text", sort=False)["label"].transform("nunique").to_numpy() > 1
            for _, group in keys[several].groupby("text", sort=False):
                where = ", ".join(str(int(lines[pos])) for pos in group.index)
                names = quoted(dict.fromkeys(self._label_names[value] for value in group["label"].tolist()))
                first = group.index[0]
                result.warnings.append(Problem(int(lines[first]), column, (
                    f"the same text has different labels ({names}) on {unit}s {where} — keep one label"), unit,
                    row=int(numbers[first])))
        self._repeats, self._labeled = [], []  # finished: a second finish adds nothing


@dataclass
class Rows:
    """What a task's ``validate`` works on: the file's frame, the mapping, the line numbers and the result to fill.
    A large file comes in chunks: ``first_row`` is the row number of the frame's first row, and ``checks`` is shared
    by every chunk of one file (see :class:`FileChecks`)."""

    frame: pd.DataFrame
    result: ImportResult
    lines: list
    unit: str
    first_row: int = 1
    checks: FileChecks = field(default_factory=FileChecks)

    def numbers(self) -> np.ndarray:
        """The row number of every row of the frame (counted from 1 over the whole file)."""
        return np.arange(self.first_row, self.first_row + len(self.frame), dtype=np.int64)

    @property
    def mapping(self) -> dict[str, str]:
        return self.result.mapping

    def column(self, field_name: str, strip: bool = False) -> list[str] | None:
        """The mapped column of ``field_name`` as strings ("" for missing); None when the field is not mapped."""
        name = self.mapping.get(field_name)
        if name is None:
            return None
        values = strings(self.frame[name])
        return (values.str.strip() if strip else values).tolist()

    def with_meta(self, pos: int, row: dict) -> dict:
        """``row`` (the row built from position ``pos``) with its metadata: {column: text} of the file's columns that
        no field is mapped to, in file order (``result.meta_columns``); the row unchanged when there are none."""
        columns = self.result.meta_columns
        if not columns:
            return row
        values = self.__dict__.get("_meta_values")
        if values is None:
            values = self._meta_values = [strings(self.frame[column]).tolist() for column in columns]
        row["meta"] = {column: cells[pos] for column, cells in zip(columns, values)}
        return row

    def problem(self, pos: int, field_name: str, message: str) -> None:
        self.result.problems.append(Problem(self.lines[pos], self.mapping.get(field_name, field_name), message,
                                            self.unit, row=pos + self.first_row))

    def warn(self, pos: int | None, field_name: str, message: str) -> None:
        line = None if pos is None else self.lines[pos]
        self.result.warnings.append(Problem(line, self.mapping.get(field_name, field_name), message, self.unit,
                                            row=None if pos is None else pos + self.first_row))

    def splits(self) -> tuple[list, np.ndarray]:
        """Normalised split per row (None if empty) and a mask of rows with an unknown split (problems added)."""
        column = self.mapping.get("split")
        if column is None:
            return [None] * len(self.frame), np.zeros(len(self.frame), dtype=bool)
        raw = strings(self.frame[column]).str.strip()
        normalised = raw.str.lower().map(SPLIT_ALIASES)
        bad = (normalised.isna() & (raw != "")).to_numpy()
        for pos in np.flatnonzero(bad):
            self.problem(pos, "split", f"split '{raw.iat[pos]}' is not known — use train, validation or test "
                                       "(dev, val and eval also mean validation), or leave it empty")
        return [value if isinstance(value, str) else None for value in normalised.tolist()], bad


# --------------------------------------------------------------------------------------------------- small helpers

def cell(value: Any) -> str:
    """A file value as text: None -> "", 1.0 -> "1", lists and dicts as JSON."""
    import json
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def strings(series: pd.Series) -> pd.Series:
    """Column as Python strings with missing values as "" (frames from read_table already are)."""
    if pd.api.types.is_string_dtype(series.dtype) and not series.isna().any():
        return series
    return series.astype(object).where(series.notna(), "").map(cell).astype(str)


def is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def optional_str(value: Any) -> str | None:
    """None for missing/blank values; numbers read from CSV (1.0) become '1'."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def clean_split(value: Any, row_number: int) -> str | None:
    """The stored split of a row (via SPLIT_ALIASES); raises TaskDataError for an unknown one."""
    split = optional_str(value)
    if split is None:
        return None
    split = SPLIT_ALIASES.get(split.lower())
    if split is None:
        raise TaskDataError(f"row {row_number}: split {value!r} is not one of {', '.join(SPLITS)} "
                            "(or empty): fix the split column")
    return split


def required_text(row: dict, key: str, row_number: int) -> str:
    value = row.get(key)
    if is_missing(value) or not str(value).strip():
        raise TaskDataError(f"row {row_number}: '{key}' is empty: every row needs a {key}")
    return str(value)


# Joiners that emoji sequences (ZWJ) and Persian or Indic spelling (ZWNJ) need; every other format character
# (bidirectional overrides such as U+202E, invisible marks) and every control character (BEL, tab, newline, ...) is
# refused in a name, where it could disguise what the name says or what follows it.
_ALLOWED_FORMAT_CHARACTERS = {"\u200c", "\u200d"}
_CONTROL_NAMES = {0x00: "NUL", 0x07: "BELL", 0x08: "BACKSPACE", 0x09: "TAB", 0x0A: "LINE FEED", 0x0B: "LINE TABULATION",
                  0x0C: "FORM FEED", 0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE", 0x7F: "DELETE"}


def hidden_characters(text: str) -> list[str]:
    """The control and invisible format characters in ``text`` (as "U+202E RIGHT-TO-LEFT OVERRIDE"), in order."""
    import unicodedata
    found = []
    for character in text:
        category = unicodedata.category(character)
        if (category in ("Cc", "Cf", "Cs", "Zl", "Zp") and character not in _ALLOWED_FORMAT_CHARACTERS):
            described = f"U+{ord(character):04X} {unicodedata.name(character, _CONTROL_NAMES.get(ord(character), 'control character'))}"
            if described not in found:
                found.append(described)
    return found


def check_name(value: str, what: str) -> str:
    """``value`` unchanged, or TaskDataError when it holds control or invisible format characters (see above)."""
    hidden = hidden_characters(value)
    if hidden:
        shown = value.encode("unicode_escape").decode("ascii")
        raise TaskDataError(f"{what} '{shown}' contains {', '.join(hidden)} — names may not hold control or "
                            "invisible formatting characters (they can hide or reverse what follows): remove them")
    return value


def quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def warn_duplicates(rows: Rows, keys: pd.DataFrame, bad: np.ndarray, field_name: str) -> None:
    """A warning for every row that repeats an earlier one exactly (``keys``: the columns that make a row), added
    when the checks finish (see :class:`FileChecks`)."""
    rows.checks.repeats(rows, keys, bad, field_name)


# --------------------------------------------------------------------------------------------------- the interface

@dataclass(frozen=True)
class ExportFormat:
    """One way to write a dataset: file suffix, MIME type, and a function (rows, title) -> bytes."""

    name: str
    title: str
    suffix: str
    mime: str
    write: Any
    help: str = ""


class Task:
    """Base class of the tasks; see the module docstring. Subclasses set the attributes and implement the methods
    that raise NotImplementedError."""

    name: str = ""
    title: str = ""
    # data ------------------------------------------------------------------------------------------
    fields: dict[str, list[str]] = {}     # import field -> accepted column names (case/space-insensitive)
    required: tuple[str, ...] = ()        # fields an import cannot do without
    stored: tuple[str, ...] = ()          # the examples-table columns this task uses (load_examples returns them)
    input_fields: tuple[str, ...] = ()    # what a prediction needs (CLI flags --text / --question --context)
    predict_reads: tuple[str, ...] = ()   # fields ``predict --file`` reads (default: input_fields); others pass through
    done_field: str = ""                  # the stored column whose value (not NULL) marks an example labeled
    edit_field: str = ""                  # what the Label page edits: "label", "answer" or "spans"
    has_labels: bool = False              # keeps a label set (class labels, entity types)
    checks_in_chunks: bool = False        # validate needs only its frame and rows.checks (no whole-file counts),
                                          # so a large file can be checked and stored chunk by chunk
    labeled_word: str = "labeled"         # "37 of 120 labeled"
    # training --------------------------------------------------------------------------------------
    default_lr: float = 5e-5
    default_max_length: int = 128
    default_epochs: float = 3.0
    default_min_steps: int = 150           # small data still gets this many optimizer steps (TrainConfig.min_steps)
    metric_for_best: str = ""
    # the "auto" of TrainConfig.freeze_word_embeddings: fixed when fewer labeled texts train (0: never; inf: always)
    freezes_word_embeddings_below: float = 0
    few_shot: bool = False                 # the few-shot recipe (core/fewshot.py) can apply
    reads_in_windows: bool = False         # long inputs are read in overlapping windows (TrainConfig.doc_stride)
    auto_model: str = ""                   # transformers Auto class of the head
    # views -----------------------------------------------------------------------------------------
    label_widget: str = ""                 # which Label-page widget the page draws
    demo_widget: str = ""                  # which Demo-page widget the page draws
    prediction_key: str = ""               # CLI JSON key of a prediction (labels / answers / entities)
    eval_metrics: list[tuple[str, str]] = []   # (metric point name, title) the validation chart draws
    headline: tuple[str, ...] = ()         # final metrics worth a big number, in order
    metric_scale: float = 1.0              # 1 for 0-1 metrics, 100 for SQuAD's 0-100

    # --- data -----------------------------------------------------------------------------------------
    def read(self, text: str, suffix: str, label: str) -> pd.DataFrame | None:
        """A frame for a file only this task reads (e.g. CoNLL columns), or None to read it as a table."""
        return None

    def claims(self, text: str, suffix: str) -> bool:
        """Whether a file can only be one of this task's formats (the Data page's task guess)."""
        return False

    def affinity(self, frame: pd.DataFrame, mapping: dict[str, str]) -> int:
        """How well a table's columns suit this task beyond its required fields (guessing a file's task)."""
        return 0

    def validate(self, rows: Rows) -> None:
        """Check every row, fill ``rows.result`` (rows, problems, warnings, labels)."""
        raise NotImplementedError

    def clean_row(self, row: dict, number: int) -> dict:
        """The stored columns of one row given to ``storage.create_dataset`` (raises TaskDataError, naming the
        row, for a row that cannot be stored)."""
        raise NotImplementedError

    def row_labels(self, row: dict) -> set[str]:
        """The labels a stored row uses (to check them against the label set)."""
        return set()

    def is_labeled(self, example: dict) -> bool:
        return not is_missing(example.get(self.done_field))

    def edit_value(self, example) -> Any:
        """The current value of the edited field of an example (ORM object or dict)."""
        raise NotImplementedError

    def check_edit(self, example, value: Any, labels: list[str]) -> Any:
        """``value`` cleaned for an edit of ``edit_field`` of ``example`` (an ORM row; None for a bulk edit);
        raises TaskDataError when it is not allowed."""
        raise NotImplementedError

    def edit_columns(self, value: Any) -> dict:
        """The stored columns an edit value sets."""
        return {self.edit_field: value}

    def relabel(self, value: Any, old: str, new: str) -> Any:
        """An edit value with label ``old`` renamed to ``new`` (has_labels tasks)."""
        return value

    def label_uses(self, value: Any) -> set[str]:
        """The labels an edit value uses (undo restores a removed label to the label set)."""
        return set()

    @property
    def exports(self) -> dict[str, ExportFormat]:
        raise NotImplementedError

    def hf_dataset(self, rows: list[dict]):
        """The rows as a ``datasets.Dataset`` in the task's usual layout."""
        raise NotImplementedError

    def export_record(self, row: dict) -> dict:
        """A row as the flat record the CSV export and batch predictions write."""
        return {column: row.get(column) for column in self.stored}

    # --- training -------------------------------------------------------------------------------------
    def split(self, pool: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
        raise NotImplementedError

    def validation_fraction(self, n_pool: int) -> float:
        """The share of labeled rows held out for validation when the user did not choose one (0: none)."""
        return 0.2

    def training_labels(self, dataset_labels: list[str], train: list[dict], validation: list[dict]) -> list[str]:
        """The labels the model learns (raises TaskDataError when training cannot work with them)."""
        return []

    def run_settings(self, examples: list[dict]) -> dict:
        """Task settings a run learns from its data (saved with the model), e.g. QA's SQuAD 2.0 flag."""
        return {}

    def encode(self, examples: list[dict], tokenizer, settings: dict, for_eval: bool) -> list[dict]:
        """Token features, one dict per feature, unpadded (training features carry their targets)."""
        raise NotImplementedError

    def head_config(self, labels: list[str]) -> dict:
        """Keyword arguments for ``from_pretrained`` that shape the head."""
        return {}

    def outputs(self, model_output, lengths: list[int]) -> list:
        """Per-feature numpy outputs of one batch, each cut to its feature's length."""
        raise NotImplementedError

    def decode(self, examples: list[dict], features: list[dict], outputs: list, settings: dict, top_k: int | None,
               runners_up: int = 0) -> list:
        """User-facing predictions, one per example, with character offsets into the example's text."""
        raise NotImplementedError

    def score(self, examples: list[dict], predictions: list, labels: list[str]) -> dict:
        """Metrics of ``predictions`` against the examples' own labels."""
        raise NotImplementedError

    def check_eval_labels(self, examples: list[dict], model_labels: list[str]) -> None:
        """Raise TaskDataError when the examples hold labels the model cannot predict."""

    def answers_in_bf16(self, settings: dict) -> bool:
        """Whether "auto" precision answers in bf16 where the CPU runs it natively (measured for QA only)."""
        return False

    def trim(self, prediction, top_k: int | None):
        """A prediction made with runners-up (to judge close calls) cut back to what was asked for."""
        return prediction

    def is_close_call(self, prediction, top_k: int, margin: float) -> bool:
        """Whether a bf16 prediction is close enough to a different one that fp32 should decide."""
        return False

    def certainty(self, prediction) -> float:
        """How sure the model is of a prediction, 0-1 (the Label page offers the least certain first)."""
        return 1.0

    def suggestion(self, prediction) -> dict:
        """A prediction as a Label-page suggestion: {"value": edit value, "score": certainty, ...}."""
        raise NotImplementedError

    def prediction_record(self, example: dict, prediction) -> dict:
        """One row of ``predict --file`` output."""
        raise NotImplementedError


def by_length(features: Sequence[dict]) -> list[int]:
    """Feature indices sorted by token count (batches of similar lengths pad little)."""
    return sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))


__all__ = ["ExportFormat", "FileChecks", "ImportResult", "Problem", "Rows", "SPLITS", "SPLIT_ALIASES", "TEXT_SYNONYMS",
           "Task", "TaskDataError", "cell", "clean_split", "is_missing", "optional_str", "quoted", "required_text",
           "short", "strings",
           "warn_duplicates", "by_length"]
