"""Data page through Streamlit's AppTest: upload (problems listed, nothing saved), mapping, import, samples,
downloads and deletion with confirmation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import storage
from tests.conftest import qa_rows

ROOT = Path(__file__).resolve().parent.parent


def open_app(page: str) -> AppTest:
    """AppTest of app.py, switched to ``page`` (e.g. "pages/data.py") and run once."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def data_page(spanlab_home) -> AppTest:
    return open_app("pages/data.py")


def _texts(elements) -> list[str]:
    return [element.value for element in elements]


def _problem_tables(at: AppTest) -> list:
    """The problem and warning tables on the page, in page order."""
    return [frame.value for frame in at.dataframe if "problem" in frame.value.columns]


def _button(at: AppTest, starts_with: str):
    matches = [button for button in at.button if button.label.startswith(starts_with)]
    assert len(matches) == 1, [button.label for button in at.button]
    return matches[0]


def test_empty_state_and_one_click_samples(data_page):
    at = data_page
    assert "No datasets yet — upload a CSV or load a sample" in _texts(at.info)

    at.button(key="sample:support_tickets").click().run()
    assert not at.exception
    assert "Imported 80 rows as dataset 'support_tickets'." in _texts(at.success)
    at.button(key="sample:company_faq_qa").click().run()
    tasks = {dataset["name"]: (dataset["task"], dataset["rows"]) for dataset in storage.list_datasets()}
    assert tasks == {"support_tickets": ("classification", 80), "company_faq_qa": ("qa", 40)}
    assert [dataset["labels"] for dataset in storage.list_datasets() if dataset["name"] == "support_tickets"] == [
        ["account", "billing", "shipping", "technical"]]

    at.button(key="sample:support_tickets").click().run()  # loading it again says so, changes nothing
    assert any("already exists" in message for message in _texts(at.info))
    assert len(storage.list_datasets()) == 2
    table = next(frame.value for frame in at.dataframe if "name" in frame.value.columns)
    assert table["name"].tolist() == ["company_faq_qa", "support_tickets"] and table["rows"].tolist() == [40, 80]
    assert table["imported by"].tolist() == ["anonymous", "anonymous"]  # no name typed in the sidebar
    activity = next(frame.value for frame in at.dataframe if "what" in frame.value.columns)
    assert activity["what"].str.startswith("imported dataset").all() and len(activity) == 2


def test_bad_file_lists_every_problem_and_saves_nothing(data_page):
    at = data_page
    bad = b"text,label,split\nfine row,pos,train\n,neg,train\nanother,pos,holdout\nlast one,neg,\n"
    at.file_uploader[0].set_value(("tickets.csv", bad, "text/csv")).run()
    assert not at.exception
    assert any("2 problem(s): 2 of 4 rows cannot be imported" in message for message in _texts(at.error))
    problems = _problem_tables(at)[0]
    assert problems["where"].tolist() == ["row 2 (line 3)", "row 3 (line 4)"]  # rows counted as the Label page does
    assert problems["field"].tolist() == ["text", "split"]
    assert "text is empty" in problems["problem"][0] and "holdout" in problems["problem"][1]
    assert any(list(frame.value.columns) == ["text", "label", "split"] and len(frame.value) == 4
               for frame in at.dataframe)  # the file preview

    assert _button(at, "Import 2 rows as dataset tickets").disabled
    assert storage.list_datasets() == []  # nothing saved by looking

    _button(at, "Import only the 2 valid rows").click().run()
    assert not at.exception
    assert any("Imported 2 rows" in message and "2 rows with problems were left out" in message
               for message in _texts(at.success))
    assert [example["text"] for example in storage.load_examples("tickets")] == ["fine row", "last one"]


