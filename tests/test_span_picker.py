"""The span picker (pages/span_picker.py): its pure parts (check_event, label_colors) without a browser, then the
component itself in a real browser: ``streamlit run tests/span_picker_app.py`` driven by Debian's chromium through
Playwright, as a user would, with the mouse and with the keyboard only. Screenshots and the server's log go to
test-artifacts/span-picker/. The browser test needs /usr/bin/chromium and is skipped without it.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

from pages.span_picker import _initial_spans, check_event, label_colors, span_picker
from tests.browser import CHROMIUM, ROOT, TIMEOUT_MS, browser_context, drag, new_tab, streamlit_server
from tests.span_picker_app import LABELS, LONG_TEXT, TEXTS, words_of

ARTIFACTS = ROOT / "test-artifacts" / "span-picker"
XSS = "<img src=x onerror=alert(1)>"
LATENCY_BUDGET_MS = 150

# ------------------------------------------------------------------------------------------------ pure parts

TEXT = "Ann met Bob in Paris 🙂 today."  # the emoji is one character for Python (two UTF-16 units in JS)
PER, LOC = {"start": 0, "end": 3, "label": "PER"}, {"start": 15, "end": 20, "label": "LOC"}


def event(**changes) -> dict:
    base = {"action": "save", "spans": [LOC, PER], "doc_id": "d1", "seq": 3}
    return {**base, **changes}


def test_check_event_save_sorts_and_keeps_only_offsets_and_labels():
    scored = {**LOC, "score": 0.5, "extra": "x"}
    checked = check_event(event(spans=[scored, PER], unknown_field=1), TEXT, ["PER", "LOC"], "d1")
    assert checked == {"action": "save", "spans": [PER, LOC], "doc_id": "d1", "seq": 3}
    assert [TEXT[s["start"]:s["end"]] for s in checked["spans"]] == ["Ann", "Paris"]
    emoji = TEXT.index("🙂")
    assert check_event(event(spans=[{"start": emoji, "end": emoji + 1, "label": "PER"}]), TEXT, ["PER"], "d1")
    assert check_event(event(spans=[]), TEXT, ["PER"], "d1")["spans"] == []  # "no entities" is a valid save


def test_check_event_navigate_and_none():
    for delta in (-1, 1):
        assert check_event({"action": "navigate", "delta": delta, "doc_id": 7, "seq": 0}, TEXT, [], 7) == \
            {"action": "navigate", "delta": delta, "doc_id": 7, "seq": 0}
    assert check_event(None, TEXT, ["PER"], "d1") is None


@pytest.mark.parametrize("bad, message", [
    ("save", "must be an object"),
    (event(action="delete"), "unknown action 'delete'"),
    (event(doc_id="d0"), "was for example 'd0', but 'd1' is shown"),
    (event(seq="3"), "seq must be"), (event(seq=-1), "seq must be"), (event(seq=True), "seq must be"),
    (event(action="navigate", delta=2), "delta must be -1 or"), (event(action="navigate", delta=True), "delta"),
    (event(action="navigate"), "delta must be"),
    (event(spans=None), "spans must be a list"), (event(spans=[[0, 3, "PER"]]), "span 1 must be an object"),
    (event(spans=[{**PER, "end": 3.0}]), "must be integers"), (event(spans=[{**PER, "start": "0"}]), "integers"),
    (event(spans=[{**PER, "start": False}]), "must be integers"),
    (event(spans=[{**PER, "start": 3}]), r"\[3, 3\) is not a non-empty range"),
    (event(spans=[{**PER, "start": -1}]), "not a non-empty range"),
    (event(spans=[{**PER, "end": len(TEXT) + 1}]), f"of the {len(TEXT)}-character text"),
    (event(spans=[{**PER, "label": "ORG"}]), "span 1 \\('Ann'\\): unknown label 'ORG'; known: PER, LOC"),
    (event(spans=[PER, {"start": 0, "end": 7, "label": "LOC"}]), "spans overlap: 'Ann' \\(PER\\) and 'Ann met'"),
])
def test_check_event_rejects_with_a_readable_message(bad, message):
    with pytest.raises(ValueError, match=message):
        check_event(bad, TEXT, ["PER", "LOC"], "d1")


def test_label_colors_are_distinct_stable_and_css():
    labels = [f"L{i}" for i in range(30)]
    colors = label_colors(labels)
    assert list(colors) == labels and len(set(colors.values())) == 30
    assert label_colors(labels[:3]) == {label: colors[label] for label in labels[:3]}  # by position
    assert all(re.fullmatch(r"#[0-9a-f]{6}|hsl\(\d+, 70%, 78%\)", c) for c in colors.values())
    assert label_colors(["A", "B", "A"]) == label_colors(["A", "B"]) and label_colors([]) == {}


def test_initial_spans_and_words_are_checked():
    spans = [{"start": 4, "end": 11, "label": "X", "score": 0.123456}, PER, {"start": 8, "end": 11, "label": "Y"},
             {"start": 5, "end": 99, "label": "Z"}]
    assert _initial_spans(spans, TEXT) == [PER, {"start": 4, "end": 11, "label": "X", "score": 0.1235}]
    for words in ([(3, 0)], [(0, 3), (2, 5)], [(0, 99)]):
        with pytest.raises(ValueError, match="words must be sorted"):
            span_picker(TEXT, words, [], ["PER"], doc_id="d", key="k")


def test_the_component_mounts_without_a_browser():
    """Page tests run pages in AppTest: the component must mount there (registered on AppTest's own runtime)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "tests" / "span_picker_app.py"), default_timeout=30).run()
    assert not app.exception
    assert [caption.value for caption in app.caption] == ["doc: 0 · events: 0 · runs: 1"]


# ------------------------------------------------------------------------------------------------ the browser

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``streamlit run tests/span_picker_app.py`` on a free loopback port with its own SPANLAB_HOME."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with streamlit_server("tests/span_picker_app.py", tmp_path_factory.mktemp("span-picker-home"),
                          ARTIFACTS / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    """A headless chromium tab (own profile); dialogs are dismissed and kept in ``tab.dialogs``."""
    with browser_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        tab = new_tab(context)
        yield tab
        try:
            tab.screenshot(path=str(ARTIFACTS / "99-last.png"), full_page=True)
        except Exception as error:  # noqa: BLE001 — only a debugging aid
            print(f"no last screenshot: {error}")


def rgb(hex_color: str) -> str:
    return "rgb({}, {}, {})".format(*(int(hex_color[i:i + 2], 16) for i in (1, 3, 5)))


def word_index(text: str, word: str) -> int:
    return next(i for i, (s, e) in enumerate(words_of(text)) if text[s:e] == word)


def events(page, count: int) -> list[dict]:
    """Wait until the app shows ``count`` received events; return them, oldest first."""
    from playwright.sync_api import expect

    page.get_by_text(re.compile(rf"events: {count} ·")).wait_for()
    shown = page.locator('[data-testid="stCode"]')
    expect(shown).to_have_count(count)
    return [json.loads(text) for text in shown.all_inner_texts()]


def highlight_ms(page, picker) -> float:
    """The picker's own figure for the last mouseup → highlight-on-screen, once it has recorded one."""
    page.wait_for_function("e => e.hasAttribute('data-last-highlight-ms')", arg=picker.element_handle())
    return float(picker.get_attribute("data-last-highlight-ms"))


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM}")
def test_span_picker_in_a_browser(page, server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    text, colors = TEXTS[0], label_colors(LABELS)
    page.goto(server)
    picker = page.locator(".spanpicker")
    expect(picker).to_have_attribute("data-doc", "doc-0")
    box, status = picker.locator(".box"), picker.locator(".status")

    def word(w: str, in_text: str = text):
        return picker.locator(f'.w[data-i="{word_index(in_text, w)}"]')

    # Shown as it is: the tag as text (no <img>, no alert), the emoji, the CJK; the model's suggestion dashed.
    expect(box).to_contain_text(XSS)
    expect(word("東京")).to_have_text("東京")
    expect(word("🙂")).to_have_text("🙂")
    assert picker.locator("img").count() == 0 and page.locator('img[src="x"]').count() == 0
    expect(word("東京")).to_have_class(re.compile(r"\bsug\b"))
    expect(word("東京")).to_have_attribute("title", "LOC · suggestion · score 0.91")
    expect(box).to_be_focused()  # focused on mount: the keys work straight away

    # Mouse: drag over "Acme Corp" (pending highlight), press 2: an ORG entity in ORG's colour.
    drag(page, word("Acme"), word("Corp"))
    expect(picker.locator(".w.sel")).to_have_text(["Acme", "Corp"])
    expect(status).to_contain_text("press 1–9")
    page.keyboard.press("2")
    for w in ("Acme", "Corp"):
        expect(word(w)).to_have_css("background-color", rgb(colors["ORG"]))
    expect(picker.locator(".tag", has_text="ORG")).to_have_count(1)
    expect(status).to_contain_text("2 entities · unsaved changes")
    page.screenshot(path=str(ARTIFACTS / "01-labeled.png"))

    # Click the entity: its menu; × removes it, Undo brings it back. Again with Delete and "u".
    for remove, restore in (("menu", "button"), ("Delete", "u")):
        word("Corp").click()
        remove_button = picker.get_by_role("button", name="Remove entity")
        expect(remove_button).to_be_visible()
        remove_button.click() if remove == "menu" else page.keyboard.press(remove)
        expect(picker.locator(".tag", has_text="ORG")).to_have_count(0)
        expect(word("Acme")).not_to_have_class(re.compile(r"\be\b"))
        picker.get_by_role("button", name="Undo").click() if restore == "button" else page.keyboard.press(restore)
        expect(picker.locator(".tag", has_text="ORG")).to_have_count(1)
        expect(word("Acme")).to_have_css("background-color", rgb(colors["ORG"]))

    # A rerun with new data but the same doc_id (the toggle changes max_height_px) keeps the unsaved edit.
    page.get_by_text("Tall text box").click()
    expect(box).to_have_css("max-height", "640px")
    expect(picker.locator(".tag", has_text="ORG")).to_have_count(1)
    expect(status).to_contain_text("unsaved changes")
    expect(page.locator(".spanpicker")).to_have_count(1)  # the re-run JS reused its view

    # Keyboard only: Home, →, ←, Shift+→ selects "Alice Smith"; 1 makes it a PERSON.
    box.focus()
    for key in ("Home", "ArrowRight", "ArrowLeft", "Shift+ArrowRight"):
        page.keyboard.press(key)
    expect(picker.locator(".w.sel")).to_have_text(["Alice", "Smith"])
    page.keyboard.press("1")
    expect(word("Smith")).to_have_css("background-color", rgb(colors["PERSON"]))

    # Enter saves: one event, offsets into the Python string (past CJK and emoji), suggestion accepted.
    page.keyboard.press("Enter")
    [saved] = events(page, 1)
    assert saved["action"] == "save" and saved["doc_id"] == "doc-0" and saved["seq"] >= 1
    assert [(text[s["start"]:s["end"]], s["label"]) for s in saved["spans"]] == \
        [("Alice Smith", "PERSON"), ("Acme Corp", "ORG"), ("東京", "LOC")]
    expect(status).to_have_text("3 entities · Saved ✓")
    expect(word("東京")).not_to_have_class(re.compile(r"\bsug\b"))
    page.screenshot(path=str(ARTIFACTS / "02-saved.png"))

    # PageDown: a navigate event; the next example replaces the working state.
    page.keyboard.press("PageDown")
    navigate = events(page, 2)[-1]
    assert navigate == {"action": "navigate", "delta": 1, "doc_id": "doc-0", "seq": saved["seq"] + 1}
    expect(picker).to_have_attribute("data-doc", "doc-1")
    expect(box).to_have_text(TEXTS[1])
    expect(status).to_have_text(re.compile(r"^0 entities · drag to mark PERSON"))  # the active label stays

    # A save that on_event rejects (ValueError): the widget shows why; nothing was recorded.
    page.keyboard.press("Enter")
    expect(status).to_have_text("0 entities · this test app refuses empty saves")
    expect(status).to_have_class(re.compile(r"\berr\b"))
    assert len(events(page, 2)) == 2

    # Unsaved edits: the first PageUp only warns; the second goes back, to what was saved there.
    drag(page, word("Carol", TEXTS[1]), word("Carol", TEXTS[1]))  # PERSON is the active label: labeled at once
    expect(word("Carol", TEXTS[1])).to_have_css("background-color", rgb(colors["PERSON"]))
    page.keyboard.press("PageUp")
    expect(status).to_contain_text("press again to discard")
    assert len(events(page, 2)) == 2
    page.keyboard.press("PageUp")
    assert events(page, 3)[-1]["delta"] == -1
    expect(picker).to_have_attribute("data-doc", "doc-0")
    expect(picker.locator(".tag")).to_have_text(["PERSON", "ORG", "LOC"])
    assert page.dialogs == []
    assert page.locator('[data-testid="stException"]').count() == 0

    # Latency on a 2,000-character text: mouseup → highlight drawn, measured by the page itself.
    page.goto(f"{server}/?long=1")
    expect(picker).to_have_attribute("data-doc", "long")
    long_word = lambda i: picker.locator(f'.w[data-i="{i}"]')  # noqa: E731
    assert len(LONG_TEXT) == 2000 and picker.locator(".w").count() == len(words_of(LONG_TEXT))
    drag(page, long_word(40), long_word(42))
    expect(picker.locator(".w.sel")).to_have_count(3)
    pending = highlight_ms(page, picker)
    page.keyboard.press("3")
    picker.evaluate("e => e.removeAttribute('data-last-highlight-ms')")
    drag(page, long_word(60), long_word(61))  # a label is active now: the drag creates the entity
    expect(long_word(61)).to_have_css("background-color", rgb(colors["LOC"]))
    created = highlight_ms(page, picker)
    print(f"\nmouseup → highlight on a 2,000-character text: {pending:.1f} ms (selection), "
          f"{created:.1f} ms (entity created)")
    page.screenshot(path=str(ARTIFACTS / "03-long.png"))
    assert pending < LATENCY_BUDGET_MS and created < LATENCY_BUDGET_MS
