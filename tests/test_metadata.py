"""Metadata columns (issue 13, finding 8): an import file's columns that are no task field (ticket_id, channel...)
are kept with each row, shown in the Label grid and on the Data page, written to CSV / JSON Lines exports (SQuAD keeps
ids and titles) and passed through batch predictions, so results join back to the source."""
from __future__ import annotations

import csv
import io
import json

import pytest

from core import annotation, importing, storage
from core.exporting import export_bytes
from tests.conftest import QA_CONTEXTS, qa_rows, sentiment_rows

TICKETS_CSV = ("ticket_id,Customer message,channel,label\n"
               "T-1,I was charged twice,email,billing\n"
               "T-2,The app crashes,=HYPERLINK(\"http://x\"),technical\n"
               "T-3,Where is my parcel?,,\n")


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def _import(data: bytes, filename: str, task: str, name: str = "d") -> list[dict]:
    result = importing.load_file(data, task, filename=filename)
    assert result.ok, result.summary()
    storage.create_dataset(name, task, result.rows)
    return storage.load_examples(name)


# --------------------------------------------------------------------------------------------------- import

def test_csv_import_keeps_extra_columns_as_metadata_in_file_order(spanlab_home):
    result = importing.load_file(TICKETS_CSV.encode(), "classification", filename="tickets.csv")
    assert result.mapping == {"text": "Customer message", "label": "label"}  # "Customer message" is the text
    assert result.meta_columns == ["ticket_id", "channel"]
    examples = _import(TICKETS_CSV.encode(), "tickets.csv", "classification")
    assert [e["meta"] for e in examples] == [{"ticket_id": "T-1", "channel": "email"},
                                             {"ticket_id": "T-2", "channel": '=HYPERLINK("http://x")'},
                                             {"ticket_id": "T-3", "channel": ""}]
    assert list(examples[0]["meta"]) == ["ticket_id", "channel"]
    assert [e["text"] for e in examples] == ["I was charged twice", "The app crashes", "Where is my parcel?"]


@pytest.mark.parametrize("task, record", [
    ("classification", {"ticket_id": 7, "text": "refund please", "label": "billing", "channel": "chat"}),
    ("qa", {"ticket_id": 7, "context": QA_CONTEXTS[0], "question": "who founded acme ?", "answer_text": "alice",
            "channel": "chat"}),
    ("ner", {"ticket_id": 7, "text": "alice founded acme", "spans": [{"start": 0, "end": 5, "label": "PER"}],
             "channel": "chat"}),
])
def test_jsonl_import_keeps_extra_keys_for_every_task(spanlab_home, task, record):
    examples = _import(_jsonl([record]), "rows.jsonl", task)
    assert examples[0]["meta"] == {"ticket_id": "7", "channel": "chat"}  # kept as text, as every cell is read


def test_files_without_extra_columns_store_no_metadata(spanlab_home):
    examples = _import(b"text,label\ngood,pos\n", "plain.csv", "classification")
    assert examples[0]["meta"] is None


def test_import_is_still_written_in_batches_with_metadata(spanlab_home, monkeypatch):
    monkeypatch.setattr(storage, "IMPORT_BATCH_ROWS", 3)
    rows = [{"text": f"row {i}", "meta": {"ticket_id": f"T-{i}"}} for i in range(8)]
    storage.create_dataset("batched", "classification", rows)
    assert [e["meta"]["ticket_id"] for e in storage.load_examples("batched")] == [f"T-{i}" for i in range(8)]


def test_metadata_that_is_not_a_mapping_is_refused_naming_the_row(spanlab_home):
    with pytest.raises(storage.InvalidEditError, match="row 2: 'meta' must be a mapping"):
        storage.create_dataset("bad", "classification", [{"text": "a"}, {"text": "b", "meta": ["x"]}])


# --------------------------------------------------------------------------------------------------- column names

@pytest.mark.parametrize("column", ["Customer message", "customer_message", "MESSAGE", "Body", "comment",
                                    " Comment "])
def test_common_text_column_names_are_detected(column):
    for task in ("classification", "ner"):
        assert importing.detect_mapping(["ticket_id", column, "channel"], task)["text"] == column


