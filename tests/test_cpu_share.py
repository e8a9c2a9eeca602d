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
