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


def _component(at: AppTest, name: str):
    """The proto of the components-v2 component ``name`` on the page (exactly one)."""
    found = [element.proto for element in at.get("bidi_component") if element.proto.component_name.endswith(name)]
    assert len(found) == 1, [element.proto.component_name for element in at.get("bidi_component")]
    return found[0]


def _send(at: AppTest, name: str, event: dict | None = None, state: dict | None = None) -> AppTest:
    """What the browser sends when the component ``name`` fires ``event`` (its 'event' trigger) or sets ``state``:
    the rerun request with that widget state, through Streamlit's own widget machinery (AppTest has no API for
    components; its private ``_run`` takes the widget states)."""
    import json
    from streamlit.proto.WidgetStates_pb2 import WidgetState
    from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX
    proto = _component(at, name)
    states = at._tree.get_widget_states()
    if event is not None:
        states.widgets.append(WidgetState(id=f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{proto.id}__events",
                                          json_trigger_value=json.dumps([{"event": "event", "value": event}])))
    if state is not None:
        states.widgets.append(WidgetState(id=proto.id, json_value=json.dumps(state)))
    at._run(states)
    assert not at.exception, at.exception
    return at


def _component_data(at: AppTest, name: str) -> dict:
    import json
    return json.loads(_component(at, name).json)


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
    _send(at, "spanlab_label_keys", {"action": "navigate", "position": 1, "seq": 1})  # ← Previous
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


# ------------------------------------------------------------------------------------------- issue 13: 10 and 11

LONG_TEXT = ("The customer wrote a very long complaint about the parcel, the refund and the app. " * 250)[:20_000]


def test_a_long_text_scrolls_in_a_bounded_box_and_the_buttons_follow_it(spanlab_home):
    storage.create_dataset("long", "classification", [{"text": LONG_TEXT}, {"text": "short"}], labels=["a", "b"])
    at = open_app("pages/label.py")
    box = next(element.proto.body for element in at.html if "The customer wrote" in element.proto.body)
    assert box.startswith('<div class="spanlab-scroll" style="max-height:320px;overflow-y:auto">')
    assert LONG_TEXT[:200] in box and box.endswith("</div></div>")  # the whole text, inside the box
    at.button(key="set_label:a").click().run()
    assert storage.load_examples("long")[0]["label"] == "a"


def test_previous_clicks_all_count_even_when_the_browser_merges_them(spanlab_home):
    """Streamlit merges clicks that arrive while the page reruns into one trigger; the bar's events name the place
    to go, so whichever of them arrive, the page lands where the last click meant (11 clicks back: 11 rows)."""
    storage.create_dataset("many", "classification", [{"text": f"ticket {i}"} for i in range(30)], labels=["a"])
    at = open_app("pages/label.py")
    ids = [example["id"] for example in storage.load_examples("many")]
    at.session_state["cursor:" + str(storage.get_dataset("many")["id"])] = ids[20]
    at.run()
    assert _component_data(at, "spanlab_label_keys")["position"] == 20 and "ticket 20" in _shown_text(at)
    # the bar sent 11 clicks (positions 19 .. 9, seq 1 .. 11); the browser merged them into these three reruns
    for seq in (2, 7, 11):
        _send(at, "spanlab_label_keys", {"action": "navigate", "position": 20 - seq, "seq": seq})
    assert "ticket 9<" in _shown_text(at) and _component_data(at, "spanlab_label_keys")["position"] == 9
    assert _component_data(at, "spanlab_label_keys")["ack"] == {"seq": 11, "message": ""}


def test_keys_label_accept_and_undo_through_the_key_bar(tickets):
    at = open_app("pages/label.py")
    data = _component_data(at, "spanlab_label_keys")
    assert data["labels"] == ["billing", "technical", "shipping"] and data["count"] == 4
    first = storage.load_examples("tickets")[0]
    assert data["doc_id"] == f"{first['id']}:{first['version']}"
    _send(at, "spanlab_label_keys", {"action": "label", "label": "shipping", "doc_id": data["doc_id"], "seq": 1})
    assert storage.load_examples("tickets")[0]["label"] == "shipping" and "app crashes" in _shown_text(at)
    _send(at, "spanlab_label_keys", {"action": "undo", "seq": 2})
    assert storage.load_examples("tickets")[0]["label"] is None
    # a key meant for a row no longer shown is refused with a message, not saved on the wrong row
    _send(at, "spanlab_label_keys", {"action": "label", "label": "billing", "doc_id": data["doc_id"], "seq": 3})
    ack = _component_data(at, "spanlab_label_keys")["ack"]
    assert ack["seq"] == 3 and "is shown; ignored" in ack["message"]
    assert storage.load_examples("tickets")[0]["label"] is None


def test_labeled_rows_per_label_chart(tickets):
    at = open_app("pages/label.py")
    assert at.get("vega_lite_chart")  # drawn from annotation.label_counts (tested in test_annotation)
    assert any(element.label == "Labeled rows per label" for element in at.expander)


def test_an_answer_occurring_hundreds_of_times_is_chosen_in_the_text_not_a_radio(spanlab_home):
    context = ("Bob and the cat. " * 1200)[:20_000]
    storage.create_dataset("cats", "qa", [{"context": context, "question": "which cat ?", "answer_text": None}])
    found = [i for i in range(len(context)) if context.startswith("cat", i)]
    assert len(found) > 700
    at = open_app("pages/label.py")
    at.text_input[0].input("cat").run()
    assert not at.radio  # no radio with hundreds of options
    shown = _component_data(at, "spanlab_occurrence_picker")
    assert shown["text"] == context and shown["chosen"] == 0 and [s for s, _ in shown["spans"]] == found
    assert any(f"occurs {len(found)} times: click the one" in caption.value for caption in at.caption)
    _send(at, "spanlab_occurrence_picker", state={"chosen": 500})  # a click on the 501st
    assert _component_data(at, "spanlab_occurrence_picker")["chosen"] == 500
    at.button(key="save_answer").click().run()
    saved = storage.load_examples("cats")[0]
    assert (saved["answer_text"], saved["answer_start"]) == ("cat", found[500])
