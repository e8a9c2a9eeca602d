"""Label page through Streamlit's AppTest: one-at-a-time labeling, undo, stale edits refused, the grid, label
management, QA answer picking, and suggestions from a tiny trained model."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import storage
from tests.conftest import sentiment_rows
from tests.test_app_data import open_app


def _texts(elements) -> list[str]:
    return [element.value for element in elements]


def _progress(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def _shown_text(at: AppTest) -> str:
    """Body of the last highlighted block that is not the question (the example text / QA context)."""
    return at.html[-1].proto.body


@pytest.fixture
def tickets(spanlab_home) -> dict:
    rows = [{"text": "refund my payment"}, {"text": "app crashes on start"}, {"text": "where is my parcel"},
            {"text": "charged twice", "label": "billing"}]
    return storage.create_dataset("tickets", "classification", rows, labels=["billing", "technical", "shipping"])


def test_empty_state_points_to_the_data_page(spanlab_home):
    at = open_app("pages/label.py")
    assert any("No datasets yet" in message for message in _texts(at.info))
    assert [link.proto.page for link in at.get("page_link")] == ["data"]


def test_one_at_a_time_saves_advances_and_undo_restores(tickets):
    at = open_app("pages/label.py")
    assert _progress(at) == "1 of 4 labeled"
    assert "refund my payment" in _shown_text(at)

    at.button(key="set_label:billing").click().run()
    assert not at.exception
    assert _progress(at) == "2 of 4 labeled"
    assert "app crashes on start" in _shown_text(at)  # advanced to the next unlabeled
    at.button(key="set_label:technical").click().run()
    assert _progress(at) == "3 of 4 labeled" and "where is my parcel" in _shown_text(at)
    assert [example["label"] for example in storage.load_examples("tickets")] == [
        "billing", "technical", None, "billing"]

    at.button(key="undo").click().run()
    assert "Undone: row 2 label is back to (none)." in _texts(at.info)
    assert _progress(at) == "2 of 4 labeled"
    assert "app crashes on start" in _shown_text(at)  # the undone example is shown again
    history = at.dataframe[-1].value
    assert history["change"].tolist()[:2] == ["'technical' → (none)", "(none) → 'technical'"]

    at.button(key="skip").click().run()  # skip leaves it unlabeled
    assert "where is my parcel" in _shown_text(at)
    at.button(key="previous").click().run()
    assert "app crashes on start" in _shown_text(at)


def test_stale_edit_is_refused_with_a_message(tickets):
    at = open_app("pages/label.py")
    first = storage.load_examples("tickets")[0]
    storage.set_label(first["id"], "shipping", first["version"], actor="other tab")  # changed after it was shown
    at.button(key="set_label:billing").click().run()
    assert not at.exception
    errors = _texts(at.error)
    assert len(errors) == 1 and errors[0].startswith("Row 1 was changed elsewhere") and "not saved" in errors[0]
    assert storage.load_examples("tickets")[0]["label"] == "shipping"  # the other edit survived
    assert "refund my payment" in _shown_text(at)  # still on the same row, now with its current label
    at.button(key="set_label:billing").click().run()  # a deliberate second click saves
    assert storage.load_examples("tickets")[0]["label"] == "billing"


def test_grid_saves_edits_refuses_stale_rows_and_bulk_assigns(tickets):
    at = open_app("pages/label.py")
    at.radio(key="label_mode").set_value("Grid").run()
    editor = at.data_editor[0]
    assert editor.value["text"].tolist()[0] == "refund my payment"
    examples = storage.load_examples("tickets")
    at.session_state[editor.key] = {"edited_rows": {0: {"label": "billing"}, 1: {"label": "technical"}},
                                    "added_rows": [], "deleted_rows": []}
    at.run()
    save = at.button(key="grid_save")
    assert save.label == "Save 2 change(s)" and not save.disabled
    storage.set_label(examples[1]["id"], "shipping", examples[1]["version"])  # another tab, meanwhile
    save.click().run()
    assert not at.exception
    assert "Saved 1 label(s)." in _texts(at.success)
    assert any(message.startswith("Row 2 ('app crashes on start') was changed elsewhere") for message in
               _texts(at.error))
    assert [e["label"] for e in storage.load_examples("tickets")] == ["billing", "shipping", None, "billing"]

    at.selectbox(key="grid_show").select("unlabeled only").run()
    assert at.data_editor[0].value["text"].tolist() == ["where is my parcel"]
    at.selectbox(key="grid_show").select("all rows").run()
    at.text_input(key="grid_search").input("PARCEL").run()
    assert at.data_editor[0].value["text"].tolist() == ["where is my parcel"]

    at.selectbox(key="bulk_label").select("shipping").run()
    assert at.button(key="bulk_apply").disabled  # needs the confirmation first
    at.checkbox(key="bulk_confirm").check().run()
    at.button(key="bulk_apply").click().run()
    assert [e["label"] for e in storage.load_examples("tickets")] == ["billing", "shipping", "shipping", "billing"]
    assert storage.label_history("tickets")[0]["actor"] == "bulk"


def test_add_and_rename_labels(tickets):
    at = open_app("pages/label.py")
    at.text_input(key="new_label").input("account").run()
    at.button(key="add_label").click().run()
    assert storage.get_dataset("tickets")["labels"] == ["billing", "technical", "shipping", "account"]
    assert at.button(key="set_label:account")  # a button for the new label
    at.selectbox(key="rename_old").select("billing").run()
    at.text_input(key="rename_new").input("payments").run()
    at.button(key="rename_label").click().run()
    assert not at.exception
    assert any("Renamed 'billing' to 'payments' (1 example(s) changed)" in m for m in _texts(at.success))
    assert storage.load_examples("tickets")[3]["label"] == "payments"


def test_qa_repeated_answer_picks_the_chosen_occurrence(spanlab_home):
    context = "bob met alice . later bob founded acme in 東京 ."
    storage.create_dataset("meetings", "qa", [
        {"context": context, "question": "who founded acme ?", "answer_text": None},
        {"context": context, "question": "who is the ceo ?", "answer_text": None},
    ])
    at = open_app("pages/label.py")
    assert _progress(at) == "0 of 2 answered"
    assert "who founded acme ?" in at.html[0].proto.body
    assert at.button(key="save_answer").disabled  # nothing typed yet

    at.text_input[0].input("bob").run()
    choice = at.radio[0]
    assert choice.options[0].startswith("1. «bob» met alice") and "later «bob» founded" in choice.options[1]
    choice.set_value(1).run()
    assert 'spanlab-active" data-span="1"' in _shown_text(at)  # the chosen one is highlighted
    at.button(key="save_answer").click().run()
    assert not at.exception
    first = storage.load_examples("meetings")[0]
    assert (first["answer_text"], first["answer_start"]) == ("bob", 22)
    assert _progress(at) == "1 of 2 answered"
    assert "who is the ceo ?" in at.html[0].proto.body  # advanced

    at.text_input[0].input("Alice").run()  # not in the context as typed
    assert any("capitalisation differs" in message for message in _texts(at.warning))
    assert at.button(key="save_answer").disabled
    at.button(key="no_answer").click().run()
    second = storage.load_examples("meetings")[1]
    assert (second["answer_text"], second["answer_start"]) == ("", None)
    assert _progress(at) == "2 of 2 answered"
    assert any("All 2 examples are answered" in message for message in _texts(at.success))


def test_suggestions_from_a_trained_run(spanlab_home, tiny_model_dir):
    from core.training import TrainConfig, execute_run
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    cfg = TrainConfig(dataset="sentiment", model=str(tiny_model_dir), max_steps=10, eval_every=10, batch_size=8,
                      device="cpu")
    run_id = storage.create_run("sentiment", "classification", cfg.model, cfg.to_params())
    execute_run(run_id)
    assert storage.get_run(run_id)["status"] == "completed", storage.get_run(run_id)["error"]
    first = storage.load_examples("sentiment")[0]
    storage.set_label(first["id"], None, first["version"])  # one unlabeled row to work on

    at = open_app("pages/label.py")
    at.toggle(key="suggest").set_value(True).run()
    assert not at.exception, at.exception
    suggestion = [message for message in _texts(at.info) if message.startswith("Model suggestion:")]
    assert len(suggestion) == 1 and "% sure)" in suggestion[0]
    suggested = suggestion[0].split(": ", 1)[1].rsplit(" (", 1)[0]
    at.button(key="accept_suggestion").click().run()
    assert storage.load_examples("sentiment")[0]["label"] == suggested
    assert storage.label_history("sentiment")[0]["actor"] == "suggestion"

    at.radio(key="label_order").set_value("least confident first").run()
    at.radio(key="label_mode").set_value("Grid").run()
    grid = at.data_editor[0].value
    assert {"suggestion", "confidence"} <= set(grid.columns)
    confidences = grid["confidence"].tolist()
    assert confidences == sorted(confidences) and set(grid["suggestion"]) <= {"positive", "negative"}


def test_grid_pages_large_datasets(spanlab_home):
    rows = [{"text": f"ticket number {i}", "label": "a" if i % 2 else None} for i in range(501)]
    storage.create_dataset("many", "classification", rows, labels=["a", "b"])
    at = open_app("pages/label.py")
    at.radio(key="label_mode").set_value("Grid").run()
    assert len(at.data_editor[0].value) == 500
    at.number_input(key="grid_page").set_value(2).run()
    assert at.data_editor[0].value["text"].tolist() == ["ticket number 500"]
    at.selectbox(key="grid_show").select("unlabeled only").run()  # 251 rows: one page, back to page 1
    assert len(at.data_editor[0].value) == 251 and not at.number_input


def _picker(at: AppTest) -> dict:
    """What the span picker component was given (AppTest cannot click inside it; the browser test does)."""
    import json
    return json.loads(at.get("bidi_component")[0].proto.json)


def test_entity_labeling_shows_the_picker_on_the_first_unlabeled_text_with_model_suggestions(spanlab_home,
                                                                                            tiny_model_dir):
    from core.training import TrainConfig, execute_run
    from tests.test_tasks_ner import toy_rows
    rows = toy_rows()
    for row in rows[1:3]:
        row["spans"] = None  # not labeled yet
    storage.create_dataset("toy", "ner", rows)
    at = open_app("pages/label.py")
    assert _progress(at) == "6 of 8 labeled"
    shown = _picker(at)
    second = storage.load_examples("toy")[1]
    assert (shown["text"], shown["spans"], shown["suggested"]) == (second["text"], [], False)
    assert shown["labels"] == ["LOC", "ORG", "PER"] and len(set(shown["colors"].values())) == 3
    assert shown["doc_id"] == f"{second['id']}:{second['version']}:0"
    assert [second["text"][s:e] for s, e in shown["words"]] == second["text"].split()

    cfg = TrainConfig(dataset="toy", model=str(tiny_model_dir), learning_rate=1e-3, batch_size=4, device="cpu")
    run_id = storage.create_run("toy", "ner", cfg.model, cfg.to_params())
    execute_run(run_id)
    assert storage.get_run(run_id)["status"] == "completed", storage.get_run(run_id)["error"]
    at.run()
    at.toggle(key="suggest").set_value(True).run()
    assert not at.exception, at.exception
    at.radio(key="label_order").set_value("least confident first").run()
    shown = _picker(at)
    assert shown["suggested"] and shown["doc_id"].endswith(":1")
    assert all(set(span) >= {"start", "end", "label"} for span in shown["spans"])
    assert any("model suggestion shown" in caption.value for caption in at.caption)
