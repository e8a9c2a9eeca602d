"""Issue 12, bad input and configuration: formula cells stay neutralised on every way out, broken files, databases and
output paths give ``error: ...`` with exit code 2 (never a traceback, never a hang), real bugs still show one."""
from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import main
from core.errors import UserError
from core.exporting import csv_bytes
from core.importing import ImportFailed, load_file, read_table

ROOT = Path(__file__).resolve().parent.parent
DANGEROUS = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|'/C calc'!A0"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


# --------------------------------------------------------------------------------------- finding 1: formula cells


def test_predict_file_out_neutralises_formula_cells(spanlab_home, tiny_model_dir, tmp_path, capsys):
    rows = [{"text": value} for value in DANGEROUS] + [{"text": "'=x"}, {"text": "''=y"}, {"text": "plain"}]
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(rows, ["text"]))  # as exported: apostrophes protect the formula-like cells
    raw = tmp_path / "raw.csv"
    with open(raw, "w", newline="", encoding="utf-8") as handle:  # as a hostile user writes it: no protection
        csv.writer(handle).writerows([["text"], *[[value] for value in DANGEROUS]])
    for path in (source, raw):
        out = tmp_path / f"out-{path.stem}.csv"
        code, _, err = run_cli(capsys, "predict", str(tiny_model_dir), "--file", str(path), "--out", str(out))
        assert code == 0, err
        written = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
        header, cells = written[0], [cell for row in written[1:] for cell in row]
        assert "text" in header and cells
        live = [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert live == [], live  # every cell a spreadsheet would run starts with an apostrophe instead
        texts = [row[header.index("text")] for row in written[1:]]
        assert texts[:len(DANGEROUS)] == ["'" + value for value in DANGEROUS]
        if path is source:  # what came in protected goes out protected, the same cells
            assert texts == [row[0] for row in csv.reader(source.read_text(encoding="utf-8-sig").splitlines()[1:])]


def test_user_apostrophe_is_kept_and_round_trips_exactly(spanlab_home, tmp_path, capsys):
    """A cell '=x means the text =x (as a spreadsheet reads it); text that itself starts with apostrophes before a
    formula character keeps them through export and import."""
    source = write(tmp_path / "mine.csv", "text,label\n'=x,a\n''=y,b\n'plain,a\n+1,b\n")
    code, _, err = run_cli(capsys, "import", str(source), "--task", "classification", "--name", "mine")
    assert code == 0, err
    from core import storage
    assert [row["text"] for row in storage.load_examples("mine")] == ["=x", "'=y", "'plain", "+1"]
    exported = tmp_path / "out.csv"
    assert run_cli(capsys, "export", "mine", "--out", str(exported))[0] == 0
    cells = [row[0] for row in csv.reader(exported.read_text(encoding="utf-8-sig").splitlines()[1:])]
    assert cells == ["'=x", "''=y", "'plain", "'+1"]  # none live: the cells the user wrote
    code, _, err = run_cli(capsys, "import", str(exported), "--task", "classification", "--name", "again")
    assert code == 0, err
    assert [row["text"] for row in storage.load_examples("again")] == ["=x", "'=y", "'plain", "+1"]


# --------------------------------------------------------------------------------------- finding 8: tracebacks


def test_squad_answers_given_as_an_object(tmp_path):
    document = {"data": [{"title": "t", "paragraphs": [{"context": "paris is big", "qas": [
        {"id": "1", "question": "what?", "answers": {"text": ["paris"], "answer_start": [0]}},
        {"id": "2", "question": "what?", "answers": {"text": "paris", "answer_start": 0}},
        {"id": "3", "question": "why?", "answers": {}}]}]}]}
    result = load_file(json.dumps(document).encode(), "qa", filename="hf.json")
    assert result.ok, result.summary()
    listed = json.loads(json.dumps(document))
    listed["data"][0]["paragraphs"][0]["qas"][2]["answers"] = []
    unanswered = load_file(json.dumps(listed).encode(), "qa", filename="squad.json").rows[2]
    pairs = [(row["answer_text"], row["answer_start"]) for row in result.rows]
    assert pairs == [("paris", 0), ("paris", 0), (unanswered["answer_text"], unanswered["answer_start"])]
    document["data"][0]["paragraphs"][0]["qas"][0]["answers"] = "paris"
    with pytest.raises(ImportFailed, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers is a JSON str"):
        read_table(json.dumps(document).encode(), "bad.json")
    with pytest.raises(ImportFailed, match="line 1.answers must list texts"):
        read_table(b'{"context": "c", "question": "q", "answers": {"text": [["x"]]}}\n', "bad.jsonl")


@pytest.mark.parametrize("name, text", [
    ("deep.json", "[" * 100_000 + "]" * 100_000),
    ("deep.jsonl", '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
    ("deep-cell.csv", "text,entities\nbob,\"" + "[" * 50_000 + "]" * 50_000 + "\"\n"),
])
@pytest.mark.parametrize("task", ["classification", "qa", "ner"])
def test_deeply_nested_json_is_a_user_error(spanlab_home, tmp_path, capsys, name, text, task):
    code, _, err = run_cli(capsys, "import", str(write(tmp_path / name, text)), "--task", task)
    assert code in (0, 2) and "Traceback" not in err, err
    if name.endswith(".json") or task == "ner":  # a nested cell is only read as JSON by the task that needs it
        assert code == 2 and err.startswith("error: "), err


@pytest.fixture
def broken_home(tmp_path, monkeypatch):
    """SPANLAB_HOME / DATABASE_URL pointed at one broken database after another."""
    from core import storage
    storage.dispose_engines()
    yield monkeypatch
    storage.dispose_engines()


def database_cases(tmp_path: Path) -> dict:
    good = tmp_path / "good"
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "spanlab.db").write_bytes(os.urandom(8192))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    return {
        "read-only": ({"DATABASE_URL": f"sqlite:///file:{good / 'spanlab.db'}?mode=ro&uri=true"}, "read-only"),
        "corrupt": ({"SPANLAB_HOME": str(corrupt)}, "damaged or not a SpanLab database"),
        "malformed-url": ({"DATABASE_URL": "not a url at all"}, "not a usable database URL"),
        "unknown-dialect": ({"DATABASE_URL": "foodb://user@host/db"}, "database kind SQLAlchemy does not know"),
        "missing-driver": ({"DATABASE_URL": "mysql://user:secret@localhost/db"}, "driver"),
        "newer-schema": ({"SPANLAB_HOME": str(tmp_path / "newer")}, "written by a newer SpanLab"),
        "home-is-a-file": ({"SPANLAB_HOME": str(a_file)}, "is a file, not a folder"),
        "unreachable-server": ({"DATABASE_URL": "postgresql+psycopg://user:secret@127.0.0.1:9/db"},
                               "cannot use the database"),
    }


@pytest.mark.parametrize("case", ["read-only", "corrupt", "malformed-url", "unknown-dialect", "missing-driver",
                                  "newer-schema", "home-is-a-file", "unreachable-server"])
def test_broken_database_settings_are_user_errors(broken_home, tmp_path, capsys, case):
    from core import storage
    good_home = tmp_path / "good"
    broken_home.setenv("SPANLAB_HOME", str(good_home))
    broken_home.delenv("DATABASE_URL", raising=False)
    storage.list_datasets()  # a database of the current schema
    newer = tmp_path / "newer"
    broken_home.setenv("SPANLAB_HOME", str(newer))
    storage.list_datasets()
    storage.dispose_engines()
    with sqlite3.connect(newer / "spanlab.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999'")
    environment, fragment = database_cases(tmp_path)[case]
    for key in ("SPANLAB_HOME", "DATABASE_URL"):
        broken_home.delenv(key, raising=False)
    broken_home.setenv("SPANLAB_HOME", str(good_home))
    for key, value in environment.items():
        broken_home.setenv(key, value)
    data = write(tmp_path / "x.csv", "text,label\ngood,a\nbad,b\n")
    commands = [("import", str(data), "--task", "classification")] + [("datasets",)] * (case != "read-only")
    for args in commands:  # a read-only database still lists its datasets
        storage.dispose_engines()
        code, _, err = run_cli(capsys, *args)
        assert_user_error(code, err, fragment)
        assert "secret" not in err  # a password in DATABASE_URL is never printed


@pytest.mark.parametrize("target", ["folder", "full-disk", "no-such-folder"])
def test_export_out_to_a_folder_or_a_full_disk(spanlab_home, tmp_path, capsys, target):
    data = write(tmp_path / "x.csv", "text,label\ngood,a\nbad,b\n")
    assert run_cli(capsys, "import", str(data), "--task", "classification", "--name", "x")[0] == 0
    if target == "full-disk" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system to simulate a full disk")
    out = {"folder": tmp_path, "full-disk": Path("/dev/full"), "no-such-folder": tmp_path / "nope" / "x.csv"}[target]
    code, _, err = run_cli(capsys, "export", "x", "--out", str(out))
    assert_user_error(code, err, str(out))
    assert not (tmp_path / "nope").exists()


def test_predict_on_a_folder_whose_weights_the_safe_loader_refuses(spanlab_home, tmp_path, capsys):
    import pickle

    from tests.conftest import make_tiny_model
    folder = make_tiny_model(tmp_path / "evil")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": Payload()}))
    code, _, err = run_cli(capsys, "predict", str(folder), "--text", "hi")
    assert_user_error(code, err, "cannot load the model", "safe loader refuses")
    assert not marker.exists()
    (folder / "spanlab.json").write_text("{not json")
    code, _, err = run_cli(capsys, "predict", str(folder), "--text", "hi")
    assert_user_error(code, err, "cannot load the model")


def test_a_bug_still_shows_its_traceback(spanlab_home, monkeypatch, capsys):
    """A ValueError from a bug is not passed off as the user's mistake."""
    from core import storage

    def broken():
        raise ValueError("a bug in SpanLab")
    monkeypatch.setattr(storage, "list_datasets", broken)
    with pytest.raises(ValueError, match="a bug in SpanLab"):
        main(["datasets"])
    result = subprocess.run([sys.executable, "-c", "import core.__main__ as m, core.storage as s\n"
                             "s.list_datasets = lambda: 1/0\nraise SystemExit(m.main(['datasets']))"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SPANLAB_HOME": str(spanlab_home)})
    assert result.returncode == 1 and "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr


def test_user_error_types_share_one_base():
    from core import importing, inference, models, storage, training
    from core.tasks.base import TaskDataError
    for kind in (importing.ImportFailed, inference.PredictorError, models.ModelUnavailable, storage.StorageError,
                 training.TrainingError, TaskDataError):
        assert issubclass(kind, UserError), kind


# --------------------------------------------------------------------------------------- finding 9: file kinds, size


def test_import_refuses_a_fifo_without_hanging(spanlab_home, tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    result = subprocess.run([sys.executable, "-m", "core", "import", str(fifo), "--task", "classification"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SPANLAB_HOME": str(spanlab_home)})
    assert result.returncode == 2 and "named pipe (FIFO)" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("path, fragment", [("/dev/zero", "a device"), ("DIR", "is a folder")])
def test_import_refuses_devices_and_folders(spanlab_home, tmp_path, capsys, path, fragment):
    if path == "/dev/zero" and not Path(path).exists():
        pytest.skip("no /dev/zero")
    path = str(tmp_path) if path == "DIR" else path
    code, _, err = run_cli(capsys, "import", path, "--task", "classification")
    assert_user_error(code, err, fragment)


def test_import_size_cap_names_the_limit_and_the_setting(spanlab_home, tmp_path, capsys, monkeypatch):
    data = write(tmp_path / "big.csv", "text,label\n" + "some text,a\n" * 20_000)  # ~240 KB
    monkeypatch.setenv("SPANLAB_MAX_IMPORT_MB", "0.1")
    code, _, err = run_cli(capsys, "import", str(data), "--task", "classification")
    assert_user_error(code, err, "larger than the import limit of 0 MB", "SPANLAB_MAX_IMPORT_MB")
    with pytest.raises(ImportFailed, match="import limit"):
        read_table(data.read_bytes(), "upload.csv")
    monkeypatch.setenv("SPANLAB_MAX_IMPORT_MB", "1")
    assert run_cli(capsys, "import", str(data), "--task", "classification")[0] == 0


# --------------------------------------------------------------------------------------- finding 10: NUL, duplicates


@pytest.mark.parametrize("padding", [10, 70_000])
def test_nul_byte_anywhere_names_line_and_field(padding):
    text = "text,label\n" + "".join(f"row {i} {'x' * 50},a\n" for i in range(padding // 56 + 1))
    lines = text.count("\n")
    text += "bad\x00row,b\ngood,a\n"
    with pytest.raises(ImportFailed, match=rf"line {lines + 1}, field 'text' of t.csv holds a NUL character"):
        read_table(text.encode(), "t.csv")
    with pytest.raises(ImportFailed, match=r"line 2, field 'label'.*NUL"):
        read_table(b"text,label\ngood,a\x00b\n", "t.csv")
    with pytest.raises(ImportFailed, match=r"line 2, field 'text'.*NUL"):
        read_table(b'{"text": "ok"}\n{"text": "a\\u0000b"}\n', "t.jsonl")


def test_nul_in_conll_names_the_line():
    with pytest.raises(ImportFailed, match=r"line \d+, field .*NUL"):
        read_table("bob B-PER\nfounded O\n\nal\x00ice B-PER\n".encode(), "x.conll", "ner")


def test_binary_file_is_still_called_binary():
    with pytest.raises(ImportFailed, match="binary"):
        read_table(bytes(range(256)) * 100, "x.csv")


def test_duplicate_column_names_are_named():
    with pytest.raises(ImportFailed, match=r"line 1 of t.csv: the header names a column more than once: "
                                           r"'label' \(columns 2, 3\)"):
        read_table(b"text,label,label\nhi,a,b\n", "t.csv")
    with pytest.raises(ImportFailed, match="line 2 of t.jsonl gives the key 'label' twice"):
        read_table(b'{"text": "a", "label": "x"}\n{"text": "b", "label": "x", "label": "y"}\n', "t.jsonl")
    with pytest.raises(ImportFailed, match="gives the key 'text' twice"):
        read_table(b'[{"text": "a", "text": "b"}]', "t.json")
    frame = read_table(b"text,label,,\nhi,a,,\n", "t.csv")  # empty header cells are not duplicates
    assert list(frame.columns)[:2] == ["text", "label"]


# --------------------------------------------------------------------------------------- finding 11: train settings


@pytest.mark.parametrize("flags, fragment", [
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--batch-size", "-4"], "batch_size must be at least 1"),
    (["--max-steps", "-1"], "max_steps must be at least 1"),
    (["--epochs", "0"], "epochs must be more than 0"),
    (["--epochs", "-2"], "epochs must be more than 0"),
    (["--max-length", "5000"], "its limit is 512 tokens"),
])
def test_bad_training_settings_are_refused_before_a_run_exists(spanlab_home, tiny_model_dir, tmp_path, capsys,
                                                                flags, fragment):
    data = write(tmp_path / "s.csv", "text,label\ngood film,positive\nbad film,negative\n")
    assert run_cli(capsys, "import", str(data), "--task", "classification", "--name", "s")[0] == 0
    code, _, err = run_cli(capsys, "train", "--dataset", "s", "--model", str(tiny_model_dir), "--no-progress", *flags)
    assert_user_error(code, err, fragment)
    from core import storage
    assert storage.list_runs() == []


def test_page_and_api_share_the_model_limit_check(spanlab_home, tiny_model_dir):
    """The Train page submits through JobRunner.submit; a script may call execute_run on a run it recorded."""
    from core import storage
    from core.runner import JobRunner
    from core.training import TrainConfig, TrainingError, execute_run
    from tests.conftest import sentiment_rows
    storage.create_dataset("s", "classification", sentiment_rows(4))
    cfg = TrainConfig(dataset="s", model=str(tiny_model_dir), max_length=5000, device="cpu")
    with pytest.raises(TrainingError, match="its limit is 512 tokens"):
        JobRunner(recover=False).submit(cfg)
    assert storage.list_runs() == []
    run_id = storage.create_run("s", "classification", cfg.model, cfg.to_params())
    result = execute_run(run_id)
    assert result["status"] == "failed" and "its limit is 512 tokens" in result["error"]


def test_cpu_out_of_memory_reads_as_advice():
    from core.training import describe_error
    raw = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you "
                       "tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")
    for exc in (raw, MemoryError()):
        message = describe_error(exc)
        assert message.startswith("Out of memory while training: lower the batch size or the max length"), message


def test_input_limit_reads_the_model_config(tmp_path):
    from core.models import input_limit
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta", "max_position_embeddings": 514,
                                                    "pad_token_id": 1}))
    assert input_limit(folder) == 512
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "max_position_embeddings": 512}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 256}))
    assert input_limit(folder) == 256
    (folder / "config.json").write_text(json.dumps({"model_type": "deberta-v2", "max_position_embeddings": 512,
                                                    "position_biased_input": False}))
    (folder / "tokenizer_config.json").unlink()
    assert input_limit(folder) is None


# --------------------------------------------------------------------------------------- finding 3: hidden characters


@pytest.mark.parametrize("bad, shown", [("ding\a", "U+0007 BELL"), ("evil\u202etxt.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
                                        ("a\u200bb", "U+200B ZERO WIDTH SPACE"), ("x\x1b[31m", "U+001B ESCAPE")])
def test_control_characters_in_names_and_labels_are_refused(spanlab_home, tmp_path, capsys, bad, shown):
    from core import storage
    from core.storage import InvalidEditError
    rows = [{"text": "good", "label": "pos"}, {"text": "bad", "label": bad}]
    with pytest.raises(InvalidEditError, match=f"row 2: the label .* contains {re.escape(shown)}"):
        storage.create_dataset("d", "classification", rows)
    with pytest.raises(InvalidEditError, match=f"the dataset name .* contains {re.escape(shown)}"):
        storage.create_dataset(f"name {bad}", "classification", rows[:1])
    with pytest.raises(InvalidEditError, match=f"the label .* contains {re.escape(shown)}"):
        storage.create_dataset("d", "classification", rows[:1], labels=["pos", bad])
    assert storage.list_datasets() == []
    storage.create_dataset("ok", "classification", rows[:1])
    with pytest.raises(InvalidEditError, match=re.escape(shown)):
        storage.add_label("ok", bad)
    with pytest.raises(InvalidEditError, match=re.escape(shown)):
        storage.rename_label("ok", "pos", bad)
    assert storage.get_dataset("ok")["labels"] == ["pos"]
    data = tmp_path / "labels.csv"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text", "label"], ["good", "pos"], ["odd", bad]])
    code, _, err = run_cli(capsys, "import", str(data), "--task", "classification")
    assert_user_error(code, err, shown, "row 2")
    code, _, err = run_cli(capsys, "import", str(write(tmp_path / "fine.csv", "text,label\na,b\n")), "--task",
                           "classification", "--name", f"n{bad}")
    assert_user_error(code, err, shown)
    assert [d["name"] for d in storage.list_datasets()] == ["ok"]


def test_joiners_that_scripts_and_emoji_need_are_allowed(spanlab_home):
    from core import storage
    names = ["👩\u200d💻 coder", "می\u200cخواهم", "café", "東京"]
    storage.create_dataset("ok", "classification", [{"text": "t", "label": name} for name in names])
    assert storage.get_dataset("ok")["labels"] == sorted(names)


def test_entity_types_with_control_characters_are_refused(spanlab_home):
    from core import storage
    from core.storage import InvalidEditError
    rows = [{"text": "bob lives", "spans": [{"start": 0, "end": 3, "label": "PER\u202e"}]}]
    with pytest.raises(InvalidEditError, match=re.escape("row 1: the label 'PER\\u202e' contains U+202E")):
        storage.create_dataset("n", "ner", rows)


def test_guess_task_leaves_an_oversized_upload_to_read_table(monkeypatch):
    """The Data page guesses the task before reading the upload; the size limit is reported by read_table."""
    from core.importing import guess_task
    monkeypatch.setenv("SPANLAB_MAX_IMPORT_MB", "0.001")
    data = b"text,label\n" + b"a,b\n" * 1000
    assert guess_task(data, "big.csv") == "classification"
    with pytest.raises(ImportFailed, match="import limit"):
        read_table(data, "big.csv")


def test_failed_export_leaves_an_existing_file_untouched(spanlab_home, tmp_path, capsys, monkeypatch):
    data = write(tmp_path / "x.csv", "text,label\ngood,a\nbad,b\n")
    assert run_cli(capsys, "import", str(data), "--task", "classification", "--name", "x")[0] == 0
    out = write(tmp_path / "previous.csv", "what was there before\n")
    real_write = os.fdopen

    def failing_fdopen(*args, **kwargs):
        handle = real_write(*args, **kwargs)

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()

            def write(self, chunk):
                handle.write(chunk[:10])
                raise OSError(28, "No space left on device")

            def flush(self):
                pass
        return Full()
    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    code, _, err = run_cli(capsys, "export", "x", "--out", str(out))
    monkeypatch.undo()
    assert_user_error(code, err, "No space left on device")
    assert out.read_text() == "what was there before\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home", "previous.csv", "x.csv"]


def test_a_database_missing_spanlab_tables_is_a_bug_not_a_setting(broken_home, tmp_path):
    """explain() words environment trouble only: SQL against a schema SpanLab itself should have made is not."""
    from sqlalchemy.exc import OperationalError

    from core import storage
    broken_home.setenv("SPANLAB_HOME", str(tmp_path / "h"))
    broken_home.delenv("DATABASE_URL", raising=False)
    storage.list_datasets()
    storage.dispose_engines()
    with sqlite3.connect(tmp_path / "h" / "spanlab.db") as connection:
        connection.execute("DROP TABLE datasets")
    with pytest.raises(OperationalError, match="no such table"):
        main(["datasets"])


def test_a_run_started_during_the_apps_warm_up_imports_trains(spanlab_home, tiny_model_dir):
    """The app imports the training libraries in a background thread; a run starting meanwhile (a fresh process,
    Start clicked at once) used to fail with "cannot import name 'get_linear_schedule_with_warmup'"."""
    script = f"""
import threading
from core import models, storage
from core.training import TrainConfig, execute_run
from tests.conftest import sentiment_rows
storage.create_dataset("s", "classification", sentiment_rows(4))
cfg = TrainConfig(dataset="s", model={str(tiny_model_dir)!r}, max_steps=2, device="cpu", validation_fraction=0)
run_id = storage.create_run("s", "classification", cfg.model, cfg.to_params())
threading.Thread(target=models.warm_up, daemon=True).start()
result = execute_run(run_id)
print("STATUS", result["status"], result.get("error"))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SPANLAB_HOME": str(spanlab_home), "HF_HUB_OFFLINE": "1"})
    assert "STATUS completed" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
