"""Import a large CSV/TSV or JSON Lines file chunk by chunk, so memory holds one chunk of rows, never the whole file.

``open_stream(path, task, ...)`` returns an :class:`ImportStream`, or None when the file cannot be streamed (JSON,
a format only the task reads, a task whose row checks need the whole file: ``Task.checks_in_chunks``); the caller
then reads it whole with ``importing.load_file``. ``ImportStream.batches()`` yields the good rows of each chunk, in
file order, for ``storage.create_dataset_streamed``, which writes each one as it comes and makes the dataset visible
only at the end. The rows are read, numbered and checked exactly as ``importing.load_file`` does (the same line and
row numbers, problems and warnings; repeats and conflicting labels across chunks through one ``FileChecks``), and
whatever stops the import is raised from the iterator, so storage removes what was already written:
``ImportFailed`` for an unreadable file, :class:`ImportProblems` (with every problem found) for bad rows.
"""
from __future__ import annotations

import codecs
import csv
import io
import logging
from pathlib import Path
from typing import Iterator

import pandas as pd

from core import tasks
from core.errors import UserError
from core.importing import (_COMPRESSED, _JSON_NUL, _JSON_SURROGATE, _LONE_SURROGATE, _NUL_STAND_IN, _SNIFF_CHARS,
                            ImportFailed, _cells_holding, _delimiter_name, _jsonl_record, _looks_binary,
                            _open_regular_file, _records_frame, _refuse_cells, _reject_duplicate_columns,
                            _sniff_delimiter, _tidy_delimited, validate)
from core.tasks.base import FileChecks, ImportResult

log = logging.getLogger(__name__)

STREAM_CHUNK_ROWS = 20_000     # rows read, checked and handed to storage at a time
_HEAD_CHARS = 1 << 20          # what is read first to sniff the delimiter and check the header
_BLOCK_BYTES = 1 << 20         # the encoding pass reads this much at a time
_JSON_LINES = (".jsonl", ".ndjson")
_NUL = ("a NUL character (\\x00)", "remove it (the file may be damaged)")
_SURROGATE = ("half of a UTF-16 surrogate pair (a \\uD800-\\uDFFF escape without its partner)",
              "write the character itself, or both halves of its escape")


class ImportProblems(UserError, ValueError):
    """Rows of a streamed file that cannot be imported: ``result`` holds every problem (and the warnings)."""

    def __init__(self, result: ImportResult):
        super().__init__(f"{len(result.problems)} problem(s)")
        self.result = result


def open_stream(path: Path | str, task: str, filename: str | None = None,
                mapping: dict | None = None) -> "ImportStream | None":
    """An ImportStream for a delimited file at ``path``, or None when it must be read whole. Raises ImportFailed
    for a file that is not a regular file, is over the size limit, empty, compressed or binary."""
    path = Path(path)
    name = filename or path.name
    suffix = Path(name).suffix.lower()
    if not tasks.get(task).checks_in_chunks or suffix == ".json":
        return None
    with _open_regular_file(path, streamed=True) as handle:
        head = handle.read(_BLOCK_BYTES)
        for magic, kind in _COMPRESSED.items():
            if head.startswith(magic):
                raise ImportFailed(f"{name} looks like {kind}, not text — extract or save it as CSV (UTF-8) and "
                                   "import that")
        handle.seek(0)
        encoding, has_text = _encoding(handle)
    if not has_text:
        raise ImportFailed(f"{name} is empty — choose a file that contains a header row and data rows")
    with _open_text(path, encoding) as text:
        head_text = text.read(_HEAD_CHARS)
    if _looks_binary(head_text[:_SNIFF_CHARS]):
        raise ImportFailed(f"{name} looks like a binary file — upload CSV, TSV, JSONL or SQuAD JSON")
    if suffix in _JSON_LINES:
        stream = ImportStream(path, task, name, encoding, None, mapping)
        stream.json_lines = _json_lines_columns(path, encoding, name)  # every line read once before any is stored
        return stream
    stripped = head_text.lstrip()
    if not stripped or (not suffix and stripped[:1] in "{["):
        return None  # JSON without a suffix, or a head of blanks: read whole
    head_text = head_text.replace("\x00", _NUL_STAND_IN)
    delimiter = _sniff_delimiter(head_text, prefer_tab=suffix in (".tsv", ".tab"))
    _reject_duplicate_columns(head_text, delimiter, name)
    return ImportStream(path, task, name, encoding, delimiter, mapping)


