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
import os
import re
import stat
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from core import tasks
from core.errors import UserError
from core.exporting import to_csv_bytes, to_hf_dataset, to_jsonl_bytes, to_squad_json
from core.tasks.base import SPLIT_ALIASES, FileChecks, ImportResult, Problem, Rows, cell, quoted

TASKS = tasks.NAMES
FIELD_SYNONYMS: dict[str, dict[str, list[str]]] = {task.name: task.fields for task in tasks.ALL}
REQUIRED_FIELDS = {task.name: task.required for task in tasks.ALL}

_DELIMITERS = [",", "\t", ";", "|"]
_SNIFF_CHARS = 65536
# Cells that spreadsheets would run as formulas are exported with a leading apostrophe (see core.exporting), and
# so are cells that already start with apostrophes before such a character; reading a CSV removes one apostrophe
# again, so a round trip gives back the original text, and a user's own '=x means the text =x, as in a spreadsheet.
_ESCAPED_FORMULA = re.compile(r"^'(?='*[=+\-@\t\r])")
# Stands in for NUL while pandas parses delimited text (its C parser ends a field at NUL): found cells are reported.
_NUL_STAND_IN = "\uffff"
_JSON_NUL = re.compile(r"\\u0000", re.IGNORECASE)
_JSON_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f]")
_DEFAULT_MAX_IMPORT_MB = 500


def max_import_bytes() -> int:
    """The largest file import reads: SPANLAB_MAX_IMPORT_MB (default 500). A file is read whole, and its rows take
    about 10-15 times its size in memory while they are checked and stored."""
    try:
        megabytes = float(os.environ.get("SPANLAB_MAX_IMPORT_MB") or _DEFAULT_MAX_IMPORT_MB)
    except ValueError:
        megabytes = _DEFAULT_MAX_IMPORT_MB
    return int(megabytes * 2**20)