def test_two_candidate_text_columns_use_one_and_say_how_to_choose_the_other():
    frame = importing.read_table(b"message,comment\nhello,note\n", "two.csv")
    result = importing.validate(frame, "classification")
    assert result.mapping["text"] == "message" and result.meta_columns == ["comment"]
    assert any("'comment' could be too" in str(w) and "--map text=COLUMN" in str(w) for w in result.warnings)
    chosen = importing.validate(frame, "classification", {"text": "comment"})
    assert chosen.rows[0]["text"] == "note" and chosen.rows[0]["meta"] == {"message": "hello"}
    assert not any("could be too" in str(w) for w in chosen.warnings)


# --------------------------------------------------------------------------------------------------- export

def _reimport(data: bytes, filename: str, task: str) -> list[dict]:
    result = importing.load_file(data, task, filename=filename)
    assert result.ok, result.summary()
    return result.rows


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_classification_export_round_trips_metadata_exactly(spanlab_home, file_format):
    examples = _import(TICKETS_CSV.encode(), "tickets.csv", "classification")
    data = export_bytes(examples, "classification", file_format)
    again = _reimport(data, f"out.{file_format}", "classification")
    assert [row["meta"] for row in again] == [e["meta"] for e in examples]
    assert [list(row["meta"]) for row in again] == [["ticket_id", "channel"]] * 3
    if file_format == "csv":
        header, second = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))[:3:2]
        assert header == ["text", "label", "split", "ticket_id", "channel"]
        assert second[4] == "'=HYPERLINK(\"http://x\")"  # neutralised like every other cell


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_qa_and_ner_exports_round_trip_metadata(spanlab_home, file_format):
    qa = [{**row, "ticket_id": f"Q{i}", "channel": "web"} for i, row in enumerate(qa_rows())]
    examples = _import(_jsonl(qa), "qa.jsonl", "qa", "qa")
    again = _reimport(export_bytes(examples, "qa", file_format), f"out.{file_format}", "qa")
    assert [row["meta"] for row in again] == [{"ticket_id": f"Q{i}", "channel": "web"} for i in range(len(qa))]

    ner = [{"text": "alice founded acme", "spans": [{"start": 0, "end": 5, "label": "PER"}], "ticket_id": "N1",
            "text_source": "crm"}]
    examples = _import(_jsonl(ner), "ner.jsonl", "ner", "ner")
    again = _reimport(export_bytes(examples, "ner", file_format), f"out.{file_format}", "ner")
    assert again[0]["meta"] == {"ticket_id": "N1", "text_source": "crm"}


def test_metadata_named_like_a_format_column_is_written_under_a_prefix(spanlab_home):
    rows = [{"text": "a", "label": None, "meta": {"split": "batch 4", "score": "1"}}]
    storage.create_dataset("clash", "classification", rows)
    data = export_bytes(storage.load_examples("clash"), "classification", "csv").decode("utf-8-sig")
    assert data.splitlines()[0] == "text,label,split,meta_split,score"


