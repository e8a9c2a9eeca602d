"""Several people on one SpanLab (AppTest): widget choices survive other people's edits, every change is
attributed, undo reverts only the clicking person's own change, runs and datasets are protected while in use."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import storage

APP = Path(__file__).resolve().parent.parent / "app.py"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def two_datasets() -> tuple[dict, dict]:
    first = storage.create_dataset("alpha", "classification", [{"text": "good", "label": "pos"},
                                                               {"text": "bad", "label": "neg"}])
    second = storage.create_dataset("beta", "classification", [{"text": "fine", "label": None},
                                                              {"text": "awful", "label": None}],
                                    labels=["neg", "pos"])
    return first, second


def test_train_page_keeps_the_chosen_dataset_when_someone_labels_a_row(spanlab_home):
    _, beta = two_datasets()
    at = open_page("train")
    at.selectbox(key="train_dataset").set_value(beta["id"]).run()
    box = at.selectbox(key="train_dataset")
    assert box.value == beta["id"]
    shown = box.options[box.index]  # the browser holds the option's text and sends it back on every rerun
    example = storage.load_examples("beta")[0]
    storage.set_label(example["id"], "pos", example["version"])  # another person, another session
    at.run()
    assert not at.exception, at.exception
    box = at.selectbox(key="train_dataset")
    # The browser keeps a selection only while the text it shows is still one of the options (otherwise it falls
    # back to the first option): the texts must not depend on anything another person changes.
    assert shown in box.options
    assert box.value == beta["id"]
    at.selectbox(key="train_dataset").set_value(shown).run()  # what the browser sends back: still beta
    assert at.selectbox(key="train_dataset").value == beta["id"]
    assert "1 of 2 rows labeled" in " ".join(c.value for c in at.caption)


def test_runs_page_keeps_the_chosen_run_while_it_trains_and_ends(spanlab_home):
    alpha, _ = two_datasets()
    older = storage.create_run("alpha", "classification", "tiny-model", {})
    training = storage.create_run("alpha", "classification", "tiny-model", {})
    storage.update_run(older, status="completed", best_metric_name="eval/accuracy", best_metric=0.5)
    storage.update_run(training, status="running")
    at = open_page("runs")
    at.selectbox(key="runs_detail").set_value(older).run()
    box = at.selectbox(key="runs_detail")
    shown = box.options[box.index]
    storage.update_run(older, best_metric=0.75)  # nothing another person does may change the texts
    storage.update_run(training, status="completed", best_metric_name="eval/accuracy", best_metric=0.9)
    at.run()
    assert not at.exception, at.exception
    assert shown in at.selectbox(key="runs_detail").options
    assert at.selectbox(key="runs_detail").value == older
