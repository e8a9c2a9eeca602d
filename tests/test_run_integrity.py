"""Runs as a team meets them (issue 12, findings 4-6): real CLI ``train`` processes that are cancelled, deleted and
killed with SIGKILL; model folders that are unique per run; a worker that only ever writes to the run it owns.

Every wait here waits on a state in the database or on disk (``wait_for``), with a generous limit only so that a
broken build fails instead of hanging.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import inference, runs_store, storage
from core.__main__ import main
from core.config import runs_dir
from core.training import TrainConfig, execute_run
from tests.conftest import sentiment_rows, train_and_get

ROOT = Path(__file__).resolve().parent.parent
LONG_RUN = ["--device", "cpu", "--batch-size", "2", "--max-steps", "1000000", "--min-steps", "1000000",
            "--few-shot", "off", "--validation-fraction", "0", "--no-progress", "--json"]  # runs until stopped


def wait_for(condition, what: str, timeout: float = 180.0, proc: subprocess.Popen | None = None):
    """Poll ``condition()`` until it returns something truthy (returned); fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the training process exited ({proc.returncode}) before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def cli_env(home: Path) -> dict:
    """The environment of a CLI process sharing this test's home and database (DATABASE_URL when set)."""
    return {**os.environ, "SPANLAB_HOME": str(home), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def start_train(home: Path, model_dir: Path, *extra: str, code: str | None = None) -> subprocess.Popen:
    """``python -m core train`` on the dataset "sentiment" in its own process (or ``code`` run with python -c)."""
    args = ["-c", code] if code else ["-m", "core", "train", "--dataset", "sentiment", "--model", str(model_dir),
                                      *LONG_RUN, *extra]
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=cli_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def training_run(run_id=None):
    """The (only, or given) run once its worker is training: status running, a heartbeat and a step recorded."""
    runs = storage.list_runs()
    run = next((r for r in runs if run_id in (None, r["id"])), None)
    if run and run["status"] == "running" and run["heartbeat_at"] is not None and run["step"] > 0:
        return run
    return None


def cli(capsys, *args) -> tuple[int, dict, str]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


@pytest.fixture
def sentiment(database_url, tmp_path):
    """The dataset "sentiment" in a private home, on SQLite and on PostgreSQL (conftest's database_url)."""
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    return tmp_path / "home"


def test_a_running_cli_run_cannot_be_deleted_but_can_be_cancelled_then_deleted(sentiment, tiny_model_dir, capsys):
    proc = start_train(sentiment, tiny_model_dir)
    try:
        run = wait_for(training_run, "the CLI run to be training", proc=proc)
        code, out, err = cli(capsys, "runs", "delete", str(run["id"]))
        assert code == 2 and err.startswith(f"error: run {run['id']} is still running: cancel it first")
        assert "Traceback" not in err and storage.get_run(run["id"])["status"] == "running"

        code, out, err = cli(capsys, "runs", "cancel", str(run["id"]))  # from another process than the worker's
        assert code == 0 and out["cancel_requested"] == run["id"]
        stdout, stderr = proc.communicate(timeout=180)  # the worker sees it at its next heartbeat and stops
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result = json.loads(stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["status"] == "cancelled", stderr[-2000:]
    assert result["model_dir"] is None  # no validation, so no best checkpoint to keep

    code, out, err = cli(capsys, "runs", "cancel", str(run["id"]))
    assert code == 2 and "only a queued or running run can be cancelled" in err
    code, out, _ = cli(capsys, "runs", "delete", str(run["id"]))
    assert code == 0 and storage.list_runs() == []


def test_a_killed_cli_run_is_interrupted_as_soon_as_runs_are_read(sentiment, tiny_model_dir):
    proc = start_train(sentiment, tiny_model_dir)
    try:
        run = wait_for(training_run, "the CLI run to be training", proc=proc)
    finally:
        proc.kill()  # SIGKILL: no handler runs, the row still says "running"
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    [after] = storage.list_runs()
    assert after["id"] == run["id"] and after["status"] == "interrupted", after
    assert f"pid {run['worker_pid']}" in after["error"] and after["finished_at"] is not None
    code = main(["runs", "delete", str(run["id"])])  # no longer active: deletable
    assert code == 0


KILL_WHILE_SAVING = """
import os, signal, sys
from transformers import PreTrainedModel
from core.__main__ import main
original = PreTrainedModel.save_pretrained
def save_then_die(self, folder, *args, **kwargs):
    original(self, folder, *args, **kwargs)  # the weights are written into the partial folder...
    os.kill(os.getpid(), signal.SIGKILL)     # ...and the process dies before the folder is renamed
PreTrainedModel.save_pretrained = save_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_while_saving_leaves_no_partial_folder_behind(sentiment, tiny_model_dir):
    proc = subprocess.Popen([sys.executable, "-c", KILL_WHILE_SAVING, "train", "--dataset", "sentiment", "--model",
                             str(tiny_model_dir), "--device", "cpu", "--batch-size", "2", "--max-steps", "3",
                             "--few-shot", "off", "--validation-fraction", "0", "--no-progress", "--json"],
                            cwd=ROOT, env=cli_env(sentiment), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, stderr[-2000:]
    partial = [p for p in runs_dir().iterdir() if p.name.startswith(".run-")]
    assert len(partial) == 1 and any(partial[0].glob("*.safetensors"))  # what the dead process left
    [run] = storage.list_runs()
    assert run["status"] == "interrupted"
    assert not partial[0].exists() and [p.name for p in runs_dir().iterdir() if p.name.startswith(".run-")] == []


def test_model_folders_are_unique_per_run_even_when_two_databases_share_a_home(spanlab_home, tiny_model_dir,
                                                                                monkeypatch):
    results = {}
    for name, labels in (("a", ("positive", "negative")), ("b", ("yes", "no"))):
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{spanlab_home / f'{name}.db'}")
        rows = [{"text": r["text"], "label": labels[r["label"] != "positive"]} for r in sentiment_rows(4)]
        storage.create_dataset("s", "classification", rows)
        run = train_and_get(TrainConfig(dataset="s", model=str(tiny_model_dir), device="cpu", batch_size=8,
                                        max_steps=2, few_shot="off", validation_fraction=0))
        assert run["status"] == "completed", run["error"]
        results[name] = run
    storage.dispose_engines()
    a, b = results["a"], results["b"]
    assert a["id"] == b["id"] == 1  # the same id in both databases...
    assert a["artifact_dir"] != b["artifact_dir"]  # ...and still two folders: b did not replace a's model
    for run, labels in ((a, {"positive", "negative"}), (b, {"yes", "no"})):
        folder = Path(run["artifact_dir"])
        assert set(json.loads((folder / "config.json").read_text())["id2label"].values()) == labels
        assert json.loads((folder / "spanlab.json").read_text())["run_token"] == run["token"]
    # had b's run still pointed at a's folder (what replacing run-1 did), it would predict a's labels: refused
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{spanlab_home / 'b.db'}")
    assert inference.load_predictor(b["id"]).predict("good movie")[0]["label"] in {"yes", "no"}
    storage.update_run(b["id"], artifact_dir=a["artifact_dir"])
    with pytest.raises(inference.PredictorError, match="holds another run's model"):
        inference.load_predictor(b["id"])
    storage.dispose_engines()


def test_an_existing_model_folder_is_never_replaced(spanlab_home, tiny_model_dir):
    storage.create_dataset("s", "classification", sentiment_rows(4))
    cfg = TrainConfig(dataset="s", model=str(tiny_model_dir), device="cpu", batch_size=8, max_steps=2,
                      few_shot="off", validation_fraction=0)
    run_id = storage.create_run("s", "classification", cfg.model, cfg.to_params())
    taken = runs_dir() / storage.model_folder_name(run_id, storage.get_run(run_id)["token"])
    taken.mkdir(parents=True)
    (taken / "keep.txt").write_text("someone else's model")
    execute_run(run_id)
    run = storage.get_run(run_id)
    assert run["status"] == "failed" and "already exists" in run["error"] and "never replaces" in run["error"]
    assert (taken / "keep.txt").read_text() == "someone else's model"
    assert [p.name for p in runs_dir().iterdir() if p.name.startswith(".run-")] == []


def test_a_worker_whose_run_is_deleted_stops_and_writes_nothing_more(database_url, tiny_model_dir, monkeypatch):
    """A run marked interrupted by mistake (e.g. its heartbeat looked stale) and then deleted: its still-live
    worker must not write its status, curves or model into any row, and leaves no folder."""
    monkeypatch.setattr(runs_store, "HEARTBEAT_INTERVAL_S", 0.2)
    storage.create_dataset("s", "classification", sentiment_rows(4))
    cfg = TrainConfig(dataset="s", model=str(tiny_model_dir), device="cpu", batch_size=2, max_steps=1_000_000,
                      min_steps=1_000_000, few_shot="off", validation_fraction=0)
    run_id = storage.create_run("s", "classification", cfg.model, cfg.to_params())
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(execute_run(run_id)))
    worker.start()
    try:
        wait_for(lambda: training_run(run_id), "the run to be training")
        storage.update_run(run_id, status="interrupted")
        storage.delete_run(run_id)
        newer = storage.create_run("s", "classification", cfg.model, cfg.to_params())
        worker.join(timeout=180)
    finally:
        if worker.is_alive():
            storage.request_cancel(run_id)
            worker.join(timeout=60)
    assert outcome["status"] == "deleted"
    assert newer > run_id
    run = storage.get_run(newer)
    assert (run["status"], run["artifact_dir"], run["step"]) == ("queued", None, 0)
    assert storage.metric_frame(newer).empty
    assert [p.name for p in runs_dir().iterdir() if p.name != "logs"] == []
