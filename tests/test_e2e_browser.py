"""The first five minutes in a real browser: the real Streamlit server, Debian's chromium driven by Playwright.

One journey, as a user clicks it: upload a QA CSV whose questions have no answers yet (Data), answer them by typing
(Label: the answer is highlighted, progress goes up), train the tiny local model from tests/conftest.py while the
loss chart fills in (Train), look at the finished run (Runs) and ask it a question (Demo: the answer is marked in the
context, and a context holding an <img onerror> tag is shown as text). A full-page screenshot of every step goes to
test-artifacts/e2e/ (docs/screenshots/ holds copies of a good run), with the server's log.

Needs /usr/bin/chromium (scripts/test.sh installs it); skipped without it.
"""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from tests.browser import (ROOT, TIMEOUT_MS, VIEWPORT, browser_context, drag, needs_chromium, new_tab,
                           streamlit_server)
from tests.conftest import QA_CONTEXTS, make_tiny_model, qa_rows

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
TRAINING_TIMEOUT_MS = 120_000  # the whole training run
DATASET = "founders"
ANSWER_LABEL = "Answer — type or paste it exactly as it appears in the context"
XSS = "<img src=x onerror=alert(1)>"
STEPS = 1000  # training steps: long enough to watch the chart grow on a fast idle machine too (~10 s here)

pytestmark = [pytest.mark.browser, needs_chromium]


# ------------------------------------------------------------------------------------------------ the server

@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, artifacts):
    """``streamlit run app.py`` on a free loopback port with its own SPANLAB_HOME; yields its base URL."""
    # a tiny model trains fastest on one thread when the cores are shared
    with streamlit_server("app.py", tmp_path_factory.mktemp("e2e-home"), artifacts / "server.log",
                          OMP_NUM_THREADS="1") as url:
        yield url


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    """A fresh headless chromium tab (own profile) on the app. Dialogs (an injected alert()) are dismissed and
    their messages kept in ``tab.dialogs`` for the test to check."""
    with browser_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        tab = new_tab(context)
        tab.goto(server)
        yield tab
        try:
            tab.screenshot(path=str(ARTIFACTS / "99-last.png"))  # where a failed journey stopped
        except Exception as error:  # noqa: BLE001 — only a debugging aid
            print(f"no last screenshot: {error}")


# ------------------------------------------------------------------------------------------------ helpers

def settle(page) -> None:
    """Wait until Streamlit has finished the rerun in progress and drawn it: no running indicator, no stale
    element (those of the previous run stay until the new run has drawn its own), no placeholder of an element
    whose code is still loading, every Plotly chart drawn. Call it after waiting for something the rerun draws,
    so that the rerun has started."""
    page.wait_for_function("""() => !document.querySelector('[data-testid="stStatusWidgetRunningIcon"], '
        + '[data-testid="stElementContainer"][data-stale="true"], [data-testid="stSkeleton"]')
        && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'))""",
                           timeout=TIMEOUT_MS, polling=50)


def no_exception(page) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, shown.first.inner_text()


def screenshot(page, name: str) -> None:
    """Full-page PNG of what the user sees now. Streamlit scrolls inside its main section, so the viewport is
    stretched to the content's height for the shot and put back afterwards. The mouse leaves the page first,
    so no tooltip or chart toolbar covers it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.mouse.move(VIEWPORT["width"] - 2, VIEWPORT["height"] // 2)  # the empty margin right of the content
    settle(page)
    try:
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stTooltipContent\"]')", timeout=3000)
    except PlaywrightTimeout:
        pass  # a tooltip that stays only spoils the picture, not the test
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                           "'[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"], body')]"
                           ".map(e => e.scrollHeight))")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 6000))})
    try:
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)


def go_to(page, title: str) -> None:
    """Open a page through the sidebar navigation (same browser session, like a user)."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
    page.get_by_role("heading", name=title, level=1).wait_for()
    settle(page)


def _open_options(page, box, option) -> None:
    """Open the selectbox ``box`` until ``option`` (a locator) is in its list: a click that lands while Streamlit
    redraws the page can be lost, so it is opened again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    for attempt in range(4):
        box.scroll_into_view_if_needed()
        box.click()
        try:
            option.wait_for(state="attached", timeout=5000)
            return
        except PlaywrightTimeout:
            if attempt == 3:
                raise
            page.keyboard.press("Escape")
            settle(page)


def _type_option(page, text: str) -> None:
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, as a keyboard user does: open it, type the option,
    press Enter (a click on the option fails when its list opens below the bottom of the window)."""
    from playwright.sync_api import expect
    settle(page)  # no stale copy of the selectbox from the rerun before
    box = page.get_by_label(label, exact=True)
    _open_options(page, box, page.get_by_role("option", name=option, exact=True))
    _type_option(page, option)
    expect(box).to_have_value(option)
    settle(page)


