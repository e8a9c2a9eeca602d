"""Train page (AppTest): "Start from a run" offers the completed runs of the dataset's task (chosen by run id) and
starts a run with the model "run:N"; a chosen run deleted meanwhile is said, never silently replaced."""
from __future__ import annotations

import pytest

from core import storage
from core.training import TrainConfig
from pages.common import get_runner
from tests.conftest import qa_rows, sentiment_rows, train_and_get
from tests.test_app_train import open_page


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_model_dir):
    """A home with a finished QA run and a finished classification run (tiny model)."""
    monkeypatch.setenv("SPANLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_runner.clear()
    storage.create_dataset("general", "qa", qa_rows())
    storage.create_dataset("mine", "qa", qa_rows()[:4])
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    quick = dict(model=str(tiny_model_dir), learning_rate=1e-3, batch_size=8, max_steps=2, device="cpu")
    runs = {"qa": train_and_get(TrainConfig(dataset="general", max_length=64, doc_stride=16, **quick)),
            "classification": train_and_get(TrainConfig(dataset="sentiment", few_shot="off", **quick))}
    assert all(run["status"] == "completed" for run in runs.values())
    yield runs
    runner = get_runner()
    for run in storage.list_runs():
        if run["status"] in ("queued", "running"):
            runner.cancel(run["id"])
            runner.wait(run["id"], timeout=60)
    get_runner.clear()


def test_start_from_a_run_offers_completed_runs_of_the_task_and_trains_from_it(home):
    qa_run = home["qa"]["id"]
    at = open_page("train")
    at.selectbox(key="train_dataset").set_value(storage.get_dataset("mine")["id"])
    at.selectbox(key="train_model_choice").set_value("finished run").run()
    assert not at.exception, at.exception
    picker = at.selectbox(key="train_source_run")
    assert [option.startswith(f"#{qa_run} general") for option in picker.options] == [True]  # the QA run only
    assert picker.value is None and at.button(key="train_start").disabled  # nothing chosen for the user
    picker.set_value(qa_run).run()
    assert any(f"run #{qa_run}" in c.value and "answer head is kept" in c.value for c in at.caption)
    at.selectbox(key="train_device").set_value("cpu")
    at.number_input(key="train_max_steps").set_value(1)
    at.number_input(key="train_max_length").set_value(64)
    at.number_input(key="train_doc_stride").set_value(16)
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    run = storage.get_run(at.session_state["train_run_id"])
    assert run["model"] == f"run:{qa_run}" and run["dataset_name"] == "mine"
    run = get_runner().wait(run["id"], timeout=180)
    assert run["status"] == "completed", run["error"]
    assert run["params"]["source_run"] == qa_run


def test_a_chosen_run_deleted_meanwhile_is_said_and_nothing_starts(home):
    qa_run = home["qa"]["id"]
    at = open_page("train")
    at.selectbox(key="train_dataset").set_value(storage.get_dataset("mine")["id"])
    at.selectbox(key="train_model_choice").set_value("finished run").run()
    at.selectbox(key="train_source_run").set_value(qa_run).run()
    assert not at.button(key="train_start").disabled
    storage.delete_run(qa_run)
    runs_before = len(storage.list_runs())
    at.run()
    assert not at.exception, at.exception
    assert any(f"Run #{qa_run}" in w.value or "No completed" in w.value for w in [*at.warning, *at.info])
    assert at.button(key="train_start").disabled  # a browser cannot start it
    assert len(storage.list_runs()) == runs_before


def test_a_run_of_another_task_is_refused_on_the_page(home, monkeypatch):
    """A run offered a moment ago that no longer fits (here: the choice list is bypassed) gives an error, no run."""
    cls_run = home["classification"]["id"]
    at = open_page("train")
    at.selectbox(key="train_dataset").set_value(storage.get_dataset("mine")["id"])
    at.selectbox(key="train_model_choice").set_value("finished run").run()
    at.selectbox(key="train_source_run").set_value(home["qa"]["id"]).run()
    import core.source_runs as source_runs
    real = source_runs.for_task
    monkeypatch.setattr(source_runs, "for_task", lambda ref, task, dataset=None: real(f"run:{cls_run}", task,
                                                                                       dataset))
    runs_before = len(storage.list_runs())
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert f"{cls_run} trained a model for text classification" in errors and "same task" in errors
    assert len(storage.list_runs()) == runs_before
