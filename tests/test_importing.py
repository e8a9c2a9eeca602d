"""Tests for core.importing: reading every supported format, column mapping, and each row-validation rule."""
from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from core.importing import (
    ImportFailed,
    Problem,
    detect_mapping,
    load_file,
    read_table,
    validate,
)

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _problem_strings(result) -> list[str]:
    return [str(problem) for problem in result.problems]


# ------------------------------------------------------------------------------------------------ reading formats


def test_utf8_bom_csv(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\nhéllo wörld,greeting\n".encode("utf-8"))
    frame = read_table(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == ["héllo wörld"]


def test_cp1252_fallback(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes("text,label\ncafé au lait – 5 €,food\n".encode("cp1252"))
    frame = read_table(path)
    assert frame["text"].tolist() == ["café au lait – 5 €"]


def test_latin1_bytes_that_cp1252_cannot_decode():
    data = b"text,label\nabc\x81def,x\n"  # 0x81 is undefined in cp1252
    assert read_table(data, "odd.csv")["text"].tolist() == ["abc\x81def"]


def test_tsv(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("text\tlabel\nhello, world; again\tgreeting\n", encoding="utf-8")
    frame = read_table(path)
    assert frame.to_dict("records") == [{"text": "hello, world; again", "label": "greeting"}]


def test_semicolon_separated_csv_is_sniffed():
    data = "text;label\nBonjour, ça va;salutation\nDeux, trois;nombre\n".encode("utf-8")
    frame = read_table(data, "european.csv")
    assert frame["label"].tolist() == ["salutation", "nombre"]
    assert frame["text"].tolist() == ["Bonjour, ça va", "Deux, trois"]


def test_crlf_with_quoted_newline():
    data = b'text,label\r\n"first line\r\nsecond line",a\r\nplain,b\r\n'
    frame = read_table(data, "windows.csv")
    assert len(frame) == 2
    assert frame["text"].iloc[0].splitlines() == ["first line", "second line"]
    assert frame["label"].tolist() == ["a", "b"]
    assert frame.index.tolist() == [2, 3]


def test_values_stay_strings_na_and_none_are_text():
    frame = read_table(b"text,label\nNA,None\nnull,1\n", "x.csv")
    assert frame["text"].tolist() == ["NA", "null"]
    assert frame["label"].tolist() == ["None", "1"]
    result = validate(frame, "classification")
    assert result.labels == ["1", "None"]


def test_jsonl(tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [{"sentence": "good", "category": "pos"}, {"sentence": "bad", "category": None, "n": 3}]
    path.write_text(json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n", encoding="utf-8")
    frame = read_table(path)
    assert frame["sentence"].tolist() == ["good", "bad"]
    assert frame["category"].tolist() == ["pos", ""]
    assert frame["n"].tolist() == ["", "3"]
    assert frame.index.tolist() == [1, 3]  # physical line numbers, blank line skipped


def test_jsonl_saved_as_json_is_accepted():
    data = b'{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n'
    assert read_table(data, "export.json")["text"].tolist() == ["a", "b"]


def test_jsonl_with_hugging_face_answers():
    record = {"id": "1", "context": "The sky is blue.", "question": "Colour?",
              "answers": {"text": ["blue"], "answer_start": [11]}}
    result = load_file(json.dumps(record).encode(), "qa", filename="hf.jsonl")
    assert result.ok, result.summary()
    assert result.rows == [{"context": "The sky is blue.", "question": "Colour?", "answer_text": "blue",
                            "answer_start": 11, "qid": "1"}]


def _squad_document() -> dict:
    return {"version": "v2.0", "data": [{"title": "Geo", "paragraphs": [
        {"context": "Paris is the capital of France.", "qas": [
            {"id": "q1", "question": "What is the capital of France?",
             "answers": [{"text": "Paris", "answer_start": 0}, {"text": "Paris", "answer_start": 0}]},
            {"id": "q2", "question": "What is the capital of Spain?", "answers": [], "is_impossible": True,
             "plausible_answers": [{"text": "Paris", "answer_start": 0}]},
        ]},
        {"context": "Rome is in Italy.", "qas": [
            {"id": "q3", "question": "Where is Rome?", "answers": [{"text": "Italy", "answer_start": 11}]},
        ]},
    ]}]}


def test_squad_json_is_flattened(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(_squad_document()), encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["id", "title", "context", "question", "answer_text", "answer_start"]
    assert frame["answer_text"].tolist() == ["Paris", "", "Italy"]
    assert frame["answer_start"].tolist() == ["0", "", "11"]
    assert frame.index.name == "record"
    result = validate(frame, "qa")
    assert result.ok
    assert [row["qid"] for row in result.rows] == ["q1", "q2", "q3"]
    assert result.rows[1]["answer_text"] == "" and result.rows[1]["answer_start"] is None


def test_squad_problem_uses_record_numbers():
    document = _squad_document()
    document["data"][0]["paragraphs"][1]["qas"][0]["answers"][0]["text"] = "Spain"
    result = load_file(json.dumps(document).encode(), "qa", filename="squad.json")
    assert _problem_strings(result) == [
        "row 3, field 'answer_text': 'Spain' does not occur in the context — correct the answer or the context"]


def test_sources_bytes_path_string_and_file_like(tmp_path):
    data = b"text,label\nhi,x\n"
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    upload = io.BytesIO(data)
    upload.name = "upload.csv"
    for source in (data, path, str(path), upload):
        assert read_table(source, None if source is not data else "a.csv")["text"].tolist() == ["hi"]


@pytest.mark.parametrize("data, filename, fragment", [
    (b"", "empty.csv", "is empty"),
    (b"   \n\n", "blank.csv", "is empty"),
    (b"text,label\n", "header.csv", "no data rows"),
    (b'{"foo": 1}', "thing.json", "not in SQuAD format"),
    (b'{"data": [{"title": "x"}]}', "bad.json", "no 'paragraphs'"),
    (b'{"data": [{"paragraphs": [{"qas": []}]}]}', "bad.json", "no 'context'"),
    (b"{not json", "bad.json", "not valid JSON"),
    (b'{"text": "a"}\n{"text": \n', "bad.jsonl", "line 2"),
    (b"[1, 2]\n", "list.jsonl", "not an object"),
    (b"PK\x03\x04rest-of-zip", "book.xlsx", "Excel"),
    (b'text,label\n"unterminated,x\nnext,y\n', "quote.csv", "double quotes"),
])
def test_unreadable_files_raise_import_failed(data, filename, fragment):
    with pytest.raises(ImportFailed, match=fragment):
        read_table(data, filename)


def test_missing_path_raises_import_failed(tmp_path):
    with pytest.raises(ImportFailed, match="cannot read"):
        read_table(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------------------------ mapping


def test_detect_mapping_synonyms_case_and_spaces():
    assert detect_mapping([" Review ", "SENTIMENT", "Fold"], "classification") == {
        "text": " Review ", "label": "SENTIMENT", "split": "Fold"}
    assert detect_mapping(["Passage", "Query", "Answer Text", "start", "question_id"], "qa") == {
        "context": "Passage", "question": "Query", "answer_text": "Answer Text", "answer_start": "start",
        "qid": "question_id"}
    assert detect_mapping(["foo", "bar"], "classification") == {}


def test_detect_mapping_prefers_exact_answer_text_column():
    assert detect_mapping(["answers", "answer_text", "context", "question"], "qa")["answer_text"] == "answer_text"


def test_detect_mapping_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        detect_mapping(["text"], "translation")


def test_explicit_mapping_overrides_detection():
    frame = read_table(b"body,text,tag\nreal text,not this,x\n", "m.csv")
    result = validate(frame, "classification", mapping={"text": "body", "label": "tag"})
    assert result.ok
    assert result.mapping == {"text": "body", "label": "tag"}
    assert result.rows == [{"text": "real text", "label": "x", "meta": {"text": "not this"}}]  # kept as metadata


def test_explicit_mapping_can_unmap_a_field():
    frame = read_table(b"text,label\na,x\n", "m.csv")
    result = validate(frame, "classification", mapping={"label": None})
    assert result.rows == [{"text": "a", "label": None, "meta": {"label": "x"}}]  # the column is kept as metadata


def test_explicit_mapping_to_missing_column_is_a_problem():
    frame = read_table(b"text,label\na,x\n", "m.csv")
    result = validate(frame, "classification", mapping={"label": "Category"})
    assert not result.ok
    message = str(result.problems[0])
    assert "field 'label'" in message and "'Category'" in message and "'text', 'label'" in message


def test_missing_required_column_names_synonyms_and_columns_found():
    result = load_file(b"words,label\nhello,x\n", "classification", filename="x.csv")
    assert not result.ok and result.rows == []
    message = str(result.problems[0])
    assert message.startswith("field 'text': no column for 'text'")
    assert "'sentence'" in message and "'utterance'" in message and "columns found: 'words', 'label'" in message


def test_missing_qa_question_column():
    result = load_file(b"context,answer\nabc,b\n", "qa", filename="x.csv")
    assert [problem.field for problem in result.problems] == ["question"]
    assert "'query'" in str(result.problems[0])


# ------------------------------------------------------------------------------------------------ classification rules


def test_empty_text_is_a_problem_with_line_and_field():
    result = load_file(b"Text,label\nok,x\n   ,y\nfine,\n", "classification", filename="x.csv")
    assert _problem_strings(result) == ["row 2 (line 3), field 'Text': the text is empty — write the text or delete the row"]
    assert result.rows == [{"text": "ok", "label": "x"}, {"text": "fine", "label": None}]
    assert result.total_rows == 3


def test_unlabeled_rows_and_trimming():
    result = load_file(b'text,label\n"  padded text  ",  billing \nno label,\n', "classification", filename="x.csv")
    assert result.ok
    assert result.rows == [{"text": "padded text", "label": "billing"}, {"text": "no label", "label": None}]
    assert result.labels == ["billing"]


def test_no_label_column_imports_unlabeled_with_warning():
    result = load_file(b"text\nfirst\nsecond\n", "classification", filename="x.csv")
    assert result.ok
    assert [row["label"] for row in result.rows] == [None, None]
    assert "no label column" in str(result.warnings[0])


def test_split_values_normalised_and_unknown_split_is_a_problem():
    data = b"text,label,split\na,x,Train\nb,x,DEV\nc,x,val\nd,x,eval\ne,x,test\nf,x,\ng,x,holdout\n"
    result = load_file(data, "classification", filename="x.csv")
    assert [row.get("split") for row in result.rows] == ["train", "validation", "validation", "validation", "test",
                                                         None]
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.line, problem.field) == (8, "split")
    assert "'holdout'" in problem.message and "train, validation or test" in problem.message


def test_line_numbers_count_blank_lines():
    result = load_file(b"text,label\na,x\n\n,y\n", "classification", filename="x.csv")
    assert [problem.line for problem in result.problems] == [4]


def test_duplicate_rows_are_warned_and_kept():
    result = load_file(b"text,label\nsame,x\nother,y\nsame,x\n", "classification", filename="x.csv")
    assert result.ok and len(result.rows) == 3
    assert [str(warning) for warning in result.warnings] == [
        "row 3 (line 4), field 'text': this row repeats row 1 exactly — it is kept; delete it if it was not meant"]


def test_conflicting_labels_for_same_text_are_warned():
    result = load_file(b"text,label\nsame,x\nsame,y\n", "classification", filename="x.csv")
    assert result.ok
    assert "different labels ('x', 'y') on lines 2, 3" in str(result.warnings[0])


def test_dataframe_without_line_index_counts_from_two():
    frame = pd.DataFrame({"text": ["a", None], "label": ["x", "y"]})
    result = validate(frame, "classification")
    assert [(problem.line, problem.field) for problem in result.problems] == [(3, "text")]


def test_100k_rows_validate():
    lines = ["text,label,split"] + [f"message number {i},{('billing', 'technical', '')[i % 3]},"
                                    f"{('train', 'dev', 'test')[i % 3]}" for i in range(100_000)]
    result = load_file("\n".join(lines).encode(), "classification", filename="big.csv")
    assert result.ok
    assert len(result.rows) == 100_000
    assert result.labels == ["billing", "technical"]
    assert result.rows[1] == {"text": "message number 1", "label": "technical", "split": "validation"}


# ------------------------------------------------------------------------------------------------ QA rules


def _qa(rows: list[tuple], header: str = "context,question,answer,answer_start"):
    frame = pd.DataFrame([dict(zip(header.split(","), map(str, row))) for row in rows])
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    return validate(frame, "qa")


CTX = "Paris is big. Lyon is smaller than Paris."


def test_qa_answer_not_in_context():
    result = _qa([(CTX, "Which city?", "Marseille", "")])
    assert _problem_strings(result) == [
        "row 1 (line 2), field 'answer': 'Marseille' does not occur in the context — correct the answer or the context"]
    assert result.rows == []


def test_qa_answer_with_wrong_case_gets_a_hint():
    result = _qa([(CTX, "Which city?", "lyon", "")])
    assert "capitalisation differs" in result.problems[0].message


def test_qa_answer_start_not_an_integer():
    result = _qa([(CTX, "q", "Lyon", "fourteen"), (CTX, "q2", "Lyon", "14.0")])
    assert [(problem.line, problem.field) for problem in result.problems] == [(2, "answer_start")]
    assert "'fourteen' is not a whole number" in result.problems[0].message
    assert result.rows[0]["answer_start"] == 14


def test_qa_wrong_start_fixed_when_answer_occurs_once():
    result = _qa([(CTX, "Which smaller city?", "Lyon", "3")])
    assert result.ok
    assert result.rows[0]["answer_start"] == 14
    assert str(result.warnings[0]) == ("row 1 (line 2), field 'answer_start': answer_start 3 does not point at 'Lyon'; "
                                       "corrected to 14, the only place it occurs")


def test_qa_wrong_start_with_several_occurrences_is_a_problem():
    result = _qa([(CTX, "Which city?", "Paris", "5")])
    assert not result.ok
    problem = result.problems[0]
    assert (problem.line, problem.field) == (2, "answer_start")
    assert "occurs 2 times (at 0, 35)" in problem.message


def test_qa_missing_start_filled_silently_when_unique():
    result = _qa([(CTX, "Which smaller city?", "Lyon", "")])
    assert result.ok and result.warnings == []
    assert result.rows[0]["answer_start"] == 14


def test_qa_missing_start_with_several_occurrences_uses_first_and_warns():
    result = _qa([(CTX, "Which city?", "Paris", "")])
    assert result.ok
    assert result.rows[0]["answer_start"] == 0
    assert result.warnings[0].line == 2 and "occurs 2 times" in result.warnings[0].message


def test_qa_correct_start_among_several_occurrences_is_kept():
    result = _qa([(CTX, "Which city?", "Paris", "35")])
    assert result.ok and result.warnings == []
    assert result.rows[0]["answer_start"] == 35


def test_qa_unanswerable_is_counted_as_a_warning():
    result = _qa([(CTX, "Who is mayor?", "", ""), (CTX, "Population?", "  ", "")])
    assert result.ok
    assert [row["answer_text"] for row in result.rows] == ["", ""]
    assert [row["answer_start"] for row in result.rows] == [None, None]
    assert len(result.warnings) == 1 and "2 question(s) have an empty answer" in result.warnings[0].message


def test_qa_empty_context_and_question_are_problems():
    result = _qa([("  ", "q", "x", ""), (CTX, " ", "Lyon", "")])
    assert [(problem.line, problem.field) for problem in result.problems] == [(2, "context"), (3, "question")]


def test_qa_context_whitespace_kept_and_answer_trimmed():
    context = "  Lyon is smaller.  "
    result = _qa([(context, " Which? ", " Lyon ", "1")])
    assert result.ok
    assert result.rows[0] == {"context": context, "question": "Which?", "answer_text": "Lyon", "answer_start": 2}
    assert result.warnings == []


def test_qa_without_answer_column_imports_unannotated():
    result = _qa([(CTX, "Which city?")], header="context,question")
    assert result.ok
    assert result.rows[0]["answer_text"] is None and result.rows[0]["answer_start"] is None
    assert "no answer column" in str(result.warnings[0])


def test_qa_hugging_face_answers_cell_in_csv():
    cell = "{'text': ['Lyon'], 'answer_start': [14]}"
    result = _qa([(CTX, "Which smaller city?", cell)], header="context,question,answers")
    assert result.ok
    assert result.rows[0]["answer_text"] == "Lyon" and result.rows[0]["answer_start"] == 14


def test_qa_duplicate_rows_and_ids_warned():
    result = _qa([("q1", CTX, "Which?", "Lyon"), ("q1", CTX, "Which?", "Lyon")], header="id,context,question,answer")
    assert result.ok and len(result.rows) == 2
    messages = [str(warning) for warning in result.warnings]
    assert any("id 'q1' is also used on line 2" in message for message in messages)
    assert any("repeats line 2" in message for message in messages)


# ------------------------------------------------------------------------------------------------ reporting


def test_problem_str():
    assert str(Problem(7, "answer", "'Paris' does not occur in the context — correct the answer or the context")) == (
        "line 7, field 'answer': 'Paris' does not occur in the context — correct the answer or the context")
    assert str(Problem(None, "text", "missing")) == "field 'text': missing"


def test_summary_truncates_long_problem_lists():
    lines = ["text,label"] + [",x"] * 30
    result = load_file("\n".join(lines).encode(), "classification", filename="x.csv")
    assert len(result.problems) == 30
    summary = result.summary(max_items=5)
    assert summary.startswith("30 problem(s): 30 of 30 rows cannot be imported")
    assert "row 5 (line 6), field 'text'" in summary and "line 7)" not in summary
    assert "... and 25 more" in summary


def test_summary_when_ok():
    assert load_file(b"text,label\na,x\n", "classification", filename="x.csv").summary() == "1 rows ready to import."


# ------------------------------------------------------------------------------------------------ samples


@pytest.mark.parametrize("name, task, rows, labels", [
    ("support_tickets.csv", "classification", 80, ["account", "billing", "shipping", "technical"]),
    ("product_reviews.csv", "classification", 60, ["negative", "positive"]),
    ("company_faq_qa.csv", "qa", 40, []),
])
def test_sample_files_import_without_problems(name, task, rows, labels):
    result = load_file(SAMPLES / name, task)
    assert result.ok, result.summary()
    assert len(result.rows) == rows
    assert result.labels == labels
    if task == "classification":
        counts = Counter(row["label"] for row in result.rows if row["label"])
        assert len(set(counts.values())) == 1  # balanced
    else:
        assert all(row["answer_start"] is not None or row["answer_text"] == "" for row in result.rows)
        assert 0 < sum(row["answer_text"] == "" for row in result.rows) < 5
        assert all("corrected" not in warning.message for warning in result.warnings)
