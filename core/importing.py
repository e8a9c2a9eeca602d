"""Turn user files into validated rows for ``core.storage.create_dataset``, explaining every bad row.

Three steps, each usable on its own:

1. ``read_table(source, filename)`` reads a path or uploaded bytes into a DataFrame of strings. Delimited text
   (comma / tab / semicolon / pipe, sniffed), UTF-8 with or without BOM (else cp1252, else Latin-1), JSON Lines and
   SQuAD JSON (flattened to one row per question). The frame's index holds the line (or record) number the user sees
   in the file, so later messages can point at it.
2. ``detect_mapping(columns, task)`` guesses which column holds which field, accepting common synonyms.
3. ``validate(df, task, mapping)`` checks every row and returns an ``ImportResult``: the good rows, ready for
   ``create_dataset``, plus a ``Problem`` for every row that cannot be imported and warnings for things that were
   accepted but deserve a look (answer offsets corrected, duplicates, unanswerable questions...).

``load_file`` chains the three. Unreadable input raises ``ImportFailed``; row-level trouble never raises.
"""
from __future__ import annotations

import ast
import codecs
import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from core.exporting import to_csv_bytes, to_hf_dataset, to_jsonl_bytes, to_squad_json

TASKS = ("classification", "qa")

FIELD_SYNONYMS: dict[str, dict[str, list[str]]] = {
    "classification": {
        "text": ["text", "sentence", "content", "review", "message", "body", "document", "utterance"],
        "label": ["label", "category", "class", "intent", "target", "sentiment"],
        "split": ["split", "set", "fold"],
    },
    "qa": {
        "context": ["context", "passage", "paragraph", "document"],
        "question": ["question", "query"],
        "answer_text": ["answer_text", "answer", "answers", "answer text"],
        "answer_start": ["answer_start", "start", "answer_start_char"],
        "qid": ["id", "qid", "question_id"],
        "split": ["split", "set", "fold"],
    },
}
REQUIRED_FIELDS = {"classification": ("text",), "qa": ("context", "question")}

SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
    "eval": "validation", "test": "test", "testing": "test",
}
_DELIMITERS = [",", "\t", ";", "|"]
_SNIFF_CHARS = 65536
# Cells that spreadsheets would run as formulas are exported with a leading apostrophe (see core.exporting);
# reading a CSV removes that apostrophe again so a round trip gives back the original text.
_ESCAPED_FORMULA = re.compile(r"^'(?=[=+\-@\t\r])")
_MAX_CANDIDATES_SHOWN = 10


class ImportFailed(ValueError):
    """The file as a whole cannot be read (empty, binary, malformed...). The message says what to do."""


@dataclass
class Problem:
    """One thing wrong (or worth a look) in the input. ``line`` is None for file-level issues."""

    line: int | None
    field: str
    message: str
    unit: str = "line"  # "line" for CSV/TSV/JSONL, "record" for JSON

    def __str__(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"{self.unit} {self.line}")
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


# --------------------------------------------------------------------------------------------------- reading


def read_table(source: Any, filename: str | None = None) -> pd.DataFrame:
    """Read a path, bytes or file-like upload into a DataFrame of strings.

    The format follows the file name's extension (``filename`` or the path's): .jsonl/.ndjson JSON Lines, .json SQuAD
    (or a list of records, or JSON Lines saved as .json), anything else delimited text with a sniffed delimiter.
    The index is named "line" (number as seen in the file, header = line 1) or "record" (JSON: question number).
    """
    data, name = _source_bytes(source, filename)
    label = name or "the file"
    if not data.strip():
        raise ImportFailed(f"{label} is empty — choose a file that contains a header row and data rows")
    if data[:4] == b"PK\x03\x04":
        raise ImportFailed(f"{label} looks like an Excel workbook or a zip archive, not text — "
                           "save it as CSV (UTF-8) and upload that")
    text = _decode(data)
    if "\x00" in text[:_SNIFF_CHARS]:
        raise ImportFailed(f"{label} looks like a binary file — upload CSV, TSV, JSONL or SQuAD JSON")
    suffix = Path(name).suffix.lower() if name else ""
    stripped = text.lstrip()
    if suffix in (".jsonl", ".ndjson"):
        frame = _read_jsonl(text, label)
    elif suffix == ".json" or (not suffix and stripped[:1] in "{["):
        frame = _read_json(text, label)
    else:
        frame = _read_delimited(text, label, prefer_tab=suffix in (".tsv", ".tab"))
    if frame.empty:
        raise ImportFailed(f"{label} has no data rows — add at least one row below the header")
    return frame