class ImportStream:
    """One streamed import; ``result`` (problems, warnings, mapping, labels, row count; no rows) is complete once
    ``batches()`` is exhausted."""

    def __init__(self, path: Path, task: str, label: str, encoding: str, delimiter: str | None,
                 mapping: dict | None):
        """``delimiter`` None: JSON Lines."""
        self.path, self.task, self.label = path, task, label
        self.encoding, self.delimiter, self.mapping = encoding, delimiter, mapping
        self.result = ImportResult(rows=[], problems=[], warnings=[], mapping={}, labels=[], task=task)
        self.json_lines: tuple[list[str], bool, bool] | None = None  # JSON Lines: columns, has NUL, has surrogate

    def batches(self) -> Iterator[list[dict]]:
        """The good rows of each chunk. After the first problem nothing more is yielded; the rest of the file is
        still checked so that every problem is reported, then ImportProblems is raised."""
        result, checks = self.result, FileChecks()
        file_level: set[tuple[str, str]] = set()
        labels: set[str] = set()
        nul_cells: list = []
        surrogate_cells: list = []
        next_row, stopped = 1, False
        frames = self._delimited_frames() if self.delimiter is not None else self._json_lines_frames()
        for frame, may_hold_nul, may_hold_surrogate in frames:
            if frame.empty:
                continue
            if may_hold_nul:
                nul_cells += _cells_holding(frame, self.label, (_NUL_STAND_IN, "\x00"), *_NUL)
            if may_hold_surrogate:
                surrogate_cells += _cells_holding(frame, self.label, _LONE_SURROGATE, *_SURROGATE)
            first_row, next_row = next_row, next_row + len(frame)
            if nul_cells or surrogate_cells or stopped:  # the file fails: only look for more of what fails it
                result.total_rows += len(frame)
                continue
            chunk = validate(frame, self.task, self.mapping, first_row=first_row, checks=checks)
            result.mapping, result.total_rows = chunk.mapping, result.total_rows + chunk.total_rows
            result.meta_columns = chunk.meta_columns
            result.problems += chunk.problems
            for warning in chunk.warnings:
                if warning.line is None:  # file-level: every chunk says it
                    if (warning.field, warning.message) in file_level:
                        continue
                    file_level.add((warning.field, warning.message))
                result.warnings.append(warning)
            labels.update(chunk.labels)
            if any(problem.line is None for problem in chunk.problems):
                stopped = True  # no column for a required field: the rows are not checked
            if not result.problems:
                yield chunk.rows
        if next_row == 1:
            raise ImportFailed(f"{self.label} has no data rows — add at least one row below the header")
        _refuse_cells(nul_cells, "line", self.label, *_NUL)
        _refuse_cells(surrogate_cells, "line", self.label, *_SURROGATE)
        checks.finish(result)
        result.warnings.sort(key=lambda item: -1 if item.line is None else item.line)
        result.labels = sorted(labels)
        log.info("%s: %d rows read and checked in chunks of %d", self.label, next_row - 1, STREAM_CHUNK_ROWS)
        if result.problems:
            raise ImportProblems(result)

    def _delimited_frames(self) -> Iterator[tuple[pd.DataFrame, bool, bool]]:
        """Each chunk of a delimited file as read_table's frame of it would hold those rows (index: the line), and
        whether it may hold a NUL (one was read by then)."""
        try:
            with _open_text(self.path, self.encoding) as raw:
                text = _NulStandIn(raw)
                reader = pd.read_csv(text, sep=self.delimiter, dtype=str, keep_default_na=False,
                                     skip_blank_lines=False, engine="c", chunksize=STREAM_CHUNK_ROWS)
                with reader:
                    first_line = 2
                    for chunk in reader:
                        yield _tidy_delimited(chunk, first_line), text.saw_nul, False
                        first_line += len(chunk)
        except pd.errors.EmptyDataError as exc:
            raise ImportFailed(f"{self.label} has no columns — the first line must be a header such as "
                               "'text,label'") from exc
        except (pd.errors.ParserError, csv.Error, ValueError) as exc:
            raise ImportFailed(f"cannot read {self.label} as {_delimiter_name(self.delimiter)}-separated text: "
                               f"{exc}. Wrap fields that contain the delimiter, quotes or line breaks in double "
                               'quotes (and double any quote inside: "")') from exc

    def _json_lines_frames(self) -> Iterator[tuple[pd.DataFrame, bool, bool]]:
        """Each chunk of a JSON Lines file as read_table's frame of it would hold those records (index: the line),
        and whether the file holds NUL or surrogate escapes."""
        columns, has_nul, has_surrogate = self.json_lines
        records, numbers = [], []
        for number, line in _numbered_lines(self.path, self.encoding):
            if not line.strip():
                continue
            records.append(_jsonl_record(line, number, self.label))
            numbers.append(number)
            if len(records) >= STREAM_CHUNK_ROWS:
                yield self._records(records, numbers, columns), has_nul, has_surrogate
                records, numbers = [], []
        if records:
            yield self._records(records, numbers, columns), has_nul, has_surrogate

    def _records(self, records: list[dict], numbers: list[int], columns: list[str]) -> pd.DataFrame:
        try:
            frame = _records_frame(records, numbers, "line")
        except RecursionError:
            raise ImportFailed(f"{self.label} nests lists or objects inside each other too deeply to read "
                               "(thousands of levels) — give one flat record per row") from None
        return frame.reindex(columns=columns).fillna("")


