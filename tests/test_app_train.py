"""Train page (AppTest): model picker warnings and licence, a short run to completion, cancelling a long run from a
second tab, and a failed run's message."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import storage
from pages.common import get_runner
from tests.conftest import sentiment_rows

APP = Path(__file__).resolve().parent.parent / "app.py"


def open_page(page: str) -> AppTest:
    """A fresh browser tab on ``pages/<page>.py`` of the real app (its navigation, so page links resolve)."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One SPANLAB_HOME (and one job runner) for the module, with a trainable and an untrainable dataset."""
    with pytest.MonkeyPatch.context() as patch:  # one torch thread: see conftest
        path = tmp_path_factory.mktemp("train-page-home")
        patch.setenv("SPANLAB_HOME", str(path))
        patch.delenv("DATABASE_URL", raising=False)
        get_runner.clear()
        storage.create_dataset("sentiment", "classification", sentiment_rows(6))
        storage.create_dataset("one-label", "classification", [{"text": "good movie", "label": "positive"},
                                                                 {"text": "great film", "label": "positive"}])
        yield path
        runner = get_runner()
        for run in storage.list_runs():  # never leave a training thread writing into a removed home
            if run["status"] in ("queued", "running"):
                runner.cancel(run["id"])
                runner.wait(run["id"], timeout=60)
        get_runner.clear()


def choose_local_model(at: AppTest, folder: Path, dataset: str, **numbers) -> AppTest:
    at.selectbox(key="train_dataset").set_value(storage.get_dataset(dataset)["id"])
    at.selectbox(key="train_model_choice").set_value("local folder").run()
    at.text_input(key="train_model_folder").set_value(str(folder))
    at.selectbox(key="train_device").set_value("cpu")
    for key, value in numbers.items():
        at.number_input(key=f"train_{key}").set_value(value)
    return at.run()


def test_model_picker_shows_licence_and_warns_before_an_offline_hub_model(home):
    at = open_page("train")
    at.selectbox(key="train_model_choice").set_value("SpanBERT/spanbert-base-cased").run()
    captions = " ".join(c.value for c in at.caption)
    assert "CC-BY-NC 4.0" in captions
    at.selectbox(key="train_model_choice").set_value("hub id").run()
    assert at.button(key="train_start").disabled  # nothing typed yet
    at.text_input(key="train_model_hub").set_value("someone/not-in-the-cache").run()
    warnings = " ".join(w.value for w in at.warning)
    assert "Built-in MiniLM" in warnings and "someone/not-in-the-cache" in warnings  # (the Hub is offline here)
    at.selectbox(key="train_model_choice").set_value("builtin-minilm").run()
    assert "Built-in MiniLM" not in " ".join(w.value for w in at.warning)


def test_short_run_trains_and_shows_its_metrics(home, tiny_model_dir):
    at = open_page("train")
    choose_local_model(at, tiny_model_dir, "sentiment", max_steps=12, learning_rate=2e-3, batch_size=8,
                       eval_every=6)
    at.selectbox(key="train_eval_dataset").set_value("sentiment")
    assert at.radio(key="train_few_shot").value == "auto"  # small data: the few-shot recipe by default
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    run_id = at.session_state["train_run_id"]
    params = storage.get_run(run_id)["params"]
    assert params["max_steps"] == 12 and params["device"] == "cpu" and params["learning_rate"] == 2e-3
    assert params["few_shot"] == "auto"
    run = get_runner().wait(run_id, timeout=180)
    assert run["status"] == "completed", run["error"]

    at.run()
    assert not at.exception, at.exception
    assert any("completed" in s.value for s in at.success)
    assert {m.label for m in at.metric} == {"accuracy", "macro-F1"}
    names = set(storage.metric_frame(run_id)["name"])
    assert "train/contrastive_loss" in names and "train/loss" in names  # both stages of the few-shot recipe ran
    assert len(at.get("page_link")) == 2  # to the Runs and Demo pages
    assert not at.get("progress")  # no live view any more: the polling fragment is gone


def test_second_tab_sees_the_live_run_and_cancels_it(home, tiny_model_dir):
    first = open_page("train")
    choose_local_model(first, tiny_model_dir, "sentiment", max_steps=100000, epochs=1000.0, batch_size=2)
    first.radio(key="train_few_shot").set_value("off")  # the plain fine-tuning loop, chosen on the page
    assert first.radio(key="train_freeze_word_embeddings").value == "auto"
    first.radio(key="train_freeze_word_embeddings").set_value("off")
    assert first.radio(key="train_label_examples").value == "auto"
    first.radio(key="train_label_examples").set_value("off")
    first.button(key="train_start").click().run()
    run_id = first.session_state["train_run_id"]
    params = storage.get_run(run_id)["params"]
    assert params["few_shot"] == "off" and params["freeze_word_embeddings"] == "off"
    assert params["label_examples"] == "off"

    second = open_page("train")  # another tab: not the one that started it, still shows it live
    assert second.get("progress"), "the active run is not shown"
    assert any(f"Run #{run_id}" in m.value for m in second.markdown)
    second.button(key=f"train_cancel_{run_id}").click().run()
    run = get_runner().wait(run_id, timeout=120)
    assert run["status"] == "cancelled"

    first.run()
    assert not first.exception, first.exception
    assert any("cancelled" in w.value for w in first.warning)


def test_failed_run_shows_its_error(home, tiny_model_dir):
    at = open_page("train")
    choose_local_model(at, tiny_model_dir, "one-label", max_steps=5)
    at.button(key="train_start").click().run()
    run = get_runner().wait(at.session_state["train_run_id"], timeout=120)
    assert run["status"] == "failed"
    at.run()
    errors = [e.value for e in at.error]
    assert errors and "at least 2 labels" in errors[0]
    assert not at.exception


def test_max_length_beyond_the_model_limit_is_refused_before_a_run_exists(home, tiny_model_dir):
    at = open_page("train")
    choose_local_model(at, tiny_model_dir, "sentiment", max_length=4096, max_steps=5)
    runs_before = storage.list_runs()
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "max_length 4096" in errors and "its limit is 512 tokens" in errors
    assert storage.list_runs() == runs_before


def test_the_server_does_not_collect_all_garbage_after_every_script_run():
    """Streamlit's default gc.collect(2) after each script run held the interpreter lock about 0.3 s with torch and a
    model loaded; the Train page's polling then slowed the run it showed (the first step of a run took 1.6 s instead of
    0.3 s, BENCHMARKS.md section 3b). `streamlit run` from the repository reads .streamlit/config.toml, which turns it
    off."""
    import subprocess
    import sys
    probe = ("from streamlit import config; config.get_config_options(force_reparse=True); "
             "print(config.get_option('runner.postScriptGC'))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=APP.parent, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stdout + result.stderr