def _source_bytes(source: Any, filename: str | None) -> tuple[bytes, str | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), filename
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.read_bytes(), filename or path.name
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror or exc} — check the path") from exc
    if hasattr(source, "getvalue"):  # Streamlit UploadedFile, BytesIO
        return bytes(source.getvalue()), filename or getattr(source, "name", None)
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return bytes(data), filename or getattr(source, "name", None)
    raise ImportFailed(f"cannot read a {type(source).__name__}: pass a path, bytes or an uploaded file")


def _decode(data: bytes) -> str:
    """UTF-16 if it has a UTF-16 BOM, else UTF-8 (BOM removed), else cp1252, else Latin-1 (never fails)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _sniff_delimiter(text: str, prefer_tab: bool) -> str:
    """The candidate delimiter that splits the first rows into the same number (>= 2) of fields most consistently."""
    order = ["\t", ",", ";", "|"] if prefer_tab else _DELIMITERS
    sample = text[:_SNIFF_CHARS]
    best, best_score = order[0], (0.0, 0)
    for rank, delimiter in enumerate(order):
        try:
            rows = [row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if len(text) > len(sample) and len(rows) > 2:
            rows = rows[:-1]  # the sample may cut the last row in half
        width = len(rows[0]) if rows else 0
        if width < 2:
            continue
        score = (sum(len(row) == width for row in rows) / len(rows), -rank)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_delimited(text: str, label: str, prefer_tab: bool) -> pd.DataFrame:
    delimiter = _sniff_delimiter(text, prefer_tab)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            skip_blank_lines=False, engine="c")
    except pd.errors.EmptyDataError as exc:
        raise ImportFailed(f"{label} has no columns — the first line must be a header such as 'text,label'") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise ImportFailed(f"cannot read {label} as {_delimiter_name(delimiter)}-separated text: {exc}. "
                           "Wrap fields that contain the delimiter, quotes or line breaks in double quotes "
                           '(and double any quote inside: "")') from exc
    frame = frame.fillna("")  # rows shorter than the header
    frame.columns = [str(column) for column in frame.columns]
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    blank = (frame == "").all(axis=1)
    if blank.any():
        frame = frame[~blank]
    for column in frame.columns:
        values = frame[column]
        escaped = values.str.startswith("'")
        if escaped.any():
            frame[column] = values.where(~escaped, values.str.replace(_ESCAPED_FORMULA, "", regex=True))
    return frame


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}[delimiter]


def _read_jsonl(text: str, label: str) -> pd.DataFrame:
    records, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFailed(f"line {number} of {label} is not valid JSON ({exc.msg}, column {exc.colno}) — "
                               "JSON Lines needs one complete JSON object per line") from exc
        if not isinstance(record, dict):
            raise ImportFailed(f"line {number} of {label} is a JSON {type(record).__name__}, not an object — "
                               'write one object per line, e.g. {"text": "...", "label": "..."}')
        records.append(record)
        numbers.append(number)
    return _records_frame(records, numbers, "line")


def _read_json(text: str, label: str) -> pd.DataFrame:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines saved with a .json extension
            return _read_jsonl(text, label)
        raise ImportFailed(f"{label} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    if isinstance(document, dict) and "data" in document:
        return _flatten_squad(document, label)
    if isinstance(document, list) and document and all(isinstance(item, dict) for item in document):
        return _records_frame(document, range(1, len(document) + 1), "record")
    raise ImportFailed(f"{label} is JSON but not in SQuAD format — expected "
                       '{"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [{"id": ..., "question": ..., '
                       '"answers": [{"text": ..., "answer_start": ...}]}]}]}]}; for other records use JSON Lines (.jsonl)')


def _flatten_squad(document: dict, label: str) -> pd.DataFrame:
    """One row per question: id, title, context, question, answer_text (first answer; "" if none), answer_start."""
    articles = document["data"]
    if not isinstance(articles, list):
        raise ImportFailed(f"{label}: 'data' must be a list of articles with 'paragraphs' (SQuAD format)")
    rows = []
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise ImportFailed(f"{label}: data[{a}] has no 'paragraphs' list — not SQuAD format")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise ImportFailed(f"{label}: {where} has no 'context' text — not SQuAD format")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                raise ImportFailed(f"{label}: {where} has no 'qas' list — not SQuAD format")
            for q, qa in enumerate(qas):
                if not isinstance(qa, dict) or "question" not in qa:
                    raise ImportFailed(f"{label}: {where}.qas[{q}] has no 'question' — not SQuAD format")
                answers = qa.get("answers") or []
                first = answers[0] if answers and not qa.get("is_impossible") else None
                if first is not None and not isinstance(first, dict):
                    raise ImportFailed(f"{label}: {where}.qas[{q}].answers[0] must be an object with 'text' "
                                       "and 'answer_start'")
                rows.append({
                    "id": _cell(qa.get("id")), "title": _cell(article.get("title")),
                    "context": paragraph["context"], "question": _cell(qa.get("question")),
                    "answer_text": _cell(first.get("text")) if first else "",
                    "answer_start": _cell(first.get("answer_start")) if first else "",
                })
    columns = ["id", "title", "context", "question", "answer_text", "answer_start"]
    frame = pd.DataFrame(rows, columns=columns, dtype=str)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="record")
    return frame


def _records_frame(records: list[dict], numbers: Iterable[int], unit: str) -> pd.DataFrame:
    flat = []
    for record in records:
        record = dict(record)
        answers = record.get("answers")
        if isinstance(answers, dict) and "answer_text" not in record:  # Hugging Face SQuAD layout
            texts, starts = answers.get("text") or [], answers.get("answer_start") or []
            record.pop("answers")
            record["answer_text"] = texts[0] if texts else ""
            record["answer_start"] = starts[0] if starts and texts else ""
        flat.append({str(key): _cell(value) for key, value in record.items()})
    frame = pd.DataFrame(flat, dtype=str).fillna("")
    frame.index = pd.Index(list(numbers), name=unit)
    return frame


def _cell(value: Any) -> str:
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


# --------------------------------------------------------------------------------------------------- mapping


def _normalise_name(name: Any) -> str:
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower())


def detect_mapping(columns: Iterable[Any], task: str) -> dict[str, str]:
    """field -> column for every field whose column can be recognised (case-insensitive, synonyms accepted)."""
    synonyms = _synonyms(task)
    by_name: dict[str, str] = {}
    for column in columns:
        by_name.setdefault(_normalise_name(column), str(column))
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for field_name, names in synonyms.items():
        for name in names:
            column = by_name.get(_normalise_name(name))
            if column is not None and column not in used:
                mapping[field_name] = column
                used.add(column)
                break
    return mapping


def _synonyms(task: str) -> dict[str, list[str]]:
    if task not in FIELD_SYNONYMS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    return FIELD_SYNONYMS[task]


# --------------------------------------------------------------------------------------------------- validation


def validate(df: pd.DataFrame, task: str, mapping: dict | None = None) -> ImportResult:
    """Check every row of ``df`` for ``task``; explicit ``mapping`` entries (field -> column) override detection.

    A mapping value of None or "" leaves that field unmapped.
    """
    synonyms = _synonyms(task)
    columns = [str(column) for column in df.columns]
    frame = df.copy(deep=False)
    frame.columns = columns
    result = ImportResult(rows=[], problems=[], warnings=[], mapping={}, labels=[], task=task, total_rows=len(frame))
    unit = "record" if frame.index.name == "record" else "line"
    lines = (frame.index.to_numpy() if frame.index.name in ("line", "record")
             else np.arange(2, len(frame) + 2))
    result.mapping = _resolve_mapping(columns, task, mapping, result)
    for field_name in REQUIRED_FIELDS[task]:
        if field_name not in result.mapping:
            result.problems.append(Problem(None, field_name, (
                f"no column for '{field_name}' — name a column {_quoted(synonyms[field_name])} "
                f"or choose it in the column mapping (columns found: {_quoted(columns) or 'none'})")))
    if result.problems:
        return result
    if task == "classification":
        _validate_classification(frame, result, lines.tolist(), unit)
    else:
        _validate_qa(frame, result, lines.tolist(), unit)
    for found in (result.problems, result.warnings):  # file-level first, then in file order
        found.sort(key=lambda item: -1 if item.line is None else item.line)
    return result


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _resolve_mapping(columns: list[str], task: str, explicit: dict | None, result: ImportResult) -> dict[str, str]:
    mapping = detect_mapping(columns, task)
    for field_name, column in (explicit or {}).items():
        if field_name not in FIELD_SYNONYMS[task]:
            result.problems.append(Problem(None, str(field_name), (
                f"'{field_name}' is not a field of a {task} dataset — map only {_quoted(FIELD_SYNONYMS[task])}")))
        elif column is None or column == "":
            mapping.pop(field_name, None)
        elif str(column) not in columns:
            result.problems.append(Problem(None, field_name, (
                f"the mapping points at column '{column}', which is not in the file "
                f"(columns found: {_quoted(columns)}) — pick one of those")))
        else:
            for other, used in list(mapping.items()):  # an explicitly chosen column is not also guessed elsewhere
                if used == str(column) and other not in (explicit or {}):
                    mapping.pop(other)
            mapping[field_name] = str(column)
    return mapping


def _strings(series: pd.Series) -> pd.Series:
    """Column as Python strings with missing values as "" (frames from read_table already are)."""
    if pd.api.types.is_string_dtype(series.dtype) and not series.isna().any():
        return series
    return series.astype(object).where(series.notna(), "").map(_cell).astype(str)


def _splits(frame: pd.DataFrame, result: ImportResult, lines: list, unit: str) -> tuple[list, np.ndarray]:
    """Normalised split per row (None if empty) and a mask of rows with an unknown split."""
    column = result.mapping.get("split")
    if column is None:
        return [None] * len(frame), np.zeros(len(frame), dtype=bool)
    raw = _strings(frame[column]).str.strip()
    normalised = raw.str.lower().map(SPLIT_ALIASES)
    bad = (normalised.isna() & (raw != "")).to_numpy()
    for pos in np.flatnonzero(bad):
        result.problems.append(Problem(lines[pos], column, (
            f"split '{raw.iat[pos]}' is not known — use train, validation or test "
            "(dev, val and eval also mean validation), or leave it empty"), unit))
    values = [value if isinstance(value, str) else None for value in normalised.tolist()]
    return values, bad


def _validate_classification(frame: pd.DataFrame, result: ImportResult, lines: list, unit: str) -> None:
    text_column = result.mapping["text"]
    label_column = result.mapping.get("label")
    texts = _strings(frame[text_column]).str.strip()
    labels = _strings(frame[label_column]).str.strip() if label_column else pd.Series("", index=frame.index)
    splits, bad = _splits(frame, result, lines, unit)
    empty = (texts == "").to_numpy()
    for pos in np.flatnonzero(empty):
        result.problems.append(Problem(lines[pos], text_column,
                                       "the text is empty — write the text or delete the row", unit))
    bad = bad | empty
    if label_column is None:
        result.warnings.append(Problem(None, "label", (
            f"no label column found (accepted names: {_quoted(FIELD_SYNONYMS['classification']['label'])}) — "
            "all rows are imported unlabeled, ready to annotate")))

    keys = pd.DataFrame({"text": texts.to_numpy(), "label": labels.to_numpy(),
                         "split": pd.Series(splits, dtype=object).fillna("").to_numpy()})
    _warn_duplicates(keys, bad, lines, unit, text_column, result)
    _warn_conflicting_labels(keys, bad, lines, unit, label_column, result)

    label_values = labels.tolist()
    result.rows = [
        {"text": text, "label": label or None, "split": split} if split else {"text": text, "label": label or None}
        for text, label, split, skip in zip(texts.tolist(), label_values, splits, bad.tolist()) if not skip
    ]
    result.labels = sorted({row["label"] for row in result.rows if row["label"]})


def _warn_duplicates(keys: pd.DataFrame, bad: np.ndarray, lines: list, unit: str, column: str,
                     result: ImportResult) -> None:
    duplicated = keys.duplicated(keep="first").to_numpy() & ~bad
    if not duplicated.any():
        return
    group = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(keys))).groupby(group).transform("min").to_numpy()
    for pos in np.flatnonzero(duplicated):
        result.warnings.append(Problem(lines[pos], column, (
            f"this row repeats {unit} {lines[first[pos]]} exactly — it is kept; delete it if it was not meant"), unit))


def _warn_conflicting_labels(keys: pd.DataFrame, bad: np.ndarray, lines: list, unit: str, column: str | None,
                             result: ImportResult) -> None:
    if column is None:
        return
    labeled = keys[(keys["label"] != "") & ~bad]
    if labeled.empty:
        return
    label_counts = labeled.groupby("text", sort=False)["label"].transform("nunique").to_numpy()
    for _, rows in labeled[label_counts > 1].groupby("text", sort=False):
        where = ", ".join(str(lines[pos]) for pos in rows.index)
        names = _quoted(dict.fromkeys(rows["label"]))
        result.warnings.append(Problem(lines[rows.index[0]], column, (
            f"the same text has different labels ({names}) on {unit}s {where} — keep one label"), unit))


def _validate_qa(frame: pd.DataFrame, result: ImportResult, lines: list, unit: str) -> None:
    mapping = result.mapping
    n = len(frame)
    contexts = _strings(frame[mapping["context"]]).tolist()
    questions = _strings(frame[mapping["question"]]).str.strip().tolist()
    answer_column = mapping.get("answer_text")
    start_column = mapping.get("answer_start")
    answers = _strings(frame[answer_column]).tolist() if answer_column else [None] * n
    starts = _strings(frame[start_column]).tolist() if start_column else [""] * n
    qids = _strings(frame[mapping["qid"]]).str.strip().tolist() if "qid" in mapping else [""] * n
    splits, bad_split = _splits(frame, result, lines, unit)
    if answer_column is None:
        result.warnings.append(Problem(None, "answer_text", (
            f"no answer column found (accepted names: {_quoted(FIELD_SYNONYMS['qa']['answer_text'])}) — "
            "questions are imported without answers, ready to annotate")))

    seen_rows: dict[tuple, int] = {}
    seen_qids: dict[str, int] = {}
    unanswerable = 0
    for pos in range(n):
        line = lines[pos]
        before = len(result.problems)
        context, question = contexts[pos], questions[pos]
        if not context.strip():
            result.problems.append(Problem(line, mapping["context"],
                                           "the context is empty — paste the passage or delete the row", unit))
        if not question:
            result.problems.append(Problem(line, mapping["question"],
                                           "the question is empty — write the question or delete the row", unit))
        answer, start = None, None
        if answer_column is not None:
            answer, start = _check_answer(context, answers[pos], starts[pos], line, unit, answer_column,
                                          start_column or "answer_start", result)
            unanswerable += answer == ""
        if len(result.problems) > before or bad_split[pos]:
            continue
        row = {"context": context, "question": question, "answer_text": answer, "answer_start": start}
        if qids[pos]:
            row["qid"] = qids[pos]
            if qids[pos] in seen_qids:
                result.warnings.append(Problem(line, mapping["qid"], (
                    f"id '{qids[pos]}' is also used on {unit} {seen_qids[qids[pos]]} — ids should be unique"), unit))
            seen_qids.setdefault(qids[pos], line)
        if splits[pos]:
            row["split"] = splits[pos]
        key = (context, question, answer, start, splits[pos])
        if key in seen_rows:
            result.warnings.append(Problem(line, mapping["question"], (
                f"this row repeats {unit} {seen_rows[key]} exactly — it is kept; delete it if it was not meant"), unit))
        seen_rows.setdefault(key, line)
        result.rows.append(row)
    if unanswerable:
        result.warnings.append(Problem(None, answer_column or "answer_text", (
            f"{unanswerable} question(s) have an empty answer and are imported as unanswerable — "
            "fill in the answer where that is not intended")))


def _check_answer(context: str, raw_answer: str, raw_start: str, line: int, unit: str, answer_column: str,
                  start_column: str, result: ImportResult) -> tuple[str | None, int | None]:
    """(answer_text, answer_start) after checking/fixing the offset; adds problems or warnings for this row."""
    raw_answer, raw_start = _unpack_answer(raw_answer, raw_start)
    answer = raw_answer.strip()
    start = None
    start_text = raw_start.strip()
    if start_text:
        start = _parse_start(start_text)
        if start is None:
            result.problems.append(Problem(line, start_column, (
                f"answer_start '{start_text}' is not a whole number ≥ 0 — write the character offset of the "
                "answer in the context, or leave it empty to have it found"), unit))
            return answer, None
        start += len(raw_answer) - len(raw_answer.lstrip())  # trimmed leading spaces move the answer right
    if answer == "":
        return "", None
    if not context.strip():
        return answer, start
    if start is not None and context[start:start + len(answer)] == answer:
        return answer, start
    found = _occurrences(context, answer)
    if not found:
        hint = ""
        lowered = context.lower().find(answer.lower())
        if lowered >= 0:
            hint = f" (it does appear as '{context[lowered:lowered + len(answer)]}' — capitalisation differs)"
        result.problems.append(Problem(line, answer_column, (
            f"'{_short(answer)}' does not occur in the context{hint} — correct the answer or the context"), unit))
        return answer, None
    if len(found) == 1:
        if start is not None:
            result.warnings.append(Problem(line, start_column, (
                f"answer_start {start} does not point at '{_short(answer)}'; corrected to {found[0]}, "
                "the only place it occurs"), unit))
        return answer, found[0]
    shown = ", ".join(str(position) for position in found[:_MAX_CANDIDATES_SHOWN])
    more = f" (and {len(found) - _MAX_CANDIDATES_SHOWN} more)" if len(found) > _MAX_CANDIDATES_SHOWN else ""
    if start is not None:
        result.problems.append(Problem(line, start_column, (
            f"answer_start {start} does not point at '{_short(answer)}', which occurs {len(found)} times "
            f"(at {shown}{more}) — set answer_start to the right one"), unit))
        return answer, None
    result.warnings.append(Problem(line, start_column, (
        f"'{_short(answer)}' occurs {len(found)} times in the context (at {shown}{more}); the first was used — "
        "add answer_start if another one is meant"), unit))
    return answer, found[0]


def _unpack_answer(answer: str, start: str) -> tuple[str, str]:
    """Accept Hugging Face style answers cells: {'text': [...], 'answer_start': [...]} or ["..."]."""
    stripped = answer.strip()
    if stripped[:1] not in ("{", "[") or not stripped.endswith(("}", "]")):
        return answer, start
    value = None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(stripped)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    if isinstance(value, dict) and isinstance(value.get("text"), list):
        texts, starts = value["text"], value.get("answer_start") or []
        if texts and isinstance(texts[0], str):
            return texts[0], (_cell(starts[0]) if starts and not start.strip() else start)
        if not texts:
            return "", ""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return (value[0] if value else ""), start
    return answer, start


def _parse_start(text: str) -> int | None:
    """A non-negative whole number ("12", also "12.0" as spreadsheets write it), else None."""
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isfinite(number) and number.is_integer() and number >= 0:
        return int(number)
    return None


def _occurrences(context: str, answer: str) -> list[int]:
    found, position = [], context.find(answer)
    while position >= 0:
        found.append(position)
        position = context.find(answer, position + 1)
    return found


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --------------------------------------------------------------------------------------------------- all in one


def load_file(source: Any, task: str, filename: str | None = None, mapping: dict | None = None) -> ImportResult:
    """read_table + detect_mapping + validate. Raises ImportFailed only when the file itself cannot be read."""
    _synonyms(task)
    return validate(read_table(source, filename), task, mapping)


__all__ = [
    "FIELD_SYNONYMS", "ImportFailed", "ImportResult", "Problem", "SPLIT_ALIASES", "detect_mapping", "load_file",
    "read_table", "validate", "to_csv_bytes", "to_hf_dataset", "to_jsonl_bytes", "to_squad_json",
]
