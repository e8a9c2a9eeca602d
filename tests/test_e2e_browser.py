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
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import QA_CONTEXTS, make_tiny_model, qa_rows

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000            # any single wait for the page
TRAINING_TIMEOUT_MS = 120_000  # the whole training run
DATASET = "founders"
ANSWER_LABEL = "Answer — type or paste it exactly as it appears in the context"
XSS = "<img src=x onerror=alert(1)>"
STEPS = 1000  # training steps: long enough to watch the chart grow on a fast idle machine too (~10 s here)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM} "
                                                     "(bash scripts/test.sh installs it: apt-get install chromium)"),
]


# ------------------------------------------------------------------------------------------------ the server

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit did not answer {url}/_stcore/health within {timeout:.0f} s:\n"
                f"{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, artifacts):
    """``streamlit run app.py`` on a free loopback port with its own SPANLAB_HOME; yields its base URL."""
    home = tmp_path_factory.mktemp("e2e-home")
    port = _free_port()
    env = {**os.environ, "SPANLAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}  # a tiny model trains fastest on one thread when the cores are shared
    env.pop("DATABASE_URL", None)
    log = artifacts / "server.log"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    """A fresh headless chromium tab (own profile) on the app. Dialogs (an injected alert()) are dismissed and
    their messages kept in ``tab.dialogs`` for the test to check."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            tab = context.pages[0] if context.pages else context.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            tab.dialogs = []
            tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
            tab.goto(server)
            yield tab
            try:
                tab.screenshot(path=str(ARTIFACTS / "99-last.png"))  # where a failed journey stopped
            except Exception as error:  # noqa: BLE001 — only a debugging aid
                print(f"no last screenshot: {error}")
        finally:
            context.close()


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


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def button(page, text: str):
    """The button saying ``text`` (after its icon, if it has one)."""
    return page.get_by_role("button", name=re.compile(rf"^\W*{re.escape(text)}$"))


def set_number(page, label: str, value) -> None:
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

def test_first_five_minutes_in_a_browser(page, tmp_path):
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
    expect(page.get_by_label("Dataset", exact=True)).to_have_value(f"{DATASET} — qa, {total} of {total} rows labeled")
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
