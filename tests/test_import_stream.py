"""Streamed import (issue 12, finding 9): a CSV/TSV or JSON Lines file larger than one chunk is read, checked and
written chunk by chunk, with the same rows, line numbers, problems and warnings as reading it whole, and nothing
visible after a failure in a late chunk. Memory itself is measured by bench/import_memory.py, not here."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from core import import_stream, importing, storage
from core.__main__ import main
from core.importing import ImportFailed

CHUNK = 7


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 rows and storage batches of 5, and no whole-file read: a file of 100 rows must stream."""
    monkeypatch.setattr(import_stream, "STREAM_CHUNK_ROWS", CHUNK)
    monkeypatch.setattr(storage, "IMPORT_BATCH_ROWS", 5)

    def read_whole(*args, **kwargs):
        raise AssertionError("the file was read whole instead of streamed")
    monkeypatch.setattr(importing, "_read_regular_file", read_whole)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def rows_text(n: int, seed: int = 3) -> tuple[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    rows = [(f"review {i}: {'good' if i % 3 else 'bad'} film, \"{rng.random():.4f}\"",
             rng.choice(["pos", "neg", "mixed"])) for i in range(n)]
    body = "".join(f'"{text.replace(chr(34), chr(34) * 2)}",{label}\n' for text, label in rows)
    return "text,label\n" + body, rows


def nothing_stored() -> None:
    assert storage.list_datasets() == []
    with storage.reading() as session:  # no staged (invisible) dataset or rows left behind either
        assert session.query(storage.Dataset).count() == 0
        assert session.query(storage.Example).count() == 0


def test_every_row_arrives_in_order_with_its_label(spanlab_home, tmp_path, capsys, small_chunks):
    text, rows = rows_text(100)
    path = write(tmp_path / "reviews.csv", text)
    code, out, err = cli(capsys, "import", str(path), "--task", "classification", "--json")
    assert code == 0, err
    examples = storage.load_examples("reviews")
    assert [(e["text"], e["label"]) for e in examples] == rows
    info = storage.get_dataset("reviews")
    assert info["rows"] == 100 and info["labels"] == ["mixed", "neg", "pos"]
    assert '"rows": 100' in out


def test_a_problem_in_a_late_chunk_names_its_line_and_leaves_nothing(spanlab_home, tmp_path, capsys, small_chunks,
                                                                     monkeypatch):
    text, _ = rows_text(100)
    lines = text.splitlines(keepends=True)
    lines[95] = ",pos\n"  # line 96 of the file: row 95, an empty text
    path = write(tmp_path / "late.csv", "".join(lines))
    removed = []
    remove_staged = storage._remove_staged
    monkeypatch.setattr(storage, "_remove_staged", lambda dataset_id: (removed.append(dataset_id),
                                                                       remove_staged(dataset_id)))
    code, _, err = cli(capsys, "import", str(path), "--task", "classification")
    assert code == 2, err
    assert "1 problem(s); nothing was imported" in err
    assert "row 95 (line 96), field 'text': the text is empty" in err
    assert removed  # earlier chunks had been written, and were removed again
    nothing_stored()


def test_a_late_malformed_line_and_a_late_nul_are_named(spanlab_home, tmp_path, capsys, small_chunks):
    text, _ = rows_text(60)
    path = write(tmp_path / "fields.csv", text + "one,two,three\n")
    code, _, err = cli(capsys, "import", str(path), "--task", "classification")
    assert code == 2 and "Expected 2 fields in line 62, saw 3" in err, err
    path = write(tmp_path / "nul.csv", text + "ba\x00d,pos\nfine,neg\nag\x00ain,neg\n")
    code, _, err = cli(capsys, "import", str(path), "--task", "classification")
    assert code == 2, err
    assert "line 62, field 'text' of nul.csv holds a NUL character (\\x00) (1 more cell(s) like it)" in err
    nothing_stored()


def test_a_label_outside_the_given_set_in_a_late_chunk(spanlab_home, tmp_path, capsys, small_chunks):
    text, rows = rows_text(40)
    path = write(tmp_path / "set.csv", text)
    first_mixed = next(i for i, (_, label) in enumerate(rows, start=1) if label == "mixed")
    code, _, err = cli(capsys, "import", str(path), "--task", "classification", "--labels", "pos", "neg")
    assert code == 2, err
    assert f"row {first_mixed}: label 'mixed' is not in the label set" in err
    nothing_stored()


@pytest.mark.parametrize("name, text", [
    ("repeats.csv", "Text;Category;split\n" + "".join(
        f"text {i % 11};{'ab'[i % 2] if i % 5 else ''};{['train', 'dev', '', 'bogus'][i % 4]}\n" for i in range(90))
     + "\n\n;a;\n'=1+1;b;test\n"),
    ("blank lines.tsv", "text\tlabel\n" + "".join("\n" if i % 9 == 0 else f"t{i % 13}\t{i % 3}\n" for i in range(80))),
    ("nolabel.csv", "body\n" + "".join(f"text {i % 17}\n" for i in range(50))),
    ("nocolumn.csv", "words,label\n" + "".join(f"w{i},a\n" for i in range(30))),
    ("records.jsonl", "".join(
        "\n" if i % 13 == 0 else
        f'{{"text": "t {i % 9}", "n": {i}}}\n' if i < 20 else
        f'{{"split": "{["train", "x", ""][i % 3]}", "text": "t {i % 9}\u2028", "label": "{"abc"[i % 3]}"}}\r\n'
        for i in range(60)) + '{"text": "", "label": "a"}\n'),
    ("separators.jsonl", "".join(
        "\n" if i % 13 == 0 else
        f'{{"split": "{["train", "x", ""][i % 3]}", "text": "t {i % 9}", "label": "{"abc"[i % 3]}"}}\r\n'
        for i in range(60)) + '{"text": "", "label": "a"}\x0c\n{"text": "last", "answers": {"text": ["a"]}}\n'),
    ("mixed.ndjson", "".join(f'{{"Sentence": "s{i % 7}", "Category": {i % 2}}}\n' for i in range(40))),
])
def test_streamed_checks_match_reading_the_file_whole(tmp_path, monkeypatch, name, text):
    """Problems, warnings (repeats and conflicting labels across chunks too), labels and rows are those of
    importing.load_file, whatever the chunk size."""
    path = write(tmp_path / name, text)
    try:
        whole = importing.load_file(path, "classification")
    except ImportFailed as error:  # a file that cannot be read fails the same way streamed
        with pytest.raises(ImportFailed) as streamed_error:
            list(import_stream.open_stream(path, "classification").batches())
        assert str(streamed_error.value) == str(error)
        return
    for chunk in (1, 4, CHUNK, 10_000):
        monkeypatch.setattr(import_stream, "STREAM_CHUNK_ROWS", chunk)
        stream = import_stream.open_stream(path, "classification")
        streamed = []
        try:
            for batch in stream.batches():
                streamed += batch
        except import_stream.ImportProblems as error:
            assert error.result is stream.result
        result = stream.result
        assert [str(p) for p in result.problems] == [str(p) for p in whole.problems]
        assert [str(w) for w in result.warnings] == [str(w) for w in whole.warnings]
        assert (result.labels, result.mapping, result.total_rows) == (whole.labels, whole.mapping, whole.total_rows)
        if whole.ok:
            assert streamed == whole.rows


def test_a_late_bad_json_line_is_named_before_anything_is_written(spanlab_home, tmp_path, capsys, small_chunks,
                                                                  monkeypatch):
    lines = [f'{{"text": "t{i}", "label": "a"}}\n' for i in range(50)]
    lines[44] = '{"text": "t44", "label": "a"\n'
    path = write(tmp_path / "late.jsonl", "".join(lines))
    monkeypatch.setattr(storage, "_store_dataset", lambda *a, **k: pytest.fail("the import began to write"))
    with pytest.raises(ImportFailed, match="line 45 of late.jsonl is not valid JSON"):
        import_stream.open_stream(path, "classification")
    code, _, err = cli(capsys, "import", str(path), "--task", "classification")
    assert code == 2 and "line 45 of late.jsonl is not valid JSON" in err, err


def test_a_late_nul_escape_in_json_lines_is_named(spanlab_home, tmp_path, capsys, small_chunks):
    lines = [f'{{"text": "t{i}", "label": "a"}}\n' for i in range(50)]
    lines[40] = '{"text": "t\\u0000", "label": "a"}\n'
    path = write(tmp_path / "nul.jsonl", "".join(lines))
    code, _, err = cli(capsys, "import", str(path), "--task", "classification")
    assert code == 2 and "line 41, field 'text' of nul.jsonl holds a NUL character" in err, err
    nothing_stored()


def test_files_that_need_reading_whole_are_not_streamed(tmp_path):
    bare_json = write(tmp_path / "records", '[{"text": "x", "label": "a"}]')
    table = write(tmp_path / "a.csv", "context,question\nc,q\n")
    assert import_stream.open_stream(write(tmp_path / "a.json", '[{"text": "x"}]'), "classification") is None
    assert import_stream.open_stream(bare_json, "classification") is None
    assert import_stream.open_stream(table, "qa") is None  # QA's checks count over the whole file
    assert import_stream.open_stream(table, "classification") is not None
    with pytest.raises(ImportFailed, match="is empty"):
        import_stream.open_stream(write(tmp_path / "blank.csv", " \n\n"), "classification")


def test_streamed_rows_keep_their_other_columns_as_metadata(spanlab_home, tmp_path, capsys, small_chunks):
    """The metadata columns (issue 13, finding 8) survive streaming: every chunk's rows carry them, and the import's
    JSON names them once."""
    import json
    lines = "".join(f"T-{i},review {i},{'pos' if i % 2 else 'neg'},{'mail' if i % 3 else 'chat'}\n" for i in range(40))
    path = write(tmp_path / "tickets.csv", "ticket_id,text,label,channel\n" + lines)
    code, out, err = cli(capsys, "import", str(path), "--task", "classification", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["metadata"] == ["ticket_id", "channel"]
    examples = storage.load_examples("tickets")
    assert [e["meta"] for e in examples] == [{"ticket_id": f"T-{i}", "channel": "mail" if i % 3 else "chat"}
                                             for i in range(40)]