def _json_lines_columns(path: Path, encoding: str, label: str) -> tuple[list[str], bool, bool]:
    """A first pass over a JSON Lines file: every line is an object (else ImportFailed naming the first that is
    not, before anything is written), the columns in the order read_table's frame has them (first seen first),
    and whether any line holds a NUL or a surrogate escape (then cells are checked for them)."""
    columns: dict[str, None] = {}
    has_nul = has_surrogate = False
    try:
        for number, line in _numbered_lines(path, encoding):
            if not line.strip():
                continue
            record = _jsonl_record(line, number, label)
            flat = record.get("answers")
            if isinstance(flat, dict) and "answer_text" not in record:  # the Hugging Face SQuAD layout
                record = {**{key: None for key in record if key != "answers"}, "answer_text": None,
                          "answer_start": None}
            for key in record:
                columns.setdefault(str(key))
            has_nul = has_nul or "\x00" in line or bool(_JSON_NUL.search(line))
            has_surrogate = has_surrogate or bool(_JSON_SURROGATE.search(line))
    except RecursionError:
        raise ImportFailed(f"{label} nests lists or objects inside each other too deeply to read "
                           "(thousands of levels) — give one flat record per row") from None
    return list(columns), has_nul, has_surrogate


def _numbered_lines(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """The lines of a text file numbered as ``text.splitlines()`` of the whole file numbers them."""
    number = 0
    with _open_text(path, encoding) as text:
        for physical in text:
            for line in physical.splitlines():
                number += 1
                yield number, line


def _encoding(handle) -> tuple[str, bool]:
    """The encoding importing._decode would choose for the whole file (UTF-16 with a BOM, else UTF-8, else cp1252,
    else Latin-1), found in one pass of bounded blocks; and whether the file holds anything but whitespace."""
    head = handle.read(4)
    handle.seek(0)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", True
    has_text = False
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        handle.seek(0)
        try:
            while block := handle.read(_BLOCK_BYTES):
                has_text = has_text or bool(block.strip())
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return encoding, has_text
        except UnicodeDecodeError:
            continue
    return "latin-1", True


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(_open_regular_file(path, streamed=True), encoding=encoding, newline="")


class _NulStandIn(io.TextIOBase):
    """Text read from ``raw`` with NUL replaced by importing's stand-in (pandas' parser ends a field at NUL);
    ``saw_nul`` tells that one was replaced."""

    def __init__(self, raw: io.TextIOBase):
        super().__init__()
        self._raw, self.saw_nul = raw, False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        text = self._raw.read(size)
        if "\x00" in text:
            self.saw_nul = True
            text = text.replace("\x00", _NUL_STAND_IN)
        return text


__all__ = ["STREAM_CHUNK_ROWS", "ImportProblems", "ImportStream", "open_stream"]