def test_good_file_imports_with_detected_mapping_and_links(data_page):
    at = data_page
    good = "review\tsentiment\nLoved it 🙂\tpositive\nBroken on arrival\tnegative\nNaïve but fine\t\n"
    at.file_uploader[0].set_value(("reviews.tsv", good.encode("utf-8"), "text/tab-separated-values")).run()
    assert not at.exception and not at.error
    assert at.radio(key="task:reviews.tsv:%d" % len(good.encode("utf-8"))).value == "classification"
    mapping = {box.label: box.value for box in at.selectbox if box.key and box.key.startswith("map:")}
    assert mapping == {"text *": "review", "label": "sentiment", "split": "— none —"}
    assert any("3 rows ready to import" in message for message in _texts(at.success))

    button = _button(at, "Import 3 rows as dataset reviews")
    assert not button.disabled
    button.click().run()
    assert not at.exception
    assert "Imported 3 rows as dataset 'reviews'." in _texts(at.success)
    assert {link.proto.page for link in at.get("page_link")} >= {"label", "train"}
    info = storage.get_dataset("reviews")
    assert (info["rows"], info["labeled"], info["labels"]) == (3, 2, ["negative", "positive"])
    assert not at.file_uploader[0].value  # the uploader is emptied for the next file


def test_changing_the_mapping_fixes_a_missing_column(data_page):
    at = data_page
    at.file_uploader[0].set_value(("odd.csv", b"words,kind\nhello there,greeting\nbye,farewell\n", "text/csv")).run()
    assert any("no column for 'text'" in problem for problem in _problem_tables(at)[0]["problem"])
    assert _button(at, "Import 0 rows as dataset odd").disabled
    text_box = next(box for box in at.selectbox if box.key and box.key.endswith(":text"))
    text_box.select("words").run()
    label_box = next(box for box in at.selectbox if box.key and box.key.endswith(":label"))
    label_box.select("kind").run()
    assert not at.error
    _button(at, "Import 2 rows as dataset odd").click().run()
    assert [(e["text"], e["label"]) for e in storage.load_examples("odd")] == [("hello there", "greeting"),
                                                                               ("bye", "farewell")]


def test_qa_file_shows_warnings_for_fixed_offsets(data_page):
    at = data_page
    content = ("context,question,answer_text,answer_start\n"
               "\"acme was founded in 1999 by alice .\",who founded acme ?,alice,3\n")
    at.file_uploader[0].set_value(("faq.csv", content.encode(), "text/csv")).run()
    assert at.radio[0].value == "qa"  # guessed from the columns
    assert any("warning" in message for message in _texts(at.warning))
    warnings = _problem_tables(at)[-1]
    assert warnings["where"].tolist() == ["row 1 (line 2)"] and "corrected to 28" in warnings["problem"][0]
    _button(at, "Import 1 rows as dataset faq").click().run()
    assert storage.load_examples("faq")[0]["answer_start"] == 28


def test_downloads_and_delete_needs_confirmation(data_page, monkeypatch):
    from streamlit.runtime.media_file_manager import MediaFileManager
    builders = {}  # file name -> the function the download button runs when clicked
    register = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        builders[file_name] = data_callable
        return register(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    at = data_page
    storage.create_dataset("capitals", "qa", qa_rows())
    run_id = storage.create_run("capitals", "qa", "some-model", {})
    at.run()
    assert [button.label for button in at.download_button] == ["Download CSV", "Download JSON Lines",
                                                              "Download SQuAD JSON"]
    assert all(button.proto.deferred_file_id for button in at.download_button)  # built only when clicked
    assert builders["capitals.csv"]().decode("utf-8-sig").startswith("qid,context,question,answer_text")
    assert len(builders["capitals.jsonl"]().decode().splitlines()) == len(qa_rows())
    squad = json.loads(builders["capitals.squad.json"]())
    assert sum(len(paragraph["qas"]) for paragraph in squad["data"][0]["paragraphs"]) == len(qa_rows())
    # a queued run trains on it: the page says so and offers no delete (core refuses it too)
    assert at.button(key="delete:capitals").disabled and at.checkbox(key="confirm_delete:capitals").disabled
    assert any(f"run #{run_id} (queued, started by unknown) uses it" in message for message in _texts(at.warning))
    storage.update_run(run_id, status="completed")
    at.run()
    delete = at.button(key="delete:capitals")
    assert delete.disabled
    at.checkbox(key="confirm_delete:capitals").check().run()
    assert not at.button(key="delete:capitals").disabled
    at.button(key="delete:capitals").click().run()
    assert not at.exception
    assert storage.list_datasets() == []
    assert any("runs stay in the run history" in message for message in _texts(at.success))
    assert storage.get_run(run_id)["dataset_name"] == "capitals"  # history kept
    assert "No datasets yet — upload a CSV or load a sample" in _texts(at.info)