class ImportFailed(UserError, ValueError):
    """The file as a whole cannot be read (empty, binary, malformed...). The message says what to do."""


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list) -> dict:
    """json object_pairs_hook: a key given twice in one object is an error (json would keep only the last)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return record


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
    try:
        return _read_table(data, label, name, task)
    except RecursionError:
        raise ImportFailed(f"{label} nests lists or objects inside each other too deeply to read (thousands of "
                           "levels) — give one flat record per row") from None


_COMPRESSED = {b"PK\x03\x04": "an Excel workbook or a zip archive", b"\x1f\x8b": "a gzip archive",
               b"BZh": "a bzip2 archive", b"\xfd7zXZ": "an xz archive", b"7z\xbc\xaf": "a 7-Zip archive",
               b"(\xb5/\xfd": "a zstd archive", b"%PDF": "a PDF document", b"\xd0\xcf\x11\xe0": "an old Excel (.xls) file"}


def _read_table(data: bytes, label: str, name: str | None, task: str | None) -> pd.DataFrame:
    if not data.strip():
        raise ImportFailed(f"{label} is empty — choose a file that contains a header row and data rows")
    for magic, kind in _COMPRESSED.items():
        if data.startswith(magic):
            raise ImportFailed(f"{label} looks like {kind}, not text — extract or save it as CSV (UTF-8) and "
                               "import that")
    text = _decode(data)
    if _looks_binary(text[:_SNIFF_CHARS]):
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
    if "\x00" in text or _JSON_NUL.search(text):
        _reject_cells(frame, label, ("\x00", _NUL_STAND_IN), "a NUL character (\\x00)",
                      "remove it (the file may be damaged)")
    if _JSON_SURROGATE.search(text):
        _reject_cells(frame, label, _LONE_SURROGATE, "half of a UTF-16 surrogate pair (a \\uD800-\\uDFFF escape "
                      "without its partner)", "write the character itself, or both halves of its escape")
    return frame


def _looks_binary(head: str) -> bool:
    """Whether the first characters of a file are binary data rather than text with a stray NUL or two: many NULs
    (UTF-16 without a BOM, executables, images) or many other control characters."""
    controls = len(_CONTROL_CHARACTERS.findall(head))
    nuls = head.count("\x00")
    return controls > 0.1 * len(head) or (nuls >= 16 and nuls > 0.01 * len(head))


def _reject_cells(frame: pd.DataFrame, label: str, marks, what: str, fix: str) -> None:
    """ImportFailed naming the line (or record) and field of the first cell holding one of ``marks`` (strings, or
    a compiled pattern): characters no database stores faithfully."""
    _refuse_cells(_cells_holding(frame, label, marks, what, fix), frame.index.name or "line", label, what, fix)


def _cells_holding(frame: pd.DataFrame, label: str, marks, what: str, fix: str) -> list[tuple[Any, str]]:
    """(line, column) of every cell holding one of ``marks``; a column name holding one is an ImportFailed."""
    def holds(value: str) -> bool:
        return bool(marks.search(value)) if isinstance(marks, re.Pattern) else any(mark in value for mark in marks)

    for column in frame.columns:
        if holds(str(column)):
            raise ImportFailed(f"{label}: a column name in the header holds {what} — {fix}")
    found = []
    for column in frame.columns:
        values = frame[column].astype(str)
        if isinstance(marks, re.Pattern):
            hit = values.str.contains(marks.pattern, regex=True)
        else:
            hit = np.logical_or.reduce([values.str.contains(mark, regex=False).to_numpy() for mark in marks])
        found += [(line, str(column)) for line in frame.index[np.asarray(hit, dtype=bool)].tolist()]
    return found


def _refuse_cells(found: list[tuple[Any, str]], unit: str, label: str, what: str, fix: str) -> None:
    if found:
        found.sort(key=lambda item: item[0])
        line, column = found[0]
        more = f" ({len(found) - 1} more cell(s) like it)" if len(found) > 1 else ""
        raise ImportFailed(f"{unit} {line}, field '{column}' of {label} holds {what}{more} — {fix}; nothing was "
                           "imported")


def _source_bytes(source: Any, filename: str | None) -> tuple[bytes, str | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        _check_size(len(source), filename)
        return bytes(source), filename
    if isinstance(source, (str, Path)):
        path = Path(source)
        return _read_regular_file(path), filename or path.name
    if hasattr(source, "getvalue"):  # Streamlit UploadedFile, BytesIO
        data = bytes(source.getvalue())
        _check_size(len(data), filename or getattr(source, "name", None))
        return data, filename or getattr(source, "name", None)
    if hasattr(source, "read"):
        data = source.read(max_import_bytes() + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        _check_size(len(data), filename or getattr(source, "name", None))
        return bytes(data), filename or getattr(source, "name", None)
    raise ImportFailed(f"cannot read a {type(source).__name__}: pass a path, bytes or an uploaded file")


def _read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file within the size limit (see _open_regular_file)."""
    limit = max_import_bytes()
    with _open_regular_file(path) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(min(size, limit) + 1)  # read(n) sets n bytes aside first: no more than the file holds
            if len(data) > size:  # the file grew since: read on up to the limit
                data += handle.read(limit + 1 - len(data))
        except OSError as exc:
            raise ImportFailed(f"cannot read {path}: {exc.strerror or exc} — check the path") from exc
    _check_size(len(data), path.name)  # a file that grew while it was read
    return data


def _open_regular_file(path: Path, streamed: bool = False):
    """``path`` opened for binary reading if it is a regular file within the size limit. Opened without blocking,
    so a named pipe (FIFO) is refused at once instead of waiting for a writer; devices (/dev/zero) and folders are
    refused."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        raise ImportFailed(f"{path} is a folder — choose a file inside it") from None
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc} — check the path") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImportFailed(f"{path} is a folder — choose a file inside it")
        if not stat.S_ISREG(info.st_mode):
            kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else
                    "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                    "a socket" if stat.S_ISSOCK(info.st_mode) else "not a regular file")
            raise ImportFailed(f"{path} is {kind}, not a regular file — save the data to a file and import that")
        _check_size(info.st_size, path.name, streamed)
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb", closefd=True)
        fd = None
        return handle
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc} — check the path") from exc
    finally:
        if fd is not None:
            os.close(fd)


def _check_size(size: int, name: str | None, streamed: bool = False) -> None:
    limit = max_import_bytes()
    if size > limit:
        why = ("the database grows by about its size" if streamed else
               "a file is read whole and its rows take 10-15 times its size in memory")
        raise ImportFailed(f"{name or 'the file'} is larger than the import limit of {limit / 2**20:,.0f} MB: "
                           f"{why}. Split it into smaller files (and import them as separate datasets), or raise "
                           "SPANLAB_MAX_IMPORT_MB if this machine has the room")


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
    if "\x00" in text:
        text = text.replace("\x00", _NUL_STAND_IN)
    delimiter = _sniff_delimiter(text, prefer_tab)
    _reject_duplicate_columns(text, delimiter, label)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            skip_blank_lines=False, engine="c")
    except pd.errors.EmptyDataError as exc:
        raise ImportFailed(f"{label} has no columns — the first line must be a header such as 'text,label'") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise ImportFailed(f"cannot read {label} as {_delimiter_name(delimiter)}-separated text: {exc}. "
                           "Wrap fields that contain the delimiter, quotes or line breaks in double quotes "
                           '(and double any quote inside: "")') from exc
    return _tidy_delimited(frame, 2)


def _tidy_delimited(frame: pd.DataFrame, first_line: int) -> pd.DataFrame:
    """Rows of parsed delimited text (``first_line``: the line of the first, header = line 1) as read_table gives
    them: strings, blank rows dropped, a user's protective apostrophe before a formula character removed."""
    frame = frame.fillna("")  # rows shorter than the header
    frame.columns = [_ESCAPED_FORMULA.sub("", str(column)) for column in frame.columns]  # as exported (metadata)
    frame.index = pd.RangeIndex(first_line, first_line + len(frame), name="line")
    blank = (frame == "").all(axis=1)
    if blank.any():
        frame = frame[~blank]
    for column in frame.columns:
        values = frame[column]
        escaped = values.str.startswith("'")
        if escaped.any():
            frame[column] = values.where(~escaped, values.str.replace(_ESCAPED_FORMULA, "", regex=True))
    return frame


