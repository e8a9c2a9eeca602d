"""Several people on one SpanLab (AppTest): widget choices survive other people's edits, every change is
attributed, undo reverts only the clicking person's own change, runs and datasets are protected while in use."""
from __future__ import annotations

import html
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import storage

APP = Path(__file__).resolve().parent.parent / "app.py"


def shown(markdown: str) -> str:
    """What a reader sees of a Markdown string that shows user text as plain text (pages.common.plain)."""
    return html.unescape(markdown).replace("\u2060", "").replace("**", "")


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
    at.switch_page("pages/runs.py").run()  # a visit to another page used to reset it to the first dataset
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
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


def named_tab(page: str, name: str) -> AppTest:
    """A tab whose user typed ``name`` into the sidebar, then opened ``page``. (The name is typed after the first
    run: AppTest executes app.py itself only then, a pages/ folder sitting next to it; later runs execute the page
    alone, so the sidebar is not in their element tree, though a browser always shows it.)"""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert "Working as **anonymous**" in " ".join(caption.value for caption in at.sidebar.caption)
    at.sidebar.text_input(key="identity_name").set_value(name).run()
    assert not at.exception, at.exception
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def _label_tab(name: str) -> AppTest:
    return named_tab("label", name)


def test_each_annotator_undoes_only_their_own_change_and_history_says_who(spanlab_home):
    storage.create_dataset("tickets", "classification", [{"text": "refund my payment"}, {"text": "app crashes"},
                                                         {"text": "where is my parcel"}],
                           labels=["billing", "technical", "shipping"])
    bea = _label_tab("Bea")
    bea.button(key="set_label:billing").click().run()  # row 1
    cal = _label_tab("Cal")  # opens on the first unlabeled row: row 2
    cal.button(key="set_label:technical").click().run()
    assert [e["label"] for e in storage.load_examples("tickets")] == ["billing", "technical", None]

    undo = cal.button(key="undo")
    assert undo.label == "↶ Undo your row 2 change: 'technical' → (none)"  # says what a click reverts
    undo.click().run()
    assert not cal.exception, cal.exception
    assert [e["label"] for e in storage.load_examples("tickets")] == ["billing", None, None]  # Bea's label kept
    assert cal.button(key="undo").disabled  # nothing of Cal's left
    history = cal.dataframe[-1].value
    assert history[["who", "how"]].values.tolist() == [["Cal", "undo"], ["Cal", "by hand (undone)"],
                                                       ["Bea", "by hand"]]
    bea.run()
    assert bea.button(key="undo").label == "↶ Undo your row 1 change: 'billing' → (none)"


def test_train_page_follows_this_tabs_run_and_asks_before_cancelling_someone_elses(spanlab_home):
    alpha, _ = two_datasets()
    theirs = storage.create_run("alpha", "classification", "tiny", {}, created_by="Dan")
    storage.update_run(theirs, status="running")
    at = named_tab("train", "Eve")
    assert any("Started by Dan" in caption.value for caption in at.caption)
    at.button(key=f"train_cancel_{theirs}").click().run()
    assert any("started by Dan, not by you" in warning.value for warning in at.warning)
    assert storage.get_run(theirs)["cancelled_by"] is None  # nothing happened yet
    at.button(key=f"train_cancel_no_{theirs}").click().run()
    assert not any("not by you" in warning.value for warning in at.warning)

    # Eve's own run: the page stays on it while Dan's keeps training, and tells her how it ended
    mine = storage.create_run("alpha", "classification", "tiny", {}, created_by="Eve")
    at.session_state["train_run_id"] = mine
    at.run()
    assert any("Your run (started from this tab)" in caption.value for caption in at.caption)
    assert at.session_state["train_watching"] == mine  # app.py announces its end (next test)
    storage.update_run(mine, status="completed", metrics={"accuracy": 0.75})
    at.run()
    assert not at.exception, at.exception
    assert any(f"Run #{mine} completed" in message.value for message in at.success)
    storage.update_run(theirs, status="completed")
    queued = storage.create_run("alpha", "classification", "tiny", {}, created_by="Dan")
    at.run()
    assert any(f"Run #{mine} completed" in message.value for message in at.success)  # not Dan's queued run
    assert not any(f"Run #{queued} " in markdown.value for markdown in at.markdown)


