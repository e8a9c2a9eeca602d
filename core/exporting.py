"""Write dataset rows back out: each task names its formats (``task.exports``); the writers they share live here.

``rows`` are dicts as returned by ``core.storage.load_examples``; keys other than a format's columns (id, version,
position, ...) are ignored, except ``meta`` (the import file's other columns): CSV and JSON Lines write each metadata
column after the format's own, under its own name (``meta_`` + name where that is one of the format's columns), so
a file exported and imported again keeps them. CSV is Excel-safe (UTF-8 with BOM, formula-like cells and column
names neutralised). Every format reads back through ``core.importing.load_file``.
"""
from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any, Iterable

from core import tasks

if TYPE_CHECKING:
    import datasets

# A spreadsheet treats a cell starting with one of these as a formula (CSV/formula injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: Any) -> Any:
    """Prefix an apostrophe to text a spreadsheet would run as a formula, and to text that already starts with
    apostrophes before such a character (so that reading the file back, which removes one apostrophe, gives the
    text exactly); other values are returned unchanged."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


META_KEY = "meta"


def meta_names(rows: Iterable[dict], taken: Iterable[str], prefix: str = "meta_") -> dict[str, str]:
    """Each metadata column of ``rows`` (first-seen order) -> the name it is written under: its own, or ``prefix``
    before it (repeated as needed) where that name is taken by one of the output's own columns."""
    used, names = set(taken), {}
    for row in rows:
        for key in row.get(META_KEY) or {}:
            if key not in names:
                name = key
                while name in used:
                    name = prefix + name
                names[key] = name
                used.add(name)
    return names


def with_meta(records: list[dict], rows: list[dict], prefix: str) -> tuple[list[dict], list[str]]:
    """``records`` (one per row of ``rows``) each followed by its row's metadata columns (named by meta_names), and
    the column names in order: the records' own keys, then the metadata's."""
    own = list(dict.fromkeys(key for record in records for key in record))
    names = meta_names(rows, own, prefix)
    flat = [{**record, **{names[key]: value for key, value in (row.get(META_KEY) or {}).items()}}
            for record, row in zip(records, rows)]
    return flat, own + list(names.values())


def _meta_cells(row: dict, names: dict[str, str]) -> dict:
    meta = row.get(META_KEY) or {}
    return {name: meta.get(key) for key, name in names.items()}


def csv_bytes(rows: Iterable[dict], columns: list[str]) -> bytes:
    """CSV with a header, UTF-8 with BOM (so Excel detects the encoding), formula-like cells and column names
    neutralised. Empty values become empty cells; lists and dicts are written as JSON. The rows' metadata columns
    follow ``columns``."""
    rows = list(rows)
    names = meta_names(rows, columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise_formula(str(column)) for column in [*columns, *names.values()]])
    for row in rows:
        cells = []
        values = {**{column: row.get(column) for column in columns}, **_meta_cells(row, names)}
        for value in values.values():
            if isinstance(value, (list, dict)):
                value = json.dumps(value, ensure_ascii=False)
            cells.append("" if value is None else neutralise_formula(value))
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8-sig")


def jsonl_bytes(rows: Iterable[dict], columns: list[str]) -> bytes:
    """One JSON object per line (UTF-8, no BOM) with ``columns``, then the row's metadata columns; missing values
    are null."""
    rows = list(rows)
    names = meta_names(rows, columns)
    lines = [json.dumps({**{column: row.get(column) for column in columns}, **_meta_cells(row, names)},
                        ensure_ascii=False) for row in rows]
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


def export_bytes(rows: Iterable[dict], task: str, file_format: str, title: str = "spanlab") -> bytes:
    """``rows`` of a ``task`` dataset in ``file_format`` (one of ``task.exports``)."""
    formats = tasks.get(task).exports
    if file_format not in formats:
        raise ValueError(f"a {task} dataset exports as {', '.join(formats)}, not {file_format!r}")
    return formats[file_format].write(list(rows), title)


def to_csv_bytes(rows: Iterable[dict], task: str) -> bytes:
    return export_bytes(rows, task, "csv")


def to_jsonl_bytes(rows: Iterable[dict], task: str) -> bytes:
    return export_bytes(rows, task, "jsonl")


def to_squad_json(rows: Iterable[dict], title: str = "spanlab") -> dict:
    """A QA dataset as a SQuAD v2.0 document (see core.tasks.qa.to_squad_json)."""
    from core.tasks.qa import to_squad_json as squad
    return squad(rows, title)


def to_hf_dataset(rows: Iterable[dict], task: str) -> "datasets.Dataset":
    """A ``datasets.Dataset`` in the task's usual layout (QA: SQuAD v2's, questions not yet annotated left out)."""
    return tasks.get(task).hf_dataset(list(rows))


__all__ = ["csv_bytes", "export_bytes", "jsonl_bytes", "meta_names", "neutralise_formula", "to_csv_bytes",
           "to_hf_dataset", "to_jsonl_bytes", "to_squad_json", "with_meta"]