def choose_matching(page, label: str, pattern: str) -> str:
    """Pick the first option of the selectbox labelled ``label`` whose text matches ``pattern`` (a regex, for
    options with a score in them), as choose() does; returns its text."""
    settle(page)
    option = page.get_by_role("option", name=re.compile(pattern)).first
    _open_options(page, page.get_by_label(label, exact=True), option)
    text = option.inner_text().strip()
    _type_option(page, text)
    settle(page)
    return text


def button(page, text: str):
    """The button saying ``text`` (after its icon, if it has one)."""
    return page.get_by_role("button", name=re.compile(rf"^\W*{re.escape(text)}$"))


def set_number(page, label: str, value) -> None:
    """Type ``value`` into the number box labelled ``label``. Settles first: a rerun still drawing keeps the
    previous run's copy of the box on the page (stale) next to the new one."""
    settle(page)
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    settle(page)


LOSS_POINTS_JS = """() => {
    for (const plot of document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')) {
        const loss = (plot._fullData || []).find(trace => trace.name === 'loss');
        if (loss) return loss._length ?? loss.x.length;
    }
    return 0;
}"""


def loss_points(page) -> int:
    """How many points the training-loss chart on the page draws (read from Plotly's own data in the DOM)."""
    return page.evaluate(LOSS_POINTS_JS)


def live_loss_points(page, more_than: int) -> int:
    """Wait until the loss chart draws more than ``more_than`` points; returns how many. Fails unless the live
    view of a running run (its progress bar) drew them."""
    state = page.wait_for_function(f"""() => {{
        const points = ({LOSS_POINTS_JS})();
        const running = [...document.querySelectorAll('[data-testid="stProgress"]')]
            .some(element => element.innerText.includes('running ·'));
        return points > {more_than} && {{points, running}};
    }}""", timeout=TRAINING_TIMEOUT_MS, polling=100).json_value()
    assert state["running"], f"the run ended before the live loss chart showed more than {more_than} points"
    return state["points"]


