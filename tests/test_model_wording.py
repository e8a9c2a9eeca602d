"""Issue 13, finding 9: without the Hugging Face Hub the Train page preselects a model that works here and keeps Start
training off for one that cannot load; every model message is worded for the surface it is read on (the app's Model
box, the command line's --model); the Hub check answers fast even when name lookup hangs."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import models, storage
from core.training import TrainConfig, execute_run
from tests.conftest import sentiment_rows
from tests.test_cli import cli, write_csv

APP = Path(__file__).resolve().parent.parent / "app.py"
APP_ADVICE = "choose 'Built-in MiniLM (offline)' in the Model box"
APP_SENTENCE = "C" + APP_ADVICE[1:]  # the same words starting a sentence


def open_page(page: str) -> AppTest:
    st.cache_data.clear()  # the page caches the Hub check for 30 s: each test sets its own
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " ".join(element.value for element in elements)


def offline_failed_run() -> int:
    """A run of the default model recorded as the command line records it, failed because the Hub is offline."""
    storage.create_dataset("reviews", "classification", sentiment_rows(4))
    cfg = TrainConfig(dataset="reviews", device="cpu")  # no model given: the default (SpanBERT)
    run_id = storage.create_run("reviews", "classification", cfg.model, cfg.to_params())
    execute_run(run_id)
    assert storage.get_run(run_id)["status"] == "failed"
    return run_id


# --- wording -------------------------------------------------------------------------------------------------------

def messages_for_every_piece_of_advice(tmp_path, monkeypatch) -> list[str]:
    """Real messages, each raised by core for a model a person picked badly."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found = []
    for attempt in (lambda: models.resolve(models.DEFAULT_MODEL), lambda: models.resolve(str(tmp_path)),
                    lambda: models.resolve(str(tmp_path / "missing") + "/"),
                    lambda: models.choose_device("cpu", "fp16")):
        with pytest.raises(Exception) as caught:
            attempt()
        found.append(str(caught.value))
    monkeypatch.setenv("SPANLAB_MODEL_ROOTS", str(tmp_path / "allowed"))
    found.append(models.outside_roots_message("/elsewhere/model"))
    return found


def test_every_message_reads_as_command_line_words_and_turns_into_the_apps(tmp_path, monkeypatch):
    messages = messages_for_every_piece_of_advice(tmp_path, monkeypatch)
    shown = " ".join(messages)
    for key, (cli_words, app_words) in models.ADVICE.items():
        if key != "no_cuda":  # needs a machine without CUDA asked for cuda: checked below by its words alone
            assert cli_words.lower() in shown.lower(), key
    for message in messages:
        app = models.worded_for(message, models.APP)
        assert "--" not in app, app
        assert models.worded_for(message, models.CLI) == message
    offline = models.worded_for(messages[0], models.APP)
    assert offline.startswith("Cannot download 'SpanBERT/spanbert-base-cased' (the default model)")
    assert "Choose 'Built-in MiniLM (offline)' in the Model box" in offline
    cuda = models.advice("no_cuda", capital=True) + " but"
    assert models.worded_for(cuda, models.APP) == "The Device box says cuda but"
    assert models.worded_for("x: " + models.advice("no_cuda"), models.APP) == "x: the Device box says cuda"
    with pytest.raises(ValueError, match="surface"):
        models.worded_for("x", "browser")


def test_cli_says_the_default_model_needs_the_hub_and_names_the_flag(spanlab_home, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = write_csv(tmp_path / "r.csv", sentiment_rows(4), ["text", "label"])
    cli(capsys, "import", str(data), "--task", "classification")
    started = time.monotonic()
    code, out, err = cli(capsys, "train", "--dataset", "r", "--no-progress")
    assert time.monotonic() - started < 60
    assert code == 1 and out["status"] == "failed"
    assert "'SpanBERT/spanbert-base-cased' (the default model)" in out["error"]
    assert f"Use --model {models.BUILTIN_ALIAS}" in out["error"] and "Model box" not in out["error"]


# --- the Hub check ------------------------------------------------------------------------------------------------

def test_hub_check_answers_within_its_timeout_when_name_lookup_hangs(monkeypatch):
    release = threading.Event()

    def hanging_lookup(*args, **kwargs):
        release.wait(60)
        raise socket.gaierror("no answer")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(socket, "getaddrinfo", hanging_lookup)
    started = time.monotonic()
    try:
        assert models.hub_reachable(timeout=0.5) is False
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_default_here_is_spanbert_with_the_hub_and_the_builtin_without(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # and SpanBERT is not in this machine's cache
    assert models.default_here(True) == (models.DEFAULT_MODEL, None)
    ref, why = models.default_here(False)
    assert ref == models.BUILTIN_ALIAS and "Hugging Face Hub cannot be reached" in why


# --- the Train page -----------------------------------------------------------------------------------------------

def test_train_page_offline_preselects_the_builtin_and_keeps_start_off_for_spanbert(spanlab_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    storage.create_dataset("reviews", "classification", sentiment_rows(4))
    at = open_page("train")
    assert at.selectbox(key="train_model_choice").value == models.BUILTIN_ALIAS
    assert "Built-in MiniLM (offline) is preselected: the Hugging Face Hub cannot be reached" in texts(at.caption)
    assert not at.button(key="train_start").disabled
    at.selectbox(key="train_model_choice").set_value(models.DEFAULT_MODEL).run()
    assert not at.exception, at.exception
    assert at.button(key="train_start").disabled  # said before the click, not after a failed run
    warning = texts(at.warning)
    assert "cannot be loaded here" in warning and "Start training stays off" in warning
    assert APP_SENTENCE in warning and "--model" not in warning
    at.selectbox(key="train_model_choice").set_value("local folder").run()
    at.text_input(key="train_model_folder").set_value("/no/such/folder").run()
    assert at.button(key="train_start").disabled
    assert APP_ADVICE in texts(at.warning) and "--model" not in texts(at.warning)


def test_train_page_keeps_spanbert_when_the_hub_is_reachable(spanlab_home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    storage.create_dataset("reviews", "classification", sentiment_rows(4))
    at = open_page("train")
    assert at.selectbox(key="train_model_choice").value == models.DEFAULT_MODEL
    assert "preselected" not in texts(at.caption)
    assert not at.button(key="train_start").disabled  # it downloads when the run starts
    assert "downloaded from the Hugging Face Hub" in texts(at.info)


def test_a_failed_runs_message_is_worded_for_the_app_on_train_and_runs_pages(spanlab_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_id = offline_failed_run()
    assert "--model builtin-minilm" in storage.get_run(run_id)["error"]  # stored as the command line says it
    at = open_page("train")
    at.session_state["train_run_id"] = run_id  # as if this tab had started it
    at.run()
    error = texts(at.error)
    assert APP_SENTENCE in error and "--model" not in error
    runs = open_page("runs")
    error = texts(runs.error)
    assert APP_SENTENCE in error and "--model" not in error


def test_the_run_end_notice_is_worded_for_the_app(spanlab_home, monkeypatch):
    from pages.notices import outcome
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = outcome(storage.get_run(offline_failed_run()))
    assert APP_SENTENCE in text and "--model" not in text
