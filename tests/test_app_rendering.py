"""User-supplied names render as plain text (AppTest): a dataset, label or run error named with Markdown (an image
that would make every viewer's browser fetch a URL, links, bold, autolinks, Streamlit's colour directives) reaches
every Markdown-rendering element (messages, captions, widget labels, radio options, page links, expanders) escaped,
and still reads as the original text."""
from __future__ import annotations

import html

import pytest
from streamlit.testing.v1 import AppTest

from core import storage
from core.highlight import WORD_JOINER, escape_markdown
from tests.conftest import sentiment_rows
from tests.test_app_data import open_app

BEACON = "![x](http://127.0.0.1:9/beacon.png)"
NAME = f"{BEACON} **bold** [link](http://example.com) www.example.com :red[red] $x$"
LABEL = "![b](http://127.0.0.1:9/label.png)**loud**"
# The hostile pieces as Markdown would read them (the app's own markup, e.g. a bold title around a name, may stay).
MARKDOWN_SYNTAX = ("![", "](", "**bold**", "**loud**", "[link]", "http://", "www.", ":red[", "$x$")


def markdown_strings(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer."""
    strings = [element.value for kind in ("markdown", "caption", "success", "info", "warning", "error", "toast")
               for element in at.get(kind)]
    strings += [widget.label for kind in ("button", "checkbox", "radio", "selectbox", "text_input", "toggle")
                for widget in at.get(kind)]
    strings += [option for radio in at.radio for option in radio.options]
    strings += [link.proto.label for link in at.get("page_link")]
    strings += [block.proto.expandable.label for block in at.get("expandable")]
    return strings


def assert_plain(at: AppTest, *expected: str) -> None:
    assert not at.exception, at.exception
    strings = markdown_strings(at)
    for text in strings:
        for syntax in MARKDOWN_SYNTAX:
            assert syntax not in text, (syntax, text)
    shown = " ".join(html.unescape(text).replace(WORD_JOINER, "") for text in strings)
    for name in expected:  # still readable as what the user typed
        assert name in shown, (name, shown[:2000])


def test_escape_markdown_round_trips_and_leaves_plain_sentences_alone():
    for text in (NAME, LABEL, "- a list?\n1. or not\n    code", "Undone: row 2 label is back to (none)."):
        escaped = escape_markdown(text)
        assert html.unescape(escaped.replace("  \n", "\n")).replace(WORD_JOINER, "") == text
        assert not any(syntax in escaped for syntax in MARKDOWN_SYNTAX)
    assert escape_markdown("Imported 16 rows as dataset 'reviews'.") == "Imported 16 rows as dataset 'reviews'."


@pytest.fixture
def hostile(spanlab_home) -> dict:
    rows = [{"text": "good movie"}, {"text": "bad film", "label": LABEL}]
    return storage.create_dataset(NAME, "classification", rows, labels=[LABEL, "neutral"])


def test_data_page_shows_names_as_plain_text(hostile):
    at = open_app("pages/data.py")
    assert_plain(at, NAME)
    at.checkbox(key=f"confirm_delete:{NAME}").check().run()
    at.button(key=f"delete:{NAME}").click().run()
    assert_plain(at, f"Deleted dataset '{NAME}'")


def test_label_page_shows_label_and_dataset_names_as_plain_text(hostile):
    at = open_app("pages/label.py")
    assert_plain(at, LABEL)
    at.button(key=f"set_label:{LABEL}").click().run()
    assert_plain(at, f"'{LABEL}'")  # the saved toast / position caption quote it
    at.button(key="undo").click().run()
    assert_plain(at, LABEL)


def test_demo_run_card_shows_names_as_plain_text(spanlab_home, tiny_model_dir):
    storage.create_dataset(NAME, "classification", sentiment_rows(2))
    run_id = storage.create_run(NAME, "classification", str(tiny_model_dir), {})
    storage.update_run(run_id, status="completed", artifact_dir=str(tiny_model_dir))
    at = open_app("pages/demo.py")
    assert_plain(at, NAME)


def test_runs_and_train_pages_show_run_names_and_errors_as_plain_text(spanlab_home):
    storage.create_dataset(NAME, "classification", sentiment_rows(2))
    run_id = storage.create_run(NAME, "classification", f"/models/{BEACON}", {"notes": [f"note {BEACON}"]})
    storage.update_run(run_id, status="failed", error=f"The folder '{NAME}' does not exist.")
    at = open_app("pages/runs.py")
    assert_plain(at, NAME, f"note {BEACON}")
    at = open_app("pages/train.py")
    at.session_state["train_run_id"] = run_id
    at.run()
    assert_plain(at, NAME)

