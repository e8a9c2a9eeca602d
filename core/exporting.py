"""Write dataset rows back out: CSV (Excel-safe), JSON Lines, SQuAD v2 JSON and Hugging Face ``datasets.Dataset``.

``rows`` are dicts as returned by ``core.storage.load_examples``; keys other than the task's fields (id, version,
position, updated_at...) are ignored. Every format here reads back through ``core.importing.load_file``.
"""
from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    import datasets

EXPORT_COLUMNS = {
    "classification": ["text", "label", "split"],
    "qa": ["qid", "context", "question", "answer_text", "answer_start", "split"],
}
# A spreadsheet treats a cell starting with one of these as a formula (CSV/formula injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _columns(task: str) -> list[str]:
    if task not in EXPORT_COLUMNS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(EXPORT_COLUMNS)}")
    return EXPORT_COLUMNS[task]


def _records(rows: Iterable[dict], task: str) -> list[dict[str, Any]]:
    columns = _columns(task)
    return [{column: row.get(column) for column in columns} for row in rows]


def neutralise_formula(value: Any) -> Any:
    """Prefix an apostrophe to text a spreadsheet would run as a formula; other values are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def to_csv_bytes(rows: Iterable[dict], task: str) -> bytes:
    """CSV with a header, UTF-8 with BOM (so Excel detects the encoding), formula-like cells neutralised.

    Empty values (unlabeled, no split, unannotated answer) become empty cells.
    """
    columns = _columns(task)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for record in _records(rows, task):
        writer.writerow(["" if record[column] is None else neutralise_formula(record[column]) for column in columns])
    return buffer.getvalue().encode("utf-8-sig")


def to_jsonl_bytes(rows: Iterable[dict], task: str) -> bytes:
    """One JSON object per line (UTF-8, no BOM) with the task's fields; missing values are null."""
    lines = [json.dumps(record, ensure_ascii=False) for record in _records(rows, task)]
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


def _annotated_qa(rows: Iterable[dict]) -> list[dict]:
    """QA rows that have an answer decision ("" = unanswerable); rows still to annotate (None) are left out."""
    return [row for row in _records(rows, "qa") if row["answer_text"] is not None]


def _question_id(row: dict, number: int) -> str:
    return str(row["qid"]) if row.get("qid") not in (None, "") else f"q{number}"


def to_squad_json(rows: Iterable[dict], title: str = "spanlab") -> dict:
    """SQuAD v2.0 document: one article, one paragraph per distinct context (first-seen order).

    Unanswerable questions (answer_text "") get ``is_impossible: true`` and no answers. Questions not yet annotated
    (answer_text None) and the split are not representable in SQuAD and are left out.
    """
    paragraphs: dict[str, dict] = {}
    for number, row in enumerate(_annotated_qa(rows), start=1):
        paragraph = paragraphs.setdefault(row["context"], {"context": row["context"], "qas": []})
        answerable = row["answer_text"] != ""
        paragraph["qas"].append({
            "id": _question_id(row, number),
            "question": row["question"],
            "answers": [{"text": row["answer_text"], "answer_start": int(row["answer_start"])}] if answerable else [],
            "is_impossible": not answerable,
        })
    return {"version": "v2.0", "data": [{"title": title, "paragraphs": list(paragraphs.values())}]}


def to_hf_dataset(rows: Iterable[dict], task: str) -> "datasets.Dataset":
    """A ``datasets.Dataset``. Classification: text, label (None = unlabeled), split. QA: SQuAD v2 layout
    (id, context, question, answers {text: [...], answer_start: [...]}, split); questions not yet annotated are left
    out, unanswerable ones have empty answer lists."""
    from datasets import Dataset, Features, List, Value

    if task == "classification":
        records = _records(rows, task)
        features = Features({"text": Value("string"), "label": Value("string"), "split": Value("string")})
        columns = {name: [record[name] for record in records] for name in features}
        return Dataset.from_dict(columns, features=features)
    _columns(task)
    records = _annotated_qa(rows)
    features = Features({
        "id": Value("string"), "context": Value("string"), "question": Value("string"),
        "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
        "split": Value("string"),
    })
    columns = {
        "id": [_question_id(record, number) for number, record in enumerate(records, start=1)],
        "context": [record["context"] for record in records],
        "question": [record["question"] for record in records],
        "answers": [
            {"text": [record["answer_text"]], "answer_start": [int(record["answer_start"])]}
            if record["answer_text"] else {"text": [], "answer_start": []}
            for record in records
        ],
        "split": [record["split"] for record in records],
    }
    return Dataset.from_dict(columns, features=features)


__all__ = ["EXPORT_COLUMNS", "neutralise_formula", "to_csv_bytes", "to_hf_dataset", "to_jsonl_bytes", "to_squad_json"]