def test_squad_export_keeps_ids_and_titles(spanlab_home):
    def article(title, context, qid, question, answer):
        return {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": context.index(answer)}]}]}]}

    squad = {"data": [article("Acme", QA_CONTEXTS[0], "a1", "who founded acme ?", "alice"),
                      article("Globex", QA_CONTEXTS[1], "g1", "who founded globex ?", "bob")]}
    examples = _import(json.dumps(squad).encode(), "faq.json", "qa", "faq")
    assert [(e["qid"], e["meta"]) for e in examples] == [("a1", {"title": "Acme"}), ("g1", {"title": "Globex"})]
    document = json.loads(export_bytes(examples, "qa", "squad", title="faq"))
    assert [(article["title"], [qa["id"] for p in article["paragraphs"] for qa in p["qas"]])
            for article in document["data"]] == [("Acme", ["a1"]), ("Globex", ["g1"])]


def test_a_formula_like_column_name_is_neutralised_and_read_back(spanlab_home):
    examples = _import(b"text,=cmd|' /C calc'!A0\nhello,x\n", "odd.csv", "classification")
    assert examples[0]["meta"] == {"=cmd|' /C calc'!A0": "x"}
    data = export_bytes(examples, "classification", "csv")
    assert data.decode("utf-8-sig").splitlines()[0].endswith(",'=cmd|' /C calc'!A0")
    assert _reimport(data, "out.csv", "classification")[0]["meta"] == examples[0]["meta"]


# --------------------------------------------------------------------------------------------------- predict --file

def test_batch_predictions_keep_the_input_columns_in_order_and_neutralise_formulas(spanlab_home, tiny_model_dir,
                                                                                    tmp_path, capsys):
    from tests.test_cli import cli, write_csv
    tickets = tmp_path / "tickets.csv"
    tickets.write_text(TICKETS_CSV, encoding="utf-8")
    code, out, _ = cli(capsys, "import", str(tickets), "--task", "classification")
    assert code == 0 and out["metadata"] == ["ticket_id", "channel"] and out["mapping"]["text"] == "Customer message"
    data = write_csv(tmp_path / "reviews.csv", sentiment_rows(4), ["text", "label"])
    assert cli(capsys, "import", str(data), "--task", "classification")[0] == 0
    code, out, err = cli(capsys, "train", "--dataset", "reviews", "--model", str(tiny_model_dir), "--max-steps", "2",
                         "--batch-size", "8", "--device", "cpu", "--no-progress")
    assert code == 0 and out["status"] == "completed", err
    run = str(out["run"])
    source = tmp_path / "new.csv"
    source.write_text("ticket_id,Customer message,label,channel,score\n"
                      "T-1,great film,positive,=1+1,0.5\nT-2,awful food,,@SUM(A1),\n", encoding="utf-8")
    predictions = tmp_path / "predictions.csv"
    code, out, err = cli(capsys, "predict", run, "--file", str(source), "--out", str(predictions))
    assert code == 0 and out["predictions"] == 2, err
    rows = list(csv.reader(io.StringIO(predictions.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["text", "label", "score", "ticket_id", "input_label", "channel", "input_score"]
    assert [row[3:] for row in rows[1:]] == [["T-1", "positive", "'=1+1", "0.5"], ["T-2", "", "'@SUM(A1)", ""]]
    assert [row[0] for row in rows[1:]] == ["great film", "awful food"]
    code, out, _ = cli(capsys, "predict", run, "--file", str(source))  # JSON: the values as they are
    assert [(p["ticket_id"], p["channel"]) for p in out["predictions"]] == [("T-1", "=1+1"), ("T-2", "@SUM(A1)")]


def test_qa_batch_predictions_keep_the_question_ids(spanlab_home, tiny_model_dir, tmp_path, capsys):
    from tests.test_cli import cli, write_csv
    data = write_csv(tmp_path / "faq.csv", qa_rows(), ["context", "question", "answer_text", "answer_start"])
    assert cli(capsys, "import", str(data), "--task", "qa", "--name", "faq")[0] == 0
    code, out, err = cli(capsys, "train", "--dataset", "faq", "--model", str(tiny_model_dir), "--max-steps", "2",
                         "--max-length", "64", "--doc-stride", "16", "--device", "cpu", "--no-progress")
    assert code == 0 and out["status"] == "completed", err
    source = write_csv(tmp_path / "questions.csv",
                       [{"id": "q-7", "context": QA_CONTEXTS[0], "question": "who founded acme ?", "channel": "web"}],
                       ["id", "context", "question", "channel"])
    predictions = tmp_path / "answers.csv"
    code, _, err = cli(capsys, "predict", str(out["run"]), "--file", str(source), "--out", str(predictions))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(predictions.read_text(encoding="utf-8-sig"))))
    assert list(rows[0]) == ["question", "answers", "id", "channel"]
    assert (rows[0]["id"], rows[0]["channel"]) == ("q-7", "web") and json.loads(rows[0]["answers"])


# --------------------------------------------------------------------------------------------------- Label grid

def test_grid_frame_shows_metadata_as_read_only_columns(spanlab_home):
    _import(TICKETS_CSV.encode(), "tickets.csv", "classification", "tickets")
    frame, names = annotation.with_meta_columns(storage.examples_frame("tickets"))
    assert names == ["ticket_id", "channel"]
    assert frame["ticket_id"].tolist() == ["T-1", "T-2", "T-3"] and frame["channel"].tolist()[2] == ""
    storage.create_dataset("clash", "classification", [{"text": "a", "meta": {"id": "X", "note": "n"}},
                                                       {"text": "b"}])
    frame, names = annotation.with_meta_columns(storage.examples_frame("clash"))
    assert names == ["meta_id", "note"] and frame["meta_id"].tolist() == ["X", ""]
    assert frame["id"].tolist() == [e["id"] for e in storage.load_examples("clash")]  # the example id is untouched


def test_label_page_grid_shows_metadata(spanlab_home):
    from tests.test_app_data import open_app
    _import(TICKETS_CSV.encode(), "tickets.csv", "classification", "tickets")
    at = open_app("pages/label.py")
    at.radio(key="label_mode").set_value("Grid").run()
    assert not at.exception, at.exception
    grid = at.data_editor[0].value
    assert grid["ticket_id"].tolist() == ["T-1", "T-2", "T-3"] and "meta" not in grid.columns


def test_one_at_a_time_views_name_the_row_by_its_metadata(spanlab_home):
    from tests.test_app_data import open_app
    qa = [{**row, "ticket_id": f"Q{i}", "channel": "", "note": "*bold*"} for i, row in enumerate(qa_rows())]
    _import(_jsonl(qa), "qa.jsonl", "qa", "qa")
    assert annotation.meta_line(storage.load_examples("qa")[0]) == "ticket_id: Q0 · note: *bold*"
    at = open_app("pages/label.py")
    assert not at.exception, at.exception
    assert any(caption.value.endswith("· ticket_id: Q0 · note: &#42;bold&#42;") for caption in at.caption), \
        [caption.value for caption in at.caption]


# --------------------------------------------------------------------------------------------------- Data page

def test_data_page_preview_lists_the_columns_kept_as_metadata(spanlab_home):
    from tests.test_app_data import open_app
    at = open_app("pages/data.py")
    at.file_uploader[0].set_value(("tickets.csv", TICKETS_CSV.encode(), "text/csv")).run()
    assert not at.exception, at.exception
    kept = [caption.value for caption in at.caption if caption.value.startswith("Kept as metadata")]
    assert len(kept) == 1 and kept[0].endswith(": ticket_id, channel")


def test_label_studio_import_keeps_the_tasks_other_fields_and_id(spanlab_home):
    """A Label Studio export's other data fields (ticket ids, channels, nested objects) and the task id stay with each
    text, go out in exports, and a field named like SpanLab's own column gets a "data." prefix."""
    export = [
        {"id": 7, "data": {"text": "Alice met Bob.", "ticket_id": "T-9", "channel": "email", "spans": "old",
                           "extra": {"a": [1, 2]}, "score": 0.5, "empty": None},
         "annotations": [{"result": [{"type": "labels", "value": {"start": 0, "end": 5, "labels": ["PER"]}}]}]},
        {"id": 8, "data": {"text": "Carol left.", "ticket_id": "T-10"}, "annotations": []},
    ]
    examples = _import(json.dumps(export).encode(), "project.json", "ner", "ls")
    assert examples[0]["meta"] == {"id": "7", "ticket_id": "T-9", "channel": "email", "data.spans": "old",
                                   "extra": '{"a": [1, 2]}', "score": "0.5", "empty": ""}
    assert examples[1]["meta"] == {"id": "8", "ticket_id": "T-10", "channel": "", "data.spans": "", "extra": "",
                                   "score": "", "empty": ""}
    assert examples[0]["spans"] == [{"start": 0, "end": 5, "label": "PER"}] and examples[1]["spans"] is None
    again = _reimport(export_bytes(examples, "ner", "jsonl"), "out.jsonl", "ner")
    assert [row["meta"] for row in again] == [example["meta"] for example in examples]