def write_questions_csv(path: Path) -> Path:
    """qa_rows() without the answer columns: the questions arrive unanswered, to be answered on the Label page
    (an EMPTY answer cell would mean 'unanswerable' to the importer)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=["context", "question"])
        writer.writeheader()
        writer.writerows({"context": row["context"], "question": row["question"]} for row in qa_rows())
    return path


# ------------------------------------------------------------------------------------------------ the journey

def test_first_five_minutes_in_a_browser(page, tmp_path, server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    model_dir = make_tiny_model(tmp_path / "tiny-bert")
    answers = {(row["context"], row["question"]): row["answer_text"] for row in qa_rows()}
    total = len(answers)

    # 1. Data: upload, look at the mapping and preview, import.
    page.get_by_role("heading", name="Data", level=1).wait_for()
    page.get_by_text("No datasets yet — upload a CSV or load a sample").wait_for()
    csv_path = write_questions_csv(tmp_path / f"{DATASET}.csv")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv_path))
    page.get_by_text(f"Preview — first {total} of {total} rows").wait_for()
    page.get_by_text("1 warning(s) — these rows are imported").wait_for()  # "no answer column found", in a table
    page.get_by_text(f"No problems: {total} rows ready to import.").wait_for()
    settle(page)
    no_exception(page)
    screenshot(page, "01-data.png")
    button(page, f"Import {total} rows as dataset {DATASET}").click()
    page.get_by_text(f"Imported {total} rows as dataset '{DATASET}'.").wait_for()
    settle(page)
    no_exception(page)
    screenshot(page, "01-data-imported.png")

    # 2. Label: type each answer, see it highlighted in the context, save; progress goes up.
    go_to(page, "Label")
    page.get_by_text(f"0 of {total} answered").wait_for()
    texts = page.locator('[data-testid="stMain"] .spanlab-text')
    answer_box = page.get_by_label(ANSWER_LABEL, exact=True)
    for done in range(total):
        question, context = texts.nth(0).inner_text().strip(), texts.nth(1).inner_text().strip()
        answer = answers.pop((context, question))
        if done == 0:  # a typo first: the page says what is wrong and offers no save
            answer_box.fill(answer.capitalize())
            answer_box.press("Enter")
            page.get_by_text("capitalisation").first.wait_for()
            assert button(page, "Save answer").is_disabled()
        answer_box.fill(answer)
        answer_box.press("Enter")
        page.locator("mark.spanlab-active", has_text=answer).wait_for()
        settle(page)
        if done == 1:
            screenshot(page, "02-label.png")
        button(page, "Save answer").click()
        page.get_by_text(f"{done + 1} of {total} answered").wait_for()
        settle(page)
        no_exception(page)
    page.get_by_text(f"All {total} examples are answered").wait_for()
    screenshot(page, "02-label-done.png")

    # 3. Train: the tiny local model, hyperparameters it learns with; watch the loss chart fill in.
    page.get_by_role("link", name=re.compile(f"Train a model on '{DATASET}'")).click()  # offered once all are done
    page.get_by_role("heading", name="Train", level=1).wait_for()
    expect(page.get_by_label("Dataset", exact=True)).to_have_value(f"{DATASET} — qa")
    choose(page, "Model", "A model folder on this machine")
    folder = page.get_by_label("Model folder", exact=True)
    folder.fill(str(model_dir))
    folder.press("Enter")
    page.get_by_text("Available offline").wait_for()
    set_number(page, "Epochs", STEPS)  # 8 rows in one batch: one step per epoch
    set_number(page, "Learning rate", 0.001)
    set_number(page, "Batch size", 8)
    set_number(page, "Max length (tokens)", 64)
    set_number(page, "Doc stride", 16)
    choose(page, "Device", "cpu")
    choose(page, "Evaluation dataset", DATASET)
    page.get_by_text("Advanced", exact=True).click()
    set_number(page, "Evaluate every (steps)", STEPS // 10)
    set_number(page, "Early-stopping patience", STEPS)  # it learns in ~50 steps: keep going, to watch
    no_exception(page)
    screenshot(page, "03-train-form.png")
    button(page, "Start training").click()

    page.get_by_text(re.compile(rf"running · step \d+ of {STEPS}")).wait_for(timeout=TRAINING_TIMEOUT_MS)
    first = live_loss_points(page, more_than=0)
    later = live_loss_points(page, more_than=first)  # the polling page redraws the chart with more points
    assert later > first
    screenshot(page, "03-train.png")

    page.get_by_text(re.compile(r"Run #1 completed in")).wait_for(timeout=TRAINING_TIMEOUT_MS)
    settle(page)
    no_exception(page)
    assert loss_points(page) >= later
    screenshot(page, "03-train-done.png")

    # 4. Runs: the finished run, its curves and final metrics.
    go_to(page, "Runs")
    page.get_by_text("Final metrics").wait_for()
    page.get_by_text(re.compile(rf"#1 {DATASET} · tiny-bert — completed")).wait_for()
    no_exception(page)
    screenshot(page, "04-runs.png")
    page.get_by_text("Parameters", exact=True).click()  # what the Train form sent
    parameters = page.locator('[data-testid="stJson"]')
    for setting in ['"learning_rate":0.001', '"batch_size":8', '"max_length":64', '"doc_stride":16',
                    f'"eval_every":{STEPS // 10}', f'"eval_dataset":"{DATASET}"', '"device":"cpu"',
                    '"precision":"fp32"']:
        expect(parameters).to_contain_text(setting)

    # 5. Demo: ask about a dataset context; the answer is marked. Then a context with an HTML tag in it.
    go_to(page, "Demo")
    context_box = page.get_by_label("Context", exact=True)
    expect(context_box).to_have_value(QA_CONTEXTS[0])  # filled with the dataset's first context (waits for the
    # value: the box can be drawn a frame before Streamlit sets it; an immediate read failed once in a fresh clone)
    question_box = page.get_by_label("Question", exact=True)
    question_box.fill("who founded acme ?")
    question_box.press("Enter")
    settle(page)
    button(page, "Answer").click()
    page.locator(".spanlab-text mark.spanlab-active", has_text="alice").wait_for()
    settle(page)
    no_exception(page)
    screenshot(page, "05-demo.png")

    context_box.fill(f"{QA_CONTEXTS[1]} {XSS}")
    context_box.press("Control+Enter")
    question_box.fill("when was globex founded ?")
    question_box.press("Enter")
    settle(page)
    button(page, "Answer").click()
    shown = page.locator(".spanlab-text.spanlab-large", has_text=XSS)
    shown.wait_for()
    settle(page)
    assert page.locator('[data-testid="stMain"] img[src="x"]').count() == 0
    assert shown.locator("img").count() == 0
    assert page.dialogs == []
    screenshot(page, "05-demo-escaped.png")

    # 6. A second QA run that starts from the first run's model ("Start from a run"; --model run:1 on the CLI).
    go_to(page, "Train")
    choose(page, "Model", "Start from a run (a model trained here)")
    choose_matching(page, "Start from run", rf"^#1 {DATASET} · tiny-bert")
    page.get_by_text(re.compile(r"Starts from run #1's model")).wait_for()
    set_number(page, "Epochs", 20)
    no_exception(page)
    screenshot(page, "03-train-from-run.png")
    button(page, "Start training").click()
    page.get_by_text(re.compile(r"Run #2 completed in")).wait_for(timeout=TRAINING_TIMEOUT_MS)
    settle(page)
    no_exception(page)
    go_to(page, "Runs")
    page.get_by_text(re.compile(r"#2 .* — completed")).wait_for()
    page.get_by_text("Parameters", exact=True).click()
    expect(page.locator('[data-testid="stJson"]')).to_contain_text('"source_run":1')

    # 7. A stakeholder opens the demo link of run #2 in a tab of their own: only the Demo page, with the run's card;
    # no other page, nothing to delete or start.
    stakeholder = page.context.new_page()
    stakeholder.set_default_timeout(TIMEOUT_MS)
    stakeholder.goto(f"{server}/?demo=2")
    stakeholder.get_by_role("heading", name="Demo", level=1).wait_for()
    settle(stakeholder)
    assert stakeholder.locator('[data-testid="stSidebarNav"] a').count() == 0
    assert stakeholder.get_by_role("button", name=re.compile("Start training|Delete")).count() == 0
    stakeholder.get_by_text(re.compile(r"Run #2")).first.wait_for()
    question_box = stakeholder.get_by_label("Question", exact=True)
    question_box.fill("who founded acme ?")
    question_box.press("Enter")
    settle(stakeholder)
    button(stakeholder, "Answer").click()
    stakeholder.locator(".spanlab-text mark.spanlab-active").first.wait_for()
    settle(stakeholder)
    no_exception(stakeholder)
    screenshot(stakeholder, "09-demo-mode.png")
    stakeholder.goto(f"{server}/train?demo=2")  # another page by address: still only the Demo
    stakeholder.get_by_role("heading", name="Demo", level=1).wait_for()
    assert stakeholder.get_by_role("button", name=re.compile("Start training")).count() == 0


# ------------------------------------------------------------------------------------------------ entity spans

F1_POINTS_JS = """() => {
    for (const plot of document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')) {
        const f1 = (plot._fullData || []).find(trace => trace.name === 'F1');
        if (f1) return f1._length ?? f1.x.length;
    }
    return 0;
}"""
NER_DATASET = "toy"
NER_EPOCHS = 100  # 8 texts in batches of 4: 200 steps, about 2-5 s here


def write_entities_jsonl(path: Path) -> Path:
    """The toy entity texts as span JSONL (Prodigy's layout); two arrive unlabeled ("spans": null)."""
    import json
    from tests.test_tasks_ner import toy_rows
    rows = toy_rows()
    rows[1]["spans"] = rows[6]["spans"] = None
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_entity_spans_in_a_browser(page, tmp_path):
    """Upload span JSONL, mark entities by dragging across words, train while entity F1 fills in, see per-type
    scores, demo highlighted entities, export CoNLL."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    model_dir = make_tiny_model(tmp_path / "tiny-bert")

    # 1. Data: the task is recognised from the file (a spans column), the types are listed; import.
    go_to(page, "Data")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(write_entities_jsonl(tmp_path / f"{NER_DATASET}.jsonl")))
    expect(page.get_by_role("radio", name="Entity spans (NER)")).to_be_checked()
    page.get_by_text("No problems: 8 rows ready to import. Labels: LOC, ORG, PER.").wait_for()
    settle(page)
    no_exception(page)
    button(page, f"Import 8 rows as dataset {NER_DATASET}").click()
    page.get_by_text(f"Imported 8 rows as dataset '{NER_DATASET}'.").wait_for()

    # 2. Label: the first unlabeled text in the span picker; drag across a word, press its type's number.
    go_to(page, "Label")
    page.get_by_text("6 of 8 labeled").wait_for()
    picker = page.locator(".spanpicker")
    text = "bob founded globex in london ."
    expect(picker.locator(".box")).to_have_text(text)
    words = text.split()

    def word(w: str):
        return picker.locator(f'.w[data-i="{words.index(w)}"]')

    drag(page, word("bob"), word("bob"))
    page.keyboard.press("3")  # PER (types in order: 1 LOC, 2 ORG, 3 PER)
    drag(page, word("globex"), word("globex"))  # PER is active now: the selection becomes PER at once...
    page.keyboard.press("2")  # ...and a number right after retypes it
    drag(page, word("in"), word("london"))  # two words...
    page.keyboard.press("1")
    expect(picker.locator(".tag")).to_have_text(["PER", "ORG", "LOC"])
    word("in").click()  # ...too many: click the entity, remove it, mark only "london"
    picker.get_by_role("button", name="Remove entity").click()
    drag(page, word("london"), word("london"))
    page.keyboard.press("1")
    expect(picker.locator(".tag")).to_have_text(["PER", "ORG", "LOC"])
    settle(page)
    screenshot(page, "06-label-entities.png")
    page.keyboard.press("Enter")
    page.get_by_text("7 of 8 labeled").wait_for()
    expect(picker.locator(".box")).to_have_text("the food was good .")
    page.keyboard.press("Enter")  # nothing to mark: saved as "no entities"
    page.get_by_text("All 8 examples are labeled").wait_for()
    settle(page)
    no_exception(page)

    # 3. Train: entity F1 fills in on the validation chart while it runs.
    go_to(page, "Train")
    choose(page, "Dataset", f"{NER_DATASET} — ner")
    choose(page, "Model", "A model folder on this machine")
    folder = page.get_by_label("Model folder", exact=True)
    folder.fill(str(model_dir))
    folder.press("Enter")
    page.get_by_text("Available offline").wait_for()
    set_number(page, "Epochs", NER_EPOCHS)
    set_number(page, "Learning rate", 0.001)
    set_number(page, "Batch size", 4)
    choose(page, "Device", "cpu")
    choose(page, "Evaluation dataset", NER_DATASET)
    page.get_by_text("Advanced", exact=True).click()
    set_number(page, "Evaluate every (steps)", 20)
    set_number(page, "Early-stopping patience", 100)
    button(page, "Start training").click()
    page.wait_for_function(f"() => ({F1_POINTS_JS})() > 0", timeout=TRAINING_TIMEOUT_MS, polling=100)
    heading = page.get_by_role("heading", name=re.compile(rf"Run #\d+ · {NER_DATASET} · tiny-bert"))
    heading.wait_for()
    ner_run = re.search(r"Run #(\d+)", heading.inner_text()).group(1)  # this run, not an earlier run's notice
    page.get_by_text(re.compile(rf"Run #{ner_run} completed in")).wait_for(timeout=TRAINING_TIMEOUT_MS)
    settle(page)
    no_exception(page)
    page.wait_for_function(f"() => ({F1_POINTS_JS})() >= 5", timeout=TIMEOUT_MS, polling=100)  # the final charts
    screenshot(page, "07-train-entities.png")

    # 4. Runs: precision, recall, F1 and the per-type table.
    go_to(page, "Runs")
    page.get_by_text(re.compile(rf"#\d+ {NER_DATASET} · tiny-bert — completed")).wait_for()
    page.get_by_text("Per type (entity-level").wait_for()
    for heading in ("precision", "recall", "F1"):
        expect(page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(rf"^{heading}$"))).to_be_visible()

    # 5. Demo: the entities of a new text, one colour per type, with a legend; user text stays text.
    go_to(page, "Demo")
    box = page.get_by_label("Text", exact=True)
    expect(box).to_have_value(re.compile(r"^alice founded acme in paris \.$"))
    box.fill(f"carol founded initech in berlin . {XSS}")
    box.press("Control+Enter")
    settle(page)
    button(page, "Find entities").click()
    marks = page.locator("mark.spanlab-entity")
    expect(marks.first).to_be_visible()
    expect(page.locator(".spanlab-legend span")).to_have_text(["LOC", "ORG", "PER"])
    assert page.locator('[data-testid="stMain"] img[src="x"]').count() == 0 and page.dialogs == []
    settle(page)
    screenshot(page, "08-demo-entities.png")

    # 6. Data: export the labeled texts as CoNLL; the file holds the marked entities, tokens and IOB2 tags.
    go_to(page, "Data")
    choose(page, "Dataset to download or delete", NER_DATASET)
    with page.expect_download() as download:
        button(page, "Download CoNLL (IOB2)").click()
    conll = Path(download.value.path()).read_text(encoding="utf-8")
    assert "bob\tB-PER\nfounded\tO\nglobex\tB-ORG\nin\tO\nlondon\tB-LOC\n.\tO\n" in conll
    assert "the\tO\nfood\tO\nwas\tO\ngood\tO\n.\tO\n" in conll
