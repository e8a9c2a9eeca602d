"""Label page speed and long texts in a real browser (issue 13, findings 10 and 11): the real Streamlit server and
Debian's chromium driven by Playwright.

- keyboard labeling: N rows labeled with N keypresses and no click, every one saved; u undoes; arrows move;
- fast clicks: 11 quick clicks on "← Previous" move exactly 11 rows (Streamlit merges clicks that arrive while the
  page reruns; the navigation bar's events name the place to go, so none is lost);
- long texts: a 20,000-character text scrolls in its own box and the label buttons stay on screen; an answer that
  occurs hundreds of times in a 20,000-character context is chosen by clicking it in the text.

Screenshots go to test-artifacts/labeling/. Needs /usr/bin/chromium; skipped without it.
"""
from __future__ import annotations

import re
import shutil

import pytest

from core import storage
from tests.browser import ROOT, VIEWPORT, browser_context, needs_chromium, new_tab, streamlit_server
from tests.test_e2e_browser import choose, go_to, no_exception, settle

pytestmark = [pytest.mark.browser, needs_chromium]

ARTIFACTS = ROOT / "test-artifacts" / "labeling"
LABELS = ["billing", "technical", "shipping"]
LONG_TEXT = ("The customer wrote a very long complaint about the parcel, the refund and the app. " * 250)[:20_000]
ROWS = 15
CONTEXT = ("Bob and the cat. " * 1200)[:20_000]


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The app on a free port, its SPANLAB_HOME holding a 15-row ticket dataset (the first text 20,000 characters
    long) and a QA dataset whose answer occurs hundreds of times in its context; yields (url, tab)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    home = tmp_path / "home"
    monkeypatch.setenv("SPANLAB_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    rows = [{"text": LONG_TEXT}] + [{"text": f"ticket number {i + 1}"} for i in range(1, ROWS)]
    storage.create_dataset("tickets", "classification", rows, labels=LABELS)
    storage.create_dataset("cats", "qa", [{"context": CONTEXT, "question": "Which cat is meant?",
                                           "answer_text": None}])
    with streamlit_server("app.py", home, ARTIFACTS / "server.log", OMP_NUM_THREADS="1") as url:
        with browser_context(tmp_path / "profile") as context:
            tab = new_tab(context)
            tab.goto(url)
            yield url, tab
            try:
                tab.screenshot(path=str(ARTIFACTS / "99-last.png"))
            except Exception as error:  # noqa: BLE001 — only a debugging aid
                print(f"no last screenshot: {error}")


def shown_row(page, row: int) -> None:
    """Wait until row ``row`` (1-based, import order) is shown and the key bar is ready for the next key."""
    page.get_by_text(re.compile(rf"^Row {row} · {row} of {ROWS} in this order")).wait_for()
    page.locator(f'.labelkeys[data-position="{row - 1}"][data-pending="false"]').wait_for()
    settle(page)


def test_label_with_keys_fast_clicks_and_long_texts(app):
    from playwright.sync_api import expect

    url, page = app
    presses, clicks = [], []

    def press(key: str) -> None:
        presses.append(key)
        page.keyboard.press(key)

    def click(locator) -> None:
        clicks.append(locator)
        locator.click()

    page.get_by_role("heading", name="Data", level=1).wait_for()  # app.py's navigation is drawn
    settle(page)
    go_to(page, "Label")
    choose(page, "Dataset", "tickets")
    page.get_by_text(f"0 of {ROWS} labeled").wait_for()
    shown_row(page, 1)

    # A 20,000-character text scrolls inside its box: the label buttons are on screen, not 8,000 px down.
    box = page.locator(".spanlab-scroll").first
    assert box.evaluate("e => e.scrollHeight > e.clientHeight + 1000")  # the text is much taller than its box
    for label in LABELS:
        top = page.get_by_role("button", name=label, exact=True).bounding_box()["y"]
        assert 0 < top < VIEWPORT["height"] - 40, f"the '{label}' button is at y={top}, outside the window"
    page.screenshot(path=str(ARTIFACTS / "01-long-text.png"))

    # Keys only: 1–3 label rows 1..6 (each saves and shows the next unlabeled row); no click. (The Dataset box
    # keeps the focus after a choice, and keys typed there are its own: one click on the text hands them to the page.)
    page.locator(".spanlab-scroll").first.click()
    presses.clear(), clicks.clear()
    expected = {}
    for row in range(1, 7):
        shown_row(page, row)
        number = (row - 1) % 3 + 1
        press(str(number))
        expected[row] = LABELS[number - 1]
        page.get_by_text(f"{row} of {ROWS} labeled").wait_for()
    shown_row(page, 7)
    assert (len(presses), len(clicks)) == (6, 0)  # clicks-to-label: 6 keypresses for 6 rows, nothing else
    saved = {example["position"] + 1: example["label"] for example in storage.load_examples("tickets")}
    assert {row: saved[row] for row in expected} == expected and saved[7] is None

    # u undoes my last label: row 6 is unlabeled again and shown.
    press("u")
    page.get_by_text(f"5 of {ROWS} labeled").wait_for()
    shown_row(page, 6)
    assert storage.load_examples("tickets")[5]["label"] is None

    # Arrows, pressed fast (no waiting between them): 14 → from row 6 to the last row (clamped), every press counts.
    for _ in range(14):
        press("ArrowRight")
    shown_row(page, ROWS)

    # 11 fast clicks on "← Previous": exactly 11 rows back, none dropped.
    previous = page.get_by_role("button", name="← Previous")
    for _ in range(11):
        click(previous)
    shown_row(page, ROWS - 11)
    page.screenshot(path=str(ARTIFACTS / "02-after-clicks.png"))

    # Typing in a text box never fires a key: "2" typed as a new label name saves no label.
    before = [(example["label"], example["version"]) for example in storage.load_examples("tickets")]
    page.get_by_text("Labels:").first.click()
    page.get_by_label("New label", exact=True).press_sequentially("2u3")
    settle(page)
    page.get_by_text(re.compile(rf"^Row {ROWS - 11} · ")).wait_for()  # still on the same row
    assert [(example["label"], example["version"]) for example in storage.load_examples("tickets")] == before
    no_exception(page)

    # QA: "cat" occurs hundreds of times in a 20,000-character context: click the 501st in the text, save it.
    choose(page, "Dataset", "cats")
    answer = page.get_by_label(re.compile("^Answer — type or paste"))
    answer.fill("cat")
    answer.press("Enter")
    found = [match.start() for match in re.finditer("cat", CONTEXT)]
    page.get_by_text(f"occurs {len(found)} times: click the one that is meant").wait_for()
    assert page.locator('[data-testid="stRadio"]').count() == 0
    target = page.locator('.occ mark[data-i="500"]')
    target.scroll_into_view_if_needed()
    target.click()
    expect(page.locator(".occ .status")).to_have_text(re.compile(rf"^Occurrence 501 of {len(found)} chosen"))
    save = page.get_by_role("button", name="Save answer")
    assert save.bounding_box()["y"] < VIEWPORT["height"], "Save answer is below the window"
    page.screenshot(path=str(ARTIFACTS / "03-occurrence.png"))
    save.click()
    page.get_by_text("1 of 1 answered").wait_for()
    saved = storage.load_examples("cats")[0]
    assert (saved["answer_text"], saved["answer_start"]) == ("cat", found[500])
    no_exception(page)
    assert page.dialogs == []
