"""Several people on one SpanLab in real browsers (the real server, Debian's chromium, one profile each): a trainer's
Dataset choice on the Train page survives an annotator's labeling, and two annotators labeling the same dataset each
undo only their own change, named in the sidebar and recorded as theirs.

Needs /usr/bin/chromium (scripts/test.sh installs it); skipped without it.
"""
from __future__ import annotations

import re

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, needs_chromium, new_tab, streamlit_server
from tests.test_e2e_browser import button, choose, go_to, no_exception, screenshot, set_number, settle

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e-team-home")


@pytest.fixture(scope="module")
def server(home, tmp_path_factory):
    with streamlit_server("app.py", home, tmp_path_factory.mktemp("e2e-team-log") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def people(server, tmp_path_factory):
    """Three people, each in their own browser profile: {name: tab}."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        contexts, tabs = [], {}
        try:
            for name in ("Tia", "Bea", "Cal"):
                context = playwright.chromium.launch_persistent_context(
                    str(tmp_path_factory.mktemp(f"profile-{name}")), executable_path=str(CHROMIUM), headless=True,
                    args=CHROMIUM_ARGS, viewport=VIEWPORT)
                contexts.append(context)
                tab = new_tab(context)
                tab.goto(server)
                tab.get_by_role("heading", name="Data", level=1).wait_for()
                settle(tab)
                box = tab.get_by_label("Your name", exact=True)
                box.fill(name)
                box.press("Enter")
                tab.get_by_text(re.compile("^Working as")).wait_for(state="detached")
                settle(tab)
                tabs[name] = tab
            yield tabs
        finally:
            for context in contexts:
                context.close()


def test_a_trainers_choice_survives_labeling_and_each_annotator_undoes_only_their_own(home, people, monkeypatch):
    from playwright.sync_api import expect

    from core import storage
    monkeypatch.setenv("SPANLAB_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    storage.create_dataset("alpha", "classification", [{"text": "good", "label": "pos"},
                                                       {"text": "bad", "label": "neg"}])
    storage.create_dataset("tickets", "classification", [{"text": "refund my payment"}, {"text": "app crashes"},
                                                         {"text": "where is my parcel"}],
                           labels=["billing", "technical", "shipping"])
    tia, bea, cal = people["Tia"], people["Bea"], people["Cal"]

    go_to(tia, "Train")  # the trainer picks the second dataset, looks at the Runs page and comes back ...
    choose(tia, "Dataset", "tickets — classification")
    go_to(tia, "Runs")
    go_to(tia, "Train")
    expect(tia.get_by_label("Dataset", exact=True)).to_have_value("tickets — classification")
    go_to(bea, "Label")  # ... while an annotator labels it
    choose(bea, "Dataset", "tickets")
    button(bea, "billing").click()
    bea.get_by_text(re.compile(r"1 of 3 labeled")).wait_for()
    settle(bea)
    set_number(tia, "Batch size", 8)  # the trainer's page reruns with the new counts
    expect(tia.get_by_label("Dataset", exact=True)).to_have_value("tickets — classification")
    expect(tia.get_by_text("1 of 3 rows labeled.")).to_be_visible()

    go_to(cal, "Label")  # a second annotator labels the next row
    choose(cal, "Dataset", "tickets")
    button(cal, "technical").click()
    cal.get_by_text(re.compile(r"2 of 3 labeled")).wait_for()
    settle(cal)
    undo = button(cal, "Undo your row 2 change: 'technical' → (none)")
    undo.wait_for()
    screenshot(cal, "10-team-undo.png")  # README: the name in the sidebar, undo says whose change it reverts
    undo.click()
    cal.get_by_text("Undone: row 2 label is back to (none).").wait_for()
    settle(cal)
    no_exception(cal)
    assert [e["label"] for e in storage.load_examples("tickets")] == ["billing", None, None]  # Bea's label kept

    button(bea, "Undo your row 1 change: 'billing' → (none)").click()  # Bea's undo reverts her own label
    bea.get_by_text("Undone: row 1 label is back to (none).").wait_for()
    settle(bea)
    assert [(e["actor"], e["person"]) for e in storage.label_history("tickets")] == [
        ("undo", "Bea"), ("undo", "Cal"), ("user", "Cal"), ("user", "Bea")]
