"""The headless CLI's contract: --json prints one JSON object as the last stdout line; user mistakes exit 2 on stderr
without a traceback; every capability is reachable (import, datasets, export, train, evaluate, predict, runs)."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest


from core.__main__ import main
from tests.conftest import qa_rows, sentiment_rows


def cli(capsys, *args) -> tuple[int, dict, str]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    last = out.strip().splitlines()[-1]
    return code, json.loads(last), err


def write_csv(path, rows, fields):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    return path


def test_classification_journey(spanlab_home, tiny_model_dir, tmp_path, capsys):
    data = write_csv(tmp_path / "reviews.csv",
                     [{"Sentence": r["text"], "Category": r["label"]} for r in sentiment_rows(8)], ["Sentence", "Category"])
    code, out, _ = cli(capsys, "import", str(data), "--task", "classification")
    assert code == 0 and out["dataset"] == "reviews" and out["rows"] == 16 and out["warnings"] == []

    code, out, _ = cli(capsys, "datasets")
    assert [d["name"] for d in out["datasets"]] == ["reviews"]

    code, out, err = cli(capsys, "train", "--dataset", "reviews", "--eval-dataset", "reviews", "--model",
                         str(tiny_model_dir), "--lr", "2e-3", "--batch-size", "8", "--max-steps", "60",
                         "--device", "cpu")  # with the progress bar (on stderr)
    assert code == 0, err
    assert re.search(r"training: 100%.* (\d+)/\1 \[", err)  # the progress bar went to stderr, stdout stays JSON
    assert out["status"] == "completed" and out["metrics"]["accuracy"] >= 0.9
    assert out["train_samples_per_second"] > 0 and isinstance(out["run"], int)
    run = out["run"]

    code, out, _ = cli(capsys, "evaluate", str(run), "--dataset", "reviews")
    assert code == 0 and set(out["metrics"]) >= {"accuracy", "macro_f1"} and out["metrics"]["accuracy"] >= 0.9

    code, out, _ = cli(capsys, "predict", str(run), "--text", "great film")
    assert out["labels"][0]["label"] == "positive"
    assert abs(sum(p["score"] for p in out["labels"]) - 1) < 1e-4

    texts = write_csv(tmp_path / "new.csv", [{"text": "awful food"}, {"text": "perfect food"}], ["text"])
    code, out, _ = cli(capsys, "predict", str(run), "--file", str(texts))
    assert [p["label"] for p in out["predictions"]] == ["negative", "positive"]

    code, out, _ = cli(capsys, "runs")
    assert out["runs"][0]["id"] == run and out["runs"][0]["status"] == "completed"
    code, out, _ = cli(capsys, "runs", "show", str(run))
    assert out["run"]["params"]["batch_size"] == 8 and "train/loss" in out["curves"]

    export = tmp_path / "out.csv"
    code, out, _ = cli(capsys, "export", "reviews", "--format", "csv", "--out", str(export))
    assert code == 0 and export.read_bytes().count(b"\n") >= 17


def test_qa_journey(spanlab_home, tiny_model_dir, tmp_path, capsys):
    data = write_csv(tmp_path / "faq.csv", qa_rows(), ["context", "question", "answer_text", "answer_start"])
    code, out, _ = cli(capsys, "import", str(data), "--task", "qa", "--name", "faq")
    assert code == 0 and out["rows"] == 8
    code, out, err = cli(capsys, "train", "--dataset", "faq", "--eval-dataset", "faq", "--model", str(tiny_model_dir),
                         "--lr", "1e-3", "--batch-size", "8", "--max-steps", "60", "--max-length", "64",
                         "--doc-stride", "16", "--device", "cpu", "--no-progress")
    assert code == 0 and out["status"] == "completed", err
    run = out["run"]
    code, out, _ = cli(capsys, "evaluate", str(run), "--dataset", "faq")
    assert out["metrics"]["f1"] >= 90.0 and 0 <= out["metrics"]["exact_match"] <= 100
    context = qa_rows()[2]["context"]
    code, out, _ = cli(capsys, "predict", str(run), "--question", "who founded globex ?", "--context", context,
                       "--top-k", "3")
    answers = out["answers"]
    assert answers[0]["answer"] == "bob" and len(answers) <= 3
    assert all(context[a["start"]:a["end"]] == a["answer"] for a in answers)
    for precision in ("fp32", "bf16"):  # bf16 re-checks close calls in fp32: the same answers, in the same order
        code, out, _ = cli(capsys, "predict", str(run), "--question", "who founded globex ?", "--context", context,
                           "--top-k", "3", "--precision", precision)
        assert code == 0 and [a["answer"] for a in out["answers"]] == [a["answer"] for a in answers]
    # As the old question-answering pipeline: whole words only (a word the vocabulary splits into pieces is never
    # cut), and each answer text once.
    context = "bob founded globexcorp in 2005 ."
    code, out, _ = cli(capsys, "predict", str(run), "--question", "who founded it ?", "--context", context,
                       "--top-k", "10")
    answers = out["answers"]
    assert len(answers) >= 5 and len({a["answer"].lower() for a in answers}) == len(answers)
    for a in answers:
        assert a["start"] in (0, *(i + 1 for i, ch in enumerate(context) if ch == " ")), a
        assert a["end"] in (len(context), *(i for i, ch in enumerate(context) if ch == " ")), a

    squad = tmp_path / "faq.json"
    code, out, _ = cli(capsys, "export", "faq", "--format", "squad", "--out", str(squad))
    assert json.loads(squad.read_text())["data"]


def test_ner_journey(spanlab_home, tiny_model_dir, tmp_path, capsys):
    from tests.test_tasks_ner import toy_rows
    from core.tasks.ner_io import to_conll
    data = tmp_path / "toy.conll"
    data.write_text(to_conll(toy_rows()), encoding="utf-8")
    code, out, _ = cli(capsys, "import", str(data), "--task", "ner")
    assert code == 0 and out["dataset"] == "toy" and out["rows"] == 8 and out["labels"] == ["LOC", "ORG", "PER"]
    code, out, err = cli(capsys, "train", "--dataset", "toy", "--eval-dataset", "toy", "--model", str(tiny_model_dir),
                         "--lr", "1e-3", "--batch-size", "4", "--device", "cpu", "--no-progress", "--eval-every", "20")
    assert code == 0 and out["status"] == "completed", err
    assert out["metrics"]["f1"] >= 0.9 and 0 <= out["metrics"]["precision"] <= 1 and 0 <= out["metrics"]["recall"] <= 1
    run = out["run"]
    code, out, _ = cli(capsys, "evaluate", str(run), "--dataset", "toy")
    metrics = out["metrics"]
    assert metrics["f1"] >= 0.9 and set(metrics["per_class"]) == {"LOC", "ORG", "PER"}
    assert metrics["per_class"]["PER"]["support"] == 7 and metrics["examples"] == 8
    text = "bob founded globex in paris . 🙂 — 東京 café ."
    code, out, _ = cli(capsys, "predict", str(run), "--text", text)
    found = out["entities"]
    assert code == 0 and [(e["text"], e["label"]) for e in found][:3] == [("bob", "PER"), ("globex", "ORG"),
                                                                           ("paris", "LOC")]
    assert all(set(e) == {"text", "label", "start", "end", "score"} and text[e["start"]:e["end"]] == e["text"]
               for e in found)
    texts = write_csv(tmp_path / "texts.csv", [{"text": "alice founded acme ."}, {"text": "=HYPERLINK(\"x\") acme"}],
                      ["text"])
    predictions = tmp_path / "predictions.csv"
    code, out, _ = cli(capsys, "predict", str(run), "--file", str(texts), "--out", str(predictions))
    assert code == 0 and out["predictions"] == 2
    rows = list(csv.DictReader(predictions.read_text(encoding="utf-8-sig").splitlines()))
    assert [e["text"] for e in json.loads(rows[0]["entities"])][:2] == ["alice", "acme"]
    assert rows[1]["text"].startswith("'=HYPERLINK")  # a spreadsheet shows it, does not run it
    for file_format in ("conll", "jsonl"):
        exported = tmp_path / f"toy-out.{file_format}"
        code, out, _ = cli(capsys, "export", "toy", "--format", file_format, "--out", str(exported))
        assert code == 0 and out["rows"] == 8
        code, out, _ = cli(capsys, "import", str(exported), "--task", "ner", "--name", f"again-{file_format}")
        assert code == 0 and out["rows"] == 8 and out["labels"] == ["LOC", "ORG", "PER"]
    code, out, err = cli(capsys, "export", "toy", "--format", "squad", "--out", str(tmp_path / "x.json"))
    assert code == 2 and "export it as csv, jsonl, conll" in err
    code, out, err = cli(capsys, "predict", str(run), "--question", "who?")
    assert code == 2 and '--text "..."' in err


def test_bad_import_names_the_row_and_writes_nothing(spanlab_home, tmp_path, capsys):
    rows = qa_rows()
    rows[3] = {**rows[3], "answer_text": "zürich"}  # not in its context
    data = write_csv(tmp_path / "bad.csv", rows, ["context", "question", "answer_text", "answer_start"])
    code, out, err = cli(capsys, "import", str(data), "--task", "qa")
    assert code == 2
    assert "line 5" in err and "answer" in err and "Traceback" not in err
    assert out["problems"] and "error" in out
    code, out, _ = cli(capsys, "datasets")
    assert out["datasets"] == []


def test_user_mistakes_exit_2_without_traceback(spanlab_home, tmp_path):
    env = {**os.environ, "SPANLAB_HOME": str(spanlab_home), "HF_HUB_OFFLINE": "1"}
    for args in (["train", "--dataset", "nope", "--json"],
                 ["import", str(tmp_path / "missing.csv"), "--task", "qa", "--json"],
                 ["predict", "999", "--text", "hi", "--json"]):
        proc = subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env,
                              cwd=os.path.dirname(os.path.dirname(__file__)), timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:")
        assert "error" in json.loads(proc.stdout.strip().splitlines()[-1])


def test_offline_hub_model_fails_fast_naming_the_builtin(spanlab_home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = write_csv(tmp_path / "r.csv", sentiment_rows(4), ["text", "label"])
    cli(capsys, "import", str(data), "--task", "classification")
    code, out, err = cli(capsys, "train", "--dataset", "r", "--no-progress")  # default model: SpanBERT from the hub
    assert code == 1 and out["status"] == "failed"
    assert "builtin-minilm" in out["error"]


def test_torchrun_data_parallel_records_one_run(spanlab_home, tiny_model_dir, tmp_path, capsys):
    """Scale-out goes through torchrun on the same CLI (gloo on CPU here, NCCL on GPUs): two processes train
    in step, rank 0 alone records the run and saves the model."""
    data = write_csv(tmp_path / "s.csv", sentiment_rows(8), ["text", "label"])
    cli(capsys, "import", str(data), "--task", "classification")
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "core", "train", "--dataset", "s",
                           "--eval-dataset", "s", "--model", str(tiny_model_dir), "--lr", "2e-3", "--batch-size", "4",
                           "--max-steps", "30", "--no-progress", "--json"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPANLAB_HOME": str(spanlab_home), "OMP_NUM_THREADS": "1"},
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(r.get("rank", 0) for r in results) == [0, 1], proc.stdout[-2000:]
    [main_result] = [r for r in results if "run" in r]
    assert main_result["status"] == "completed" and main_result["metrics"]["accuracy"] >= 0.9, main_result
    code, out, _ = cli(capsys, "runs")
    assert len(out["runs"]) == 1 and out["runs"][0]["params"]["world_size"] == 2


def test_few_shot_recipe_is_the_default_for_small_data_and_can_be_turned_off(spanlab_home, tiny_model_dir, capsys):
    from core import storage
    storage.create_dataset("small", "classification", sentiment_rows(6))
    common = ["--dataset", "small", "--model", str(tiny_model_dir), "--max-steps", "3", "--device", "cpu",
              "--no-progress"]
    code, default, err = cli(capsys, "train", *common)
    assert code == 0, err
    assert any("few-shot recipe" in note for note in default["notes"])
    code, off, err = cli(capsys, "train", *common, "--few-shot", "off")
    assert code == 0, err
    assert not any("few-shot recipe" in note for note in off["notes"])
    params = {run: storage.get_run(run)["params"] for run in (default["run"], off["run"])}
    assert params[default["run"]]["few_shot"] == "auto" and params[off["run"]]["few_shot"] == "off"
    assert params[default["run"]]["contrastive_epochs"] > 0  # the contrastive stage ran before fine-tuning
    assert params[off["run"]]["freeze_word_embeddings"] == "auto"
    code, trained, err = cli(capsys, "train", *common, "--freeze-word-embeddings", "off")
    assert code == 0, err
    assert storage.get_run(trained["run"])["params"]["freeze_word_embeddings"] == "off"
    assert storage.get_run(default["run"])["params"]["n_label_examples"] == 0  # auto: not a sentence encoder
    code, named, err = cli(capsys, "train", *common, "--label-examples", "on")
    assert code == 0, err
    assert storage.get_run(named["run"])["params"]["n_label_examples"] == 4  # "positive", "negative" twice each


def test_train_samples_per_second_is_samples_over_training_loop_seconds(spanlab_home, tiny_model_dir, tmp_path,
                                                                       capsys, monkeypatch):
    """Defined as Trainer defines it (samples / the training loop's wall time, logging and database writes
    included), without the validation passes, which the Trainer scripts it is compared with do not run."""
    import time as time_module
    from core import storage
    from core.training import Evaluator, MetricWriter
    data = write_csv(tmp_path / "reviews.csv", sentiment_rows(12), ["text", "label"])
    cli(capsys, "import", str(data), "--task", "classification")
    logged, evaluations = [], []
    real_add, real_evaluate = MetricWriter.add, Evaluator.evaluate

    def slow_add(self, step, epoch, values, force=False, **fields):  # the loop's loss logging is part of the loop
        if not force:
            time_module.sleep(0.05)
            logged.append(step)
        return real_add(self, step, epoch, values, force, **fields)

    def slow_evaluate(self, model):  # validation is not
        time_module.sleep(0.3)
        evaluations.append(1)
        return real_evaluate(self, model)

    monkeypatch.setattr(MetricWriter, "add", slow_add)
    monkeypatch.setattr(Evaluator, "evaluate", slow_evaluate)
    code, out, err = cli(capsys, "train", "--dataset", "reviews", "--model", str(tiny_model_dir), "--few-shot", "off",
                         "--epochs", "4", "--batch-size", "4", "--eval-every", "2", "--patience", "100", "--device", "cpu",
                         "--no-progress")
    assert code == 0 and out["status"] == "completed", err
    metrics = storage.get_run(out["run"])["metrics"]
    n_train = storage.get_run(out["run"])["params"]["n_train"]
    samples = 4 * n_train  # 4 epochs
    assert samples / out["train_samples_per_second"] == pytest.approx(metrics["train_seconds"], abs=6e-4)  # rounded
    assert metrics["train_seconds"] >= 0.05 * len(logged) > 0  # the logging counts
    assert metrics["eval_seconds"] >= 0.3 * len(evaluations) > 0  # the validation passes are kept apart
    assert metrics["train_seconds"] + metrics["eval_seconds"] <= metrics["wall_seconds"]


def test_listings_json_has_no_internal_keys_and_runs_without_metrics_read_plainly(spanlab_home, tmp_path, capsys,
                                                                                    monkeypatch):
    from core import storage
    monkeypatch.setenv("SPANLAB_USER", "Ann")
    data = write_csv(tmp_path / "reviews.csv", sentiment_rows(2), ["text", "label"])
    assert cli(capsys, "import", str(data), "--task", "classification")[0] == 0
    assert storage.get_dataset("reviews")["created_by"] == "Ann"
    for command in ("datasets", "models"):
        code, out, _ = cli(capsys, command)
        assert code == 0 and "_text" not in out
    run_id = storage.create_run("reviews", "classification", "tiny", {}, created_by="Bea")
    storage.update_run(run_id, status="failed")
    assert main(["runs"]) == 0
    line = capsys.readouterr().out.strip()
    assert "=-" not in line and "no metrics" in line and line.endswith("by Bea")
    code, out, _ = cli(capsys, "runs")
    assert "_text" not in out and out["runs"][0]["created_by"] == "Bea"
    assert main(["activity"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[2:4] for line in lines] == [["Bea", "started"], ["Ann", "imported"]]


def test_deleting_a_dataset_an_active_run_uses_is_refused(spanlab_home, tmp_path, capsys):
    from core import storage
    data = write_csv(tmp_path / "reviews.csv", sentiment_rows(2), ["text", "label"])
    assert cli(capsys, "import", str(data), "--task", "classification")[0] == 0
    run_id = storage.create_run("reviews", "classification", "tiny", {})
    assert main(["delete-dataset", "reviews"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: dataset 'reviews' is not deleted: run #{run_id} (queued") and "Traceback" not in err
    assert storage.get_dataset("reviews")["rows"] == 4


def test_label_errors_name_labels_without_python_lists(spanlab_home):
    from core import storage
    storage.create_dataset("tickets", "classification", [{"text": "a"}], labels=["billing", "technical"])
    row = storage.load_examples("tickets")[0]
    with pytest.raises(storage.InvalidEditError) as refused:
        storage.set_label(row["id"], "shipping", row["version"])
    assert "(labels: 'billing', 'technical')" in str(refused.value) and "[" not in str(refused.value)
    with pytest.raises(storage.InvalidEditError) as refused:
        storage.rename_label("tickets", "nope", "x")
    assert "[" not in str(refused.value)
    with pytest.raises(storage.InvalidEditError) as refused:
        storage.create_dataset("more", "classification", [{"text": "a", "label": "x"}], labels=["y", "z"])
    assert "label set ('y', 'z')" in str(refused.value) and "[" not in str(refused.value)


def test_quiet_pytest_still_reports_its_pass_count_and_readme_uses_the_venv_python():
    """`scripts/test.sh -q` passes -q to pytest: the project's addopts must not make that -qq (no summary line)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--durations=0",
                           "tests/test_task_interface.py", "-k", "scan_finds"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert re.search(r"^\d+ passed", done.stdout, re.MULTILINE), done.stdout[-2000:]
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    assert not re.search(r"(^|[`( |])python -m core", readme, re.MULTILINE)  # always .venv/bin/python -m core


def test_the_command_leaves_its_objects_to_the_operating_system_at_exit(spanlab_home):
    """`python -m core` freezes the garbage collector before exiting: interpreter shutdown otherwise collects every
    object torch and transformers made (about 1 s of a 12 s training command, BENCHMARKS.md section 3b). The exit
    handlers still run, and the exit code is the command's."""
    from pathlib import Path
    probe = ("import atexit, gc, runpy, sys; "
             "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0)); "
             "sys.argv = ['core', 'datasets', '--json']; runpy.run_module('core', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "SPANLAB_HOME": str(spanlab_home)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[0]) == {"datasets": []}
    assert "frozen at exit: True" in result.stdout, result.stdout
