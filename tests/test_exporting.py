"""Tests for core.exporting: Excel-safe CSV, JSON Lines, SQuAD v2 JSON, datasets.Dataset, and export -> import."""
from __future__ import annotations

import csv
import io
import json

import pytest

from core.exporting import to_csv_bytes, to_hf_dataset, to_jsonl_bytes, to_squad_json
from core.importing import load_file

CLASSIFICATION_ROWS = [
    {"id": 1, "version": 3, "position": 0, "split": "train", "text": "Refund my order, please", "label": "billing"},
    {"id": 2, "version": 1, "position": 1, "split": None, "text": 'App says "crash"\nthen quits', "label": None},
    {"id": 3, "version": 1, "position": 2, "split": "test", "text": "café – naïve ünïcode", "label": "technical"},
]
CONTEXT_A = "Kestrel Lane was founded in 2009 in Marrowby. Marrowby is small."
CONTEXT_B = "Orders ship the same day."
QA_ROWS = [
    {"id": 10, "version": 1, "position": 0, "split": "train", "context": CONTEXT_A, "question": "When?",
     "answer_text": "2009", "answer_start": 28, "qid": "a1"},
    {"id": 11, "version": 2, "position": 1, "split": None, "context": CONTEXT_A, "question": "Where (second)?",
     "answer_text": "Marrowby", "answer_start": 46, "qid": "a2"},
    {"id": 12, "version": 1, "position": 2, "split": "validation", "context": CONTEXT_B, "question": "Who?",
     "answer_text": "", "answer_start": None, "qid": None},
]
TASK_FIELDS = {"classification": ["text", "label", "split"],
               "qa": ["context", "question", "answer_text", "answer_start", "qid", "split"]}


def _fields(rows: list[dict], task: str) -> list[dict]:
    """The task's fields of each row, with absent optional keys as None (as load_examples would give them)."""
    return [{name: row.get(name) for name in TASK_FIELDS[task]} for row in rows]


def test_csv_has_bom_header_and_ignores_extra_keys():
    data = to_csv_bytes(CLASSIFICATION_ROWS, "classification")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["text", "label", "split"]
    assert rows[2] == ['App says "crash"\nthen quits', "", ""]


def test_csv_neutralises_formula_injection():
    dangerous = ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    rows = [{"text": value, "label": "x"} for value in dangerous] + [{"text": "safe = fine", "label": "=y"}]
    parsed = list(csv.reader(io.StringIO(to_csv_bytes(rows, "classification").decode("utf-8-sig"))))
    assert [row[0] for row in parsed[1:]] == ["'" + value for value in dangerous] + ["safe = fine"]
    assert parsed[-1][1] == "'=y"
    # importing the exported file gives the original text back
    result = load_file(to_csv_bytes(rows, "classification"), "classification", filename="export.csv")
    assert [row["text"] for row in result.rows][:4] == dangerous[:4]
    assert result.rows[-1]["label"] == "=y"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_classification_round_trip(fmt):
    data = to_csv_bytes(CLASSIFICATION_ROWS, "classification") if fmt == "csv" else to_jsonl_bytes(
        CLASSIFICATION_ROWS, "classification")
    result = load_file(data, "classification", filename=f"export.{fmt}")
    assert result.ok, result.summary()
    assert _fields(result.rows, "classification") == _fields(CLASSIFICATION_ROWS, "classification")
    assert result.labels == ["billing", "technical"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_qa_round_trip(fmt):
    dashed = "-starts with a dash, 2009 again"
    rows = QA_ROWS + [{**QA_ROWS[0], "qid": "a3", "context": dashed, "answer_start": dashed.index("2009")}]
    data = to_csv_bytes(rows, "qa") if fmt == "csv" else to_jsonl_bytes(rows, "qa")
    result = load_file(data, "qa", filename=f"export.{fmt}")
    assert result.ok, result.summary()
    assert _fields(result.rows, "qa") == _fields(rows, "qa")


def test_jsonl_is_one_object_per_line():
    lines = to_jsonl_bytes(QA_ROWS, "qa").decode("utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2]) == {"qid": None, "context": CONTEXT_B, "question": "Who?", "answer_text": "",
                                    "answer_start": None, "split": "validation"}
    assert to_jsonl_bytes([], "qa") == b""


def test_squad_json_shape():
    document = to_squad_json(QA_ROWS, title="faq")
    assert document["version"] == "v2.0"
    (article,) = document["data"]
    assert article["title"] == "faq"
    assert [paragraph["context"] for paragraph in article["paragraphs"]] == [CONTEXT_A, CONTEXT_B]
    first, second = article["paragraphs"]
    assert first["qas"][1] == {"id": "a2", "question": "Where (second)?",
                               "answers": [{"text": "Marrowby", "answer_start": 46}], "is_impossible": False}
    assert second["qas"] == [{"id": "q3", "question": "Who?", "answers": [], "is_impossible": True}]


def test_squad_json_skips_unannotated_questions():
    rows = QA_ROWS + [{"context": CONTEXT_B, "question": "Not yet?", "answer_text": None, "answer_start": None}]
    questions = [qa["question"] for paragraph in to_squad_json(rows)["data"][0]["paragraphs"]
                 for qa in paragraph["qas"]]
    assert "Not yet?" not in questions and len(questions) == 3


def test_squad_round_trip():
    data = json.dumps(to_squad_json(QA_ROWS)).encode("utf-8")
    result = load_file(data, "qa", filename="export.json")
    assert result.ok, result.summary()
    expected = [{**row, "split": None, "qid": row["qid"] or "q3"} for row in _fields(QA_ROWS, "qa")]
    assert _fields(result.rows, "qa") == expected


def test_hf_dataset_classification():
    dataset = to_hf_dataset(CLASSIFICATION_ROWS, "classification")
    assert dataset.column_names == ["text", "label", "split"]
    assert dataset["label"] == ["billing", None, "technical"]


def test_hf_dataset_qa():
    dataset = to_hf_dataset(QA_ROWS, "qa")
    assert dataset.column_names == ["id", "context", "question", "answers", "split"]
    assert dataset[0]["answers"] == {"text": ["2009"], "answer_start": [28]}
    assert dataset[2]["answers"] == {"text": [], "answer_start": []}
    assert dataset[2]["id"] == "q3"
    assert len(to_hf_dataset([], "qa")) == 0


def test_unknown_task_rejected():
    with pytest.raises(ValueError, match="unknown task"):
        to_csv_bytes([], "translation")
