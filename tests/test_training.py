"""Training end to end on tiny models: it learns, saves a plain-transformers folder, records everything,
and cancel / failure / interruption leave the run in an honest state."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from core import storage
from core.runner import JobRunner
from core.training import TrainConfig, TrainingError, length_grouped_batches, resolve_defaults
from tests.conftest import qa_rows, sentiment_rows, train_and_get


def test_classification_learns_and_saves_standard_folder(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    cfg = TrainConfig(dataset="sentiment", eval_dataset="sentiment", model=str(tiny_model_dir), learning_rate=2e-3,
                      batch_size=8, max_steps=60, eval_every=20, device="cpu", seed=1,
                      few_shot="off")  # the plain fine-tuning loop; the few-shot recipe: tests/test_fewshot.py
    run = train_and_get(cfg)
    assert run["status"] == "completed", run["error"]
    assert run["metrics"]["accuracy"] >= 0.9
    assert run["best_metric_name"] == "macro_f1" and run["best_metric"] >= 0.9
    assert run["device"] == "cpu" and run["precision"] == "fp32"
    assert run["train_samples_per_second"] > 0

    points = storage.metric_frame(run["id"])
    loss = points[points.name == "train/loss"].sort_values("step").value.tolist()
    assert len(loss) >= 5 and loss[-1] < loss[0]
    assert len(points[points.name == "eval/accuracy"]) == 3

    # plain transformers loads the saved folder, with the label names
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(run["artifact_dir"])
    tokenizer = AutoTokenizer.from_pretrained(run["artifact_dir"])
    assert set(model.config.id2label.values()) == {"negative", "positive"}
    logits = model(**tokenizer(["great film"], return_tensors="pt")).logits
    assert model.config.id2label[int(logits.argmax())] == "positive"
    with open(os.path.join(run["artifact_dir"], "spanlab.json"), encoding="utf-8") as f:
        meta = json.load(f)
    assert meta["task"] == "classification" and meta["labels"] == ["negative", "positive"]
    assert not [p for p in os.listdir(spanlab_home / "runs") if p.startswith(".run-")]  # no temp folder left
    # classification keeps the word embeddings fixed by default (freeze_word_embeddings="auto"); the rest trained
    assert _same_word_embeddings(tiny_model_dir, run["artifact_dir"])


def _same_word_embeddings(folder_a, folder_b) -> bool:
    import torch
    from transformers import AutoModel
    a, b = (AutoModel.from_pretrained(f).get_input_embeddings().weight for f in (folder_a, folder_b))
    return torch.equal(a, b)


def test_word_embeddings_train_when_asked_and_for_qa(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    cfg = TrainConfig(dataset="sentiment", model=str(tiny_model_dir), learning_rate=2e-3, batch_size=8, max_steps=3,
                      device="cpu", few_shot="off", freeze_word_embeddings="off")
    run = train_and_get(cfg)
    assert run["status"] == "completed", run["error"]
    assert not _same_word_embeddings(tiny_model_dir, run["artifact_dir"])
    # what ran, not what was planned: 3 steps of 2 per epoch, stopped by the step cap
    metrics = run["metrics"]
    assert (metrics["stopped"], metrics["steps_run"], metrics["epochs_run"]) == ("max_steps", 3, 1.5)
    assert metrics["epochs_planned"] > 1.5
    storage.create_dataset("capitals", "qa", qa_rows())
    run = train_and_get(TrainConfig(dataset="capitals", model=str(tiny_model_dir), learning_rate=1e-3, batch_size=8,
                                    max_steps=3, max_length=64, doc_stride=16, device="cpu"))
    assert run["status"] == "completed", run["error"]
    assert not _same_word_embeddings(tiny_model_dir, run["artifact_dir"])  # auto: QA trains them
    run = train_and_get(TrainConfig(dataset="capitals", model=str(tiny_model_dir), learning_rate=1e-3, batch_size=8,
                                    max_steps=3, max_length=64, doc_stride=16, device="cpu",
                                    freeze_word_embeddings="on"))
    assert run["status"] == "completed", run["error"]
    assert _same_word_embeddings(tiny_model_dir, run["artifact_dir"])


def test_qa_learns_spans(spanlab_home, tiny_model_dir):
    storage.create_dataset("capitals", "qa", qa_rows())
    cfg = TrainConfig(dataset="capitals", eval_dataset="capitals", model=str(tiny_model_dir), learning_rate=1e-3,
                      batch_size=8, max_steps=60, eval_every=20, max_length=64, doc_stride=16, device="cpu")
    run = train_and_get(cfg)
    assert run["status"] == "completed", run["error"]
    assert run["metrics"]["f1"] >= 90.0
    from core.inference import load_predictor
    predictor = load_predictor(run["id"])
    context = qa_rows()[0]["context"]
    answer = predictor.predict("who founded acme ?", context, top_k=3)
    assert answer[0]["answer"] == "alice"
    assert all(context[a["start"]:a["end"]] == a["answer"] for a in answer)


def test_cancel_stops_within_a_step_and_is_recorded(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    cancel = threading.Event()
    steps = []

    def progress(step, total):
        steps.append(step)
        cancel.set()

    cfg = TrainConfig(dataset="sentiment", model=str(tiny_model_dir), batch_size=4, max_steps=500, eval_every=1000,
                      device="cpu")
    run = train_and_get(cfg, cancel=cancel, progress=progress)
    assert run["status"] == "cancelled"
    assert run["step"] <= steps[0] + 1
    assert run["metrics"]["stopped"] == "cancelled" and run["metrics"]["steps_run"] == run["step"]
    assert run["finished_at"] is not None


def test_runner_queues_runs_and_cancels_queued(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    runner = JobRunner()
    cfg = TrainConfig(dataset="sentiment", model=str(tiny_model_dir), batch_size=4, max_steps=15, device="cpu")
    first, second = runner.submit(cfg), runner.submit(cfg)
    runner.cancel(second, by="Eve")
    assert runner.wait(first, timeout=120)["status"] == "completed"
    assert runner.wait(second, timeout=120)["status"] == "cancelled"
    assert storage.get_run(second)["cancelled_by"] == "Eve"


def test_failures_are_recorded_with_a_message(spanlab_home, tiny_model_dir):
    storage.create_dataset("one-label", "classification", [{"text": "good movie", "label": "positive"},
                                                             {"text": "bad movie", "label": "positive"}])
    run = train_and_get(TrainConfig(dataset="one-label", model=str(tiny_model_dir), device="cpu"))
    assert run["status"] == "failed" and "at least 2 labels" in run["error"]

    storage.create_dataset("sentiment", "classification", sentiment_rows(2))
    run = train_and_get(TrainConfig(dataset="sentiment", model=str(tiny_model_dir / "missing" / "x"), device="cpu"))
    assert run["status"] == "failed" and "does not exist" in run["error"]

    with pytest.raises(TrainingError, match="freeze_word_embeddings must be auto, on or off"):  # before any run exists
        TrainConfig(dataset="sentiment", model=str(tiny_model_dir), device="cpu", freeze_word_embeddings="maybe")


def test_killed_training_process_is_marked_interrupted(spanlab_home, tiny_model_dir):
    """A run whose process dies is reported interrupted as soon as runs are read (no restart needed)."""
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    code = (
        "import os, signal, threading\n"
        "from core import storage\n"
        "from core.training import TrainConfig, execute_run\n"
        f"cfg = TrainConfig(dataset='sentiment', model={str(tiny_model_dir)!r}, batch_size=2, max_steps=10000, device='cpu')\n"
        "rid = storage.create_run('sentiment', 'classification', cfg.model, cfg.to_params())\n"
        "def die(step, total):\n"
        "    if step >= 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        "execute_run(rid, progress=die)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, cwd=os.getcwd(), timeout=300)
    assert proc.returncode == -9
    [run] = storage.list_runs()
    assert run["status"] == "interrupted" and "pid" in run["error"] and run["finished_at"] is not None
    assert JobRunner() is not None and storage.get_run(run["id"])["status"] == "interrupted"  # a restart: no change


def test_automatic_defaults_give_few_shot_data_enough_steps():
    cfg = resolve_defaults(TrainConfig(dataset="x"), "classification", n_train_features=16, hidden_size=384)
    assert cfg.epochs * 1 >= cfg.min_steps  # one batch per epoch -> at least min_steps epochs
    assert cfg.learning_rate == pytest.approx(1e-4)
    big = resolve_defaults(TrainConfig(dataset="x"), "classification", n_train_features=100_000, hidden_size=768)
    assert big.epochs == 3.0 and big.learning_rate == pytest.approx(5e-5)


def test_length_grouped_batches_cover_every_example_once():
    import random
    lengths = [random.Random(i).randint(1, 300) for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 40  # batches hold similar lengths, so dynamic padding pads little


def test_measurement_plan_says_what_a_run_will_measure_before_it_starts(spanlab_home):
    from core.training import measurement_plan
    rows = sentiment_rows(8)
    for row in rows[:2] + rows[8:10]:
        row["split"] = "validation"
    storage.create_dataset("split", "classification", rows)
    plan = measurement_plan(TrainConfig(dataset="split"))
    assert plan["measured"] and "this dataset's validation split (4 rows, not trained on); 12 rows train" in plan["text"]
    storage.create_dataset("tiny", "classification", sentiment_rows(3))
    plan = measurement_plan(TrainConfig(dataset="tiny", few_shot="off", validation_fraction=0.0))
    assert not plan["measured"] and "none is held out (the validation fraction is 0)" in plan["text"]
    plan = measurement_plan(TrainConfig(dataset="missing"))
    assert not plan["measured"] and plan["text"].startswith("This run cannot start yet: no dataset 'missing'")


def test_few_shot_run_gets_a_cross_validation_estimate_of_its_scores(spanlab_home, tiny_model_dir):
    from core.training import fold_rows, measurement_plan
    storage.create_dataset("few", "classification", sentiment_rows(5))
    cfg = TrainConfig(dataset="few", model=str(tiny_model_dir), learning_rate=2e-3, batch_size=4, max_steps=4,
                      device="cpu")
    plan = measurement_plan(cfg)
    assert plan["measured"] and "a 5-fold cross-validation estimates them" in plan["text"]
    run = train_and_get(cfg)
    assert run["status"] == "completed", run["error"]
    estimate = run["metrics"]["cross_validation"]
    assert (estimate["folds"], estimate["rows"]) == (5, 10)
    assert 0 <= estimate["metrics"]["accuracy"] <= 1 and "macro_f1" in estimate["metrics"]
    assert sum(map(sum, estimate["metrics"]["confusion_matrix"])) == 10  # every row scored once, by a model
    assert run["best_metric"] is None  # that did not train on it; the run itself held nothing out

    rows = [{"id": i, "label": "ab"[i % 2]} for i in range(10)]
    folds = fold_rows(rows, 5, seed=1)
    assert sorted(r["id"] for fold in folds for r in fold) == list(range(10))
    assert all(sorted(r["label"] for r in fold) == ["a", "b"] for fold in folds)  # stratified
    qa = [{"id": i, "context": f"c{i // 3}"} for i in range(9)]
    assert all(len({r["context"] for r in fold}) == 1 for fold in fold_rows(qa, 3, seed=1))  # contexts kept whole
    assert not train_and_get(TrainConfig(dataset="few", model=str(tiny_model_dir), batch_size=4, max_steps=2,
                                         device="cpu", cross_validation=0))["metrics"].get("cross_validation")


def test_automatic_validation_interval_and_the_one_left_out_before_the_final_validation():
    """About 10 validations per run, never more often than every 3 x (validation examples / batch) steps; an
    automatic validation less than half an interval before the final one is left out (it would score nearly the same
    model), one the user asked for is kept."""
    from core.training import _final_validation_near, evaluation_interval
    assert evaluation_interval(52, 205, 16) == 39  # the CLI benchmark's run: 1,024 SST-2 rows, 20 % held out
    assert evaluation_interval(1000, 10, 8) == 100
    assert _final_validation_near(39, 52, 39, None)  # 13 steps before the final validation at 52: left out
    assert not _final_validation_near(39, 52, 39, 39)  # asked for: kept
    assert not _final_validation_near(900, 1000, 100, None)  # a whole interval before the end: kept
    assert not _final_validation_near(950, 1000, 100, None)  # exactly half an interval: kept