def test_the_end_of_ones_run_is_announced_on_whatever_page_one_is(spanlab_home):
    """app.py toasts it before drawing the page. (AppTest executes app.py itself only on a tab's first run, since
    a pages/ folder sits next to it — later runs execute the page alone — so each check opens a fresh tab.)"""
    two_datasets()
    mine = storage.create_run("alpha", "classification", "tiny", {}, created_by="Eve")
    storage.update_run(mine, status="running")

    def tab_watching() -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.session_state["train_watching"] = mine  # what the Train page notes while this tab's run trains
        return at.run()

    assert not tab_watching().toast
    storage.update_run(mine, status="failed", error="out of memory")
    at = tab_watching()
    assert not at.exception, at.exception
    assert [shown(toast.value) for toast in at.toast] == [f"Your run #{mine} failed: out of memory"]
    assert at.session_state["train_announced"] == [mine]  # told once: later draws stay quiet


def _identity_script():
    import streamlit as st

    from pages.identity import current_user, sidebar
    with st.sidebar:
        sidebar()
    st.markdown(f"user={current_user()}")


def test_identity_is_the_sign_in_else_the_typed_name_else_anonymous():
    at = AppTest.from_function(_identity_script).run()
    assert at.markdown[-1].value == "user=anonymous"
    at.sidebar.text_input(key="identity_name").set_value("  Bea   Example ").run()
    assert at.markdown[-1].value == "user=Bea Example"
    at.session_state["signed_in_user"] = "bea@example.org"  # the password sign-in's user wins
    at.run()
    assert at.markdown[-1].value == "user=bea@example.org"
    assert not at.sidebar.text_input and "Signed in as bea@example.org" in shown(at.sidebar.caption[0].value)


def test_train_page_says_before_the_run_what_it_will_measure(spanlab_home):
    from tests.conftest import sentiment_rows
    few = storage.create_dataset("few", "classification", sentiment_rows(6))
    storage.create_dataset("checks", "classification", sentiment_rows(2))
    at = open_page("train")
    at.selectbox(key="train_dataset").set_value(few["id"]).run()
    assert not any("Hold out" in option for option in at.selectbox(key="train_eval_dataset").options)
    told = " ".join(caption.value for caption in at.caption)
    assert f"all {few['labeled']} labeled rows train and none is held out (the few-shot recipe" in told
    assert "Afterwards a 5-fold cross-validation estimates them" in told
    at.number_input(key="train_cross_validation").set_value(0).run()  # no estimate: says nothing is measured
    told = " ".join(message.value for message in at.info)
    assert f"Nothing will be measured: all {few['labeled']} labeled rows train and none is held out" in told
    at.radio(key="train_few_shot").set_value("off")
    at.number_input(key="train_validation_fraction").set_value(0.25).run()
    captions = " ".join(caption.value for caption in at.caption)
    assert f"of the {few['labeled']} labeled rows, held out (not trained on)" in captions
    assert "Nothing will be measured" not in " ".join(message.value for message in at.info)
    at.selectbox(key="train_eval_dataset").set_value("checks").run()
    assert "come from the evaluation dataset 'checks' (4 labeled rows)" in " ".join(c.value for c in at.caption)


def test_a_run_without_held_out_rows_shows_its_cross_validation_estimate(spanlab_home):
    two_datasets()
    run_id = storage.create_run("alpha", "classification", "tiny", {}, created_by="Eve")
    estimate = {"folds": 5, "rows": 10, "metrics": {"accuracy": 0.8, "macro_f1": 0.75,
                                                    "confusion_matrix": [[4, 1], [1, 4]], "labels": ["neg", "pos"]}}
    storage.update_run(run_id, status="completed", metrics={"stopped": "finished", "cross_validation": estimate})
    at = open_page("runs")
    assert "5-fold cross-validation estimate: each of the 10 labeled rows" in " ".join(c.value for c in at.caption)
    assert [(m.label, m.value) for m in at.metric][:2] == [("accuracy", "0.800"), ("macro-F1", "0.750")]
    assert at.dataframe[0].value["best metric"].tolist() == ["macro-F1 0.750 (5-fold estimate)"]
    at = open_page("train")
    at.session_state["train_run_id"] = run_id
    at.run()
    assert [(m.label, m.value) for m in at.metric][:2] == [("accuracy (estimate)", "0.800"),
                                                           ("macro-F1 (estimate)", "0.750")]