def _reject_duplicate_columns(text: str, delimiter: str, label: str) -> None:
    """ImportFailed naming a column that the header row names twice (pandas would rename the second 'label.1')."""
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return  # pandas reports the malformed text
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(header, start=1):
        if name.strip():
            positions.setdefault(name.strip(), []).append(number)
    repeated = {name: where for name, where in positions.items() if len(where) > 1}
    if repeated:
        names = "; ".join(f"'{name}' (columns {', '.join(map(str, where))})" for name, where in repeated.items())
        raise ImportFailed(f"line 1 of {label}: the header names a column more than once: {names} — give every "
                           "column its own name")


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}[delimiter]


def _read_jsonl(text: str, label: str) -> pd.DataFrame:
    records, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        records.append(_jsonl_record(line, number, label))
        numbers.append(number)
    return _records_frame(records, numbers, "line")


def _jsonl_record(line: str, number: int, label: str) -> dict:
    """The object on line ``number`` of a JSON Lines file; ImportFailed naming the line when it is not one."""
    try:
        record = json.loads(line, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise ImportFailed(f"line {number} of {label} gives the key '{exc.key}' twice in one object — keep "
                           "one of them") from None
    except json.JSONDecodeError as exc:
        raise ImportFailed(f"line {number} of {label} is not valid JSON ({exc.msg}, column {exc.colno}) — "
                           "JSON Lines needs one complete JSON object per line") from exc
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise ImportFailed(f"line {number} of {label} cannot be read: {exc} — shorten that value") from None
    if not isinstance(record, dict):
        raise ImportFailed(f"line {number} of {label} is a JSON {type(record).__name__}, not an object — "
                           'write one object per line, e.g. {"text": "...", "label": "..."}')
    return record


def _read_json(text: str, label: str) -> pd.DataFrame:
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise ImportFailed(f"{label} gives the key '{exc.key}' twice in one object — keep one of them") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines saved with a .json extension
            return _read_jsonl(text, label)
        raise ImportFailed(f"{label} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise ImportFailed(f"{label} cannot be read: {exc} — shorten that value") from None
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
                answers = _squad_answers(qa.get("answers"), f"{label}: {where}.qas[{q}]")
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
    frame = _string_frame(rows, columns, list(range(1, len(rows) + 1)), "record")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="record")
    return frame


def _squad_answers(answers: Any, where: str) -> list:
    """A SQuAD question's answers as a list of {"text", "answer_start"} objects. Accepts the list SQuAD uses, and the
    Hugging Face layout {"text": [...], "answer_start": [...]} (or one text and start) some files use instead."""
    if answers is None or answers == [] or answers == {}:
        return []
    if isinstance(answers, list):
        return answers
    if isinstance(answers, dict):
        texts, starts = answers.get("text"), answers.get("answer_start")
        texts = [] if texts is None else texts if isinstance(texts, list) else [texts]
        starts = [] if starts is None else starts if isinstance(starts, list) else [starts]
        if any(isinstance(value, (list, dict)) for value in texts + starts):
            raise ImportFailed(f"{where}.answers must list texts and start offsets, e.g. "
                               '{"text": ["Paris"], "answer_start": [12]}')
        return [{"text": text, "answer_start": starts[i] if i < len(starts) else None}
                for i, text in enumerate(texts)]
    raise ImportFailed(f"{where}.answers is a JSON {type(answers).__name__}, not a list — write "
                       '"answers": [{"text": ..., "answer_start": ...}] (or [] when there is no answer)')


def _string_frame(rows: list[dict], columns: list[str] | None, numbers: list, unit: str) -> pd.DataFrame:
    """A frame of strings; a lone surrogate (a JSON \\uD800 escape without its partner), which no text column can
    store, is an ImportFailed naming its row and field."""
    try:
        return pd.DataFrame(rows, columns=columns, dtype=str)
    except UnicodeEncodeError:
        for number, row in zip(numbers, rows):
            for key, value in row.items():
                if _LONE_SURROGATE.search(str(key)) or _LONE_SURROGATE.search(str(value)):
                    raise ImportFailed(f"{unit} {number}, field '{key.encode('utf-8', 'replace').decode()}' holds "
                                       "half of a UTF-16 surrogate pair (a \\uD800-\\uDFFF escape without its "
                                       "partner) — write the character itself, or both halves of its escape; "
                                       "nothing was imported") from None
        raise


def _records_frame(records: list[dict], numbers: Iterable[int], unit: str) -> pd.DataFrame:
    flat = []
    for number, record in zip(numbers, records):
        record = dict(record)
        answers = record.get("answers")
        if isinstance(answers, dict) and "answer_text" not in record:  # Hugging Face SQuAD layout
            first = _squad_answers(answers, f"{unit} {number}")[:1]
            record.pop("answers")
            record["answer_text"] = _cell(first[0]["text"]) if first else ""
            record["answer_start"] = _cell(first[0]["answer_start"]) if first else ""
        flat.append({str(key): _cell(value) for key, value in record.items()})
    frame = _string_frame(flat, None, list(numbers), unit).fillna("")
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


def validate(df: pd.DataFrame, task: str, mapping: dict | None = None, *, first_row: int = 1,
             checks: FileChecks | None = None) -> ImportResult:
    """Check every row of ``df`` for ``task``; explicit ``mapping`` entries (field -> column) override detection.

    A mapping value of None or "" leaves that field unmapped. A chunk of a streamed file passes its first row's
    number and the file's ``checks``; the caller then finishes those once every chunk is checked.
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
    used = set(result.mapping.values())
    result.meta_columns = [column for column in columns if column not in used]
    _warn_other_candidates(columns, task, mapping or {}, result)
    for field_name in tasks.get(task).required:
        if field_name not in result.mapping:
            result.problems.append(Problem(None, field_name, (
                f"no column for '{field_name}' — name a column {quoted(synonyms[field_name])} "
                f"or choose it in the column mapping (columns found: {quoted(columns) or 'none'})")))
    if result.problems:
        return result
    try:
        file_checks = checks or FileChecks()
        tasks.get(task).validate(Rows(frame, result, lines.tolist(), unit, first_row, file_checks))
        if checks is None:  # the whole file is here: its cross-row checks finish now
            file_checks.finish(result)
    except RecursionError:
        raise ImportFailed("a cell nests lists or objects inside each other too deeply to read (thousands of "
                           "levels) — give plain values") from None
    for found in (result.problems, result.warnings):  # file-level first, then in file order
        found.sort(key=lambda item: -1 if item.line is None else item.line)
    return result


def _warn_other_candidates(columns: list[str], task: str, explicit: dict, result: ImportResult) -> None:
    """A warning for each guessed field that more than one column could be (e.g. 'message' and 'comment' both look
    like the text): the guess is used, the others are kept as metadata, and the warning says how to choose."""
    for field_name, chosen in result.mapping.items():
        if explicit.get(field_name):
            continue
        names = {_normalise_name(name) for name in FIELD_SYNONYMS[task][field_name]}
        others = [column for column in result.meta_columns if _normalise_name(column) in names]
        if others:
            result.warnings.append(Problem(None, chosen, (
                f"'{chosen}' is used as the {field_name}, but {quoted(others)} could be too (kept as metadata) — "
                f"to use another, map it: --map {field_name}=COLUMN on the command line, or the column mapping "
                "on the Data page")))


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
    try:
        data, name = _source_bytes(source, filename)
    except ImportFailed:  # read_table, called next, says what is wrong with the file
        return tasks.ALL[0].name
    text = _decode(data)
    suffix = Path(name).suffix.lower() if name else ""
    try:
        for task in tasks.ALL:
            if task.claims(text, suffix):
                return task.name
        frame = read_table(data, name)
    except (ImportFailed, RecursionError):
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
