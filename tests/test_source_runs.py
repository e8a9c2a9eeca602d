"""Starting a run from a finished run's model (``--model run:N``, core/source_runs.py): the QA head trained on one
dataset carries on into the next run, labels that differ get a new head, and a run that cannot be a source (deleted,
no saved model, another task, still running) is refused with exit 2 before any run is made."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from core import source_runs, storage
from core.__main__ import main
from core.training import TrainConfig, TrainingError, check_for_model
from tests.conftest import qa_rows, sentiment_rows, train_and_get


def cli(capsys, *args) -> tuple[int, dict, str]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def _weights(folder) -> dict:
    return load_file(f"{folder}/model.safetensors")


QUICK = ["--lr", "1e-3", "--batch-size", "8", "--max-length", "64", "--doc-stride", "16", "--device", "cpu",
         "--no-progress"]


def test_a_qa_run_starts_from_a_finished_qa_run(spanlab_home, tiny_model_dir, capsys):
    storage.create_dataset("general", "qa", qa_rows())
    storage.create_dataset("mine", "qa", qa_rows()[:4])
    code, first, err = cli(capsys, "train", "--dataset", "general", "--model", str(tiny_model_dir), "--max-steps",
                           "40", *QUICK)
    assert code == 0 and first["status"] == "completed", err
    code, second, err = cli(capsys, "train", "--dataset", "mine", "--model", f"run:{first['run']}", "--max-steps",
                            "1", "--lr", "1e-9", *QUICK[2:])
    assert code == 0 and second["status"] == "completed", err
    run = storage.get_run(second["run"])
    assert run["model"] == f"run:{first['run']}"
    params = run["params"]
    assert params["source_run"] == first["run"] and params["source_head"] == "kept"
    assert params["base_model"] == str(tiny_model_dir)  # the chain's own starting model
    assert any(f"run #{first['run']}" in note for note in second["notes"])
    with open(f"{run['artifact_dir']}/spanlab.json", encoding="utf-8") as handle:
        meta = json.load(handle)
    assert meta["base_model"] == f"run:{first['run']}"
    # one step at a vanishing learning rate: the QA head is run 1's, not a new one
    before, after = _weights(first["model_dir"]), _weights(second["model_dir"])
    head = [name for name in before if name.startswith("qa_outputs.")]
    assert head and all((before[name] - after[name]).abs().max() < 1e-4 for name in head)
    # and it answers like run 1 did
    code, answer, _ = cli(capsys, "predict", str(second["run"]), "--question", "who founded acme ?", "--context",
                          qa_rows()[0]["context"])
    assert code == 0 and answer["answers"][0]["answer"] == "alice"
    # a chain: run 3 from run 2 records its source and the model the chain started from
    code, third, err = cli(capsys, "train", "--dataset", "mine", "--model", f"RUN:{second['run']}", "--max-steps", "1",
                           *QUICK)
    assert code == 0, err
    third_params = storage.get_run(third["run"])["params"]
    assert third_params["source_run"] == second["run"] and third_params["base_model"] == str(tiny_model_dir)


def test_other_labels_keep_the_encoder_and_start_a_new_head(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    first = train_and_get(TrainConfig(dataset="sentiment", model=str(tiny_model_dir), learning_rate=1e-3, batch_size=8,
                                      max_steps=3, device="cpu", few_shot="off"))
    assert first["status"] == "completed", first["error"]
    storage.create_dataset("moods", "classification", [{**row, "label": {"positive": "happy", "negative": "sad"}[
        row["label"]]} for row in sentiment_rows(4)] + [{"text": "the delivery", "label": "neutral"}])
    second = train_and_get(TrainConfig(dataset="moods", model=f"run:{first['id']}", learning_rate=1e-9,
                                       batch_size=8, max_steps=1, device="cpu", few_shot="off"))
    assert second["status"] == "completed", second["error"]
    assert second["params"]["source_head"] == "new"
    assert any("head starts anew" in note for note in second["params"]["notes"])
    before, after = _weights(first["artifact_dir"]), _weights(second["artifact_dir"])
    assert after["classifier.weight"].shape[0] == 3
    encoder = [name for name in before if name.startswith("bert.encoder.")]
    assert encoder and all((before[name] - after[name]).abs().max() < 1e-4 for name in encoder)
    # same labels, same order: the classifier is kept
    third = train_and_get(TrainConfig(dataset="sentiment", model=f"run:{first['id']}", learning_rate=1e-9,
                                      batch_size=8, max_steps=1, device="cpu", few_shot="off"))
    assert third["params"]["source_head"] == "kept"
    assert (_weights(third["artifact_dir"])["classifier.weight"] - before["classifier.weight"]).abs().max() < 1e-4


def test_runs_that_cannot_be_a_source_are_refused_with_exit_2(spanlab_home, tiny_model_dir, capsys):
    storage.create_dataset("general", "qa", qa_rows())
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    code, qa_run, err = cli(capsys, "train", "--dataset", "general", "--model", str(tiny_model_dir), "--max-steps",
                            "2", *QUICK)
    assert code == 0, err

    def refused(model, dataset, *words):
        runs_before = len(storage.list_runs())
        code, out, err = cli(capsys, "train", "--dataset", dataset, "--model", model, "--max-steps", "1", *QUICK)
        assert code == 2 and "Traceback" not in err, err
        assert all(word in out["error"] for word in words), out["error"]
        assert len(storage.list_runs()) == runs_before  # refused before any run was made

    refused(f"run:{qa_run['run']}", "sentiment", f"Run #{qa_run['run']}", "question answering", "same task")
    refused("run:99", "general", "no run #99", "deleted")
    refused("run:abc", "general", "run:3")
    failed = storage.create_run("general", "qa", str(tiny_model_dir), {})
    storage.update_run(failed, status="failed", error="boom")
    refused(f"run:{failed}", "general", f"Run #{failed}", "no saved model")
    running = storage.create_run("general", "qa", str(tiny_model_dir), {})
    refused(f"run:{running}", "general", f"Run #{running}", "still queued")
    assert main(["runs", "delete", str(qa_run["run"])]) == 0
    capsys.readouterr()
    refused(f"run:{qa_run['run']}", "general", f"no run #{qa_run['run']}")


def test_a_source_deleted_after_the_run_was_queued_fails_the_run_with_a_message(spanlab_home, tiny_model_dir):
    storage.create_dataset("general", "qa", qa_rows())
    first = train_and_get(TrainConfig(dataset="general", model=str(tiny_model_dir), learning_rate=1e-3, batch_size=8,
                                      max_steps=1, max_length=64, doc_stride=16, device="cpu"))
    cfg = TrainConfig(dataset="general", model=f"run:{first['id']}", max_steps=1, max_length=64, doc_stride=16,
                      device="cpu")
    check_for_model(cfg)  # fine now
    storage.delete_run(first["id"])
    with pytest.raises(TrainingError, match="no run #"):
        check_for_model(cfg)
    run = train_and_get(cfg)
    assert run["status"] == "failed" and f"no run #{first['id']}" in run["error"]


def test_choices_are_completed_runs_of_the_task_with_a_saved_model(spanlab_home, tiny_model_dir):
    storage.create_dataset("general", "qa", qa_rows())
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    qa = train_and_get(TrainConfig(dataset="general", model=str(tiny_model_dir), learning_rate=1e-3, batch_size=8,
                                   max_steps=1, max_length=64, doc_stride=16, device="cpu"))
    train_and_get(TrainConfig(dataset="sentiment", model=str(tiny_model_dir), max_steps=1, device="cpu",
                              few_shot="off"))
    storage.create_run("general", "qa", str(tiny_model_dir), {})  # queued: not a choice
    assert [run["id"] for run in source_runs.choices("qa")] == [qa["id"]]
    assert source_runs.run_id("run:12") == 12 and source_runs.run_id("builtin-minilm") is None
    with pytest.raises(TrainingError, match="run:3"):
        TrainConfig(dataset="general", model="run:")
