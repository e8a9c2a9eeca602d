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

import codecs
import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from core import tasks
from core.exporting import to_csv_bytes, to_hf_dataset, to_jsonl_bytes, to_squad_json
from core.tasks.base import SPLIT_ALIASES, ImportResult, Problem, Rows, cell, quoted

TASKS = tasks.NAMES
FIELD_SYNONYMS: dict[str, dict[str, list[str]]] = {task.name: task.fields for task in tasks.ALL}
REQUIRED_FIELDS = {task.name: task.required for task in tasks.ALL}

_DELIMITERS = [",", "\t", ";", "|"]
_SNIFF_CHARS = 65536
# Cells that spreadsheets would run as formulas are exported with a leading apostrophe (see core.exporting);
# reading a CSV removes that apostrophe again so a round trip gives back the original text.
_ESCAPED_FORMULA = re.compile(r"^'(?=[=+\-@\t\r])")


class ImportFailed(ValueError):
    """The file as a whole cannot be read (empty, binary, malformed...). The message says what to do."""


# --------------------------------------------------------------------------------------------------- reading


def read_table(source: Any, filename: str | None = None, task: str | None = None) -> pd.DataFrame:
    """Read a path, bytes or file-like upload into a DataFrame of strings.

    A ``task`` may read formats of its own first (entity spans: CoNLL columns, Label Studio JSON). Otherwise the
    format follows the file name's extension (``filename`` or the path's): .jsonl/.ndjson JSON Lines, .json SQuAD
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
    own = tasks.get(task).read(text, suffix, label) if task else None
    if own is not None:
        frame = own
    elif suffix in (".jsonl", ".ndjson"):
        frame = _read_jsonl(text, label)
    elif suffix == ".json" or (not suffix and stripped[:1] in "{["):
        frame = _read_json(text, label)
    else:
        frame = _read_delimited(text, label, prefer_tab=suffix in (".tsv", ".tab"))
    if frame.empty:
        problems = frame.attrs.get("problems") or []
        if problems:
            line, _, message = problems[0]
            more = f" ({len(problems) - 1} more problem(s) like it)" if len(problems) > 1 else ""
            where = f"line {line} of {label}" if line is not None else label
            raise ImportFailed(f"{where}: {message}{more}")
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


_cell = cell


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
    return tasks.get(task).fields


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
    for field_name in tasks.get(task).required:
        if field_name not in result.mapping:
            result.problems.append(Problem(None, field_name, (
                f"no column for '{field_name}' — name a column {quoted(synonyms[field_name])} "
                f"or choose it in the column mapping (columns found: {quoted(columns) or 'none'})")))
    if result.problems:
        return result
    tasks.get(task).validate(Rows(frame, result, lines.tolist(), unit))
    for found in (result.problems, result.warnings):  # file-level first, then in file order
        found.sort(key=lambda item: -1 if item.line is None else item.line)
    return result


def _resolve_mapping(columns: list[str], task: str, explicit: dict | None, result: ImportResult) -> dict[str, str]:
    mapping = detect_mapping(columns, task)
    for field_name, column in (explicit or {}).items():
        if field_name not in FIELD_SYNONYMS[task]:
            result.problems.append(Problem(None, str(field_name), (
                f"'{field_name}' is not a field of a {task} dataset — map only {quoted(FIELD_SYNONYMS[task])}")))
        elif column is None or column == "":
            mapping.pop(field_name, None)
        elif str(column) not in columns:
            result.problems.append(Problem(None, field_name, (
                f"the mapping points at column '{column}', which is not in the file "
                f"(columns found: {quoted(columns)}) — pick one of those")))
        else:
            for other, used in list(mapping.items()):  # an explicitly chosen column is not also guessed elsewhere
                if used == str(column) and other not in (explicit or {}):
                    mapping.pop(other)
            mapping[field_name] = str(column)
    return mapping


# --------------------------------------------------------------------------------------------------- all in one


def guess_task(source: Any, filename: str | None = None) -> str:
    """The task a file most likely holds: one whose own format it is (a CoNLL file), else the task whose required
    fields its columns give, preferring the one that needs more of them (QA over classification), then the one
    the columns' contents suit best (entity spans in a JSON column)."""
    data, name = _source_bytes(source, filename)
    text = _decode(data)
    suffix = Path(name).suffix.lower() if name else ""
    for task in tasks.ALL:
        if task.claims(text, suffix):
            return task.name
    try:
        frame = read_table(data, name)
    except ImportFailed:
        return tasks.ALL[0].name
    columns = [str(column) for column in frame.columns]

    def fit(task) -> tuple:
        mapping = detect_mapping(columns, task.name)
        fits = set(task.required) <= mapping.keys()
        return (fits, len(task.required) if fits else 0, task.affinity(frame, mapping) if fits else 0,
                -tasks.ALL.index(task))

    return max(tasks.ALL, key=fit).name



def load_file(source: Any, task: str, filename: str | None = None, mapping: dict | None = None) -> ImportResult:
    """read_table + detect_mapping + validate. Raises ImportFailed only when the file itself cannot be read."""
    _synonyms(task)
    return validate(read_table(source, filename, task), task, mapping)


__all__ = [
    "FIELD_SYNONYMS", "ImportFailed", "ImportResult", "Problem", "SPLIT_ALIASES", "detect_mapping", "guess_task",
    "load_file",
    "read_table", "validate", "to_csv_bytes", "to_hf_dataset", "to_jsonl_bytes", "to_squad_json",
]
