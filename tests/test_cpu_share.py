"""core.cpu_share: a training run in this process pauses between its steps while someone waits for a prediction
(the Demo while a run trains, issue 13 finding 10; bench/demo_latency.py measures it)."""
from __future__ import annotations

import threading

from core import cpu_share, storage
from core.inference import load_predictor
from tests.conftest import sentiment_rows, train_and_get


def test_pause_waits_for_the_prediction_and_returns_at_once_without_one():
    assert cpu_share.pause_for_predictions() == 0.0
    waited = []
    with cpu_share.prediction():
        assert cpu_share.predictions_running() == 1
        thread = threading.Thread(target=lambda: waited.append(cpu_share.pause_for_predictions(max_wait=120)))
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # waiting (for up to 120 s) while the prediction runs
    thread.join(timeout=120)
    assert not thread.is_alive() and waited and waited[0] < 120
    assert cpu_share.predictions_running() == 0


def test_training_steps_ask_and_one_prediction_is_marked(spanlab_home, tiny_model_dir, monkeypatch):
    from core.training import TrainConfig
    asked = []
    monkeypatch.setattr(cpu_share, "pause_for_predictions", lambda: asked.append(1) or 0.0)
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    run = train_and_get(TrainConfig(dataset="sentiment", model=str(tiny_model_dir), max_steps=3, batch_size=8,
                                    device="cpu", few_shot="off"))
    assert run["status"] == "completed", run["error"]
    assert len(asked) == 3  # before each optimizer step on the CPU

    predictor = load_predictor(run["id"])
    seen = []
    real = predictor.predict_batch
    monkeypatch.setattr(predictor, "predict_batch",
                        lambda *a, **k: seen.append(cpu_share.predictions_running()) or real(*a, **k))
    predictor.predict("good movie")  # one text: someone waits for it
    predictor.predict(["good movie", "bad film"])  # a batch does not pause training
    assert seen == [1, 0] and cpu_share.predictions_running() == 0


def test_a_run_in_another_process_pauses_while_this_one_predicts(spanlab_home):
    """A CLI `train` beside the app: its steps wait while the app computes a Demo answer (a flag file per predicting
    process in SPANLAB_HOME/predicting), and go on once the answer is out."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    other = ("import sys; from core import cpu_share; print('READY', flush=True); "
             "print('WAITED', cpu_share.pause_for_predictions(max_wait=120), flush=True)")
    root = Path(__file__).resolve().parent.parent
    with cpu_share.prediction():
        flag = cpu_share.flag_folder() / f"{cpu_share.HOST}-{os.getpid()}"
        assert flag.exists() and not cpu_share.others_predicting()  # its own flag does not pause this process
        process = subprocess.Popen([sys.executable, "-c", other], cwd=root, stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "SPANLAB_HOME": str(spanlab_home)})
        assert process.stdout.readline().strip() == "READY"
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        assert process.poll() is None  # still pausing while this process predicts
    assert not flag.exists()
    out, _ = process.communicate(timeout=120)
    waited = float(out.split()[-1])
    assert process.returncode == 0 and 0 < waited < 120, out


def test_flags_of_gone_processes_are_removed_and_old_ones_ignored(spanlab_home):
    import os
    import subprocess
    import sys
    import time
    folder = cpu_share.flag_folder()
    folder.mkdir(parents=True, exist_ok=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_flag = folder / f"{cpu_share.HOST}-{int(gone.stdout)}"
    dead_flag.touch()
    other_host = folder / f"another-machine-{os.getppid()}"
    other_host.touch()  # another machine's process (a shared home): not this machine's cores
    assert not cpu_share.others_predicting()
    assert not dead_flag.exists() and other_host.exists()

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live_flag = folder / f"{cpu_share.HOST}-{sleeper.pid}"
        live_flag.touch()
        assert cpu_share.others_predicting()
        old = time.time() - cpu_share.MAX_PAUSE_S - 5
        os.utime(live_flag, (old, old))  # a prediction running longer than MAX_PAUSE_S: training takes its step
        assert not cpu_share.others_predicting() and live_flag.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not cpu_share.others_predicting() and not live_flag.exists()
