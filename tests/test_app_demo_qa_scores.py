"""Demo page (AppTest), QA after a short run (issue 13, finding 5): the answers' percentages mean something (relative
confidence, adding up to 100%, the raw score on hover), overlapping alternatives are merged, and right-to-left answer
text is isolated so the " — 42%" after it stays in place; everything escaped."""
from __future__ import annotations

import html
import re

import pytest

from core import storage
from core.highlight import FIRST_STRONG_ISOLATE, POP_ISOLATE
from tests.conftest import QA_CONTEXTS, qa_rows
from tests.test_app_demo import open_run, train

PERCENT = re.compile(r" — (\d+)%$")
ARABIC_CONTEXT = "تأسست شركة أكمي عام ١٩٩٩ على يد أليس في باريس . <b>عاجل</b> $x$"


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, tiny_model_dir):
    """A QA run stopped after two steps: its raw answer scores are tiny (as a short run's in the app)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPANLAB_HOME", str(tmp_path_factory.mktemp("demo-scores-home")))
        patch.delenv("DATABASE_URL", raising=False)
        storage.create_dataset("capitals", "qa", qa_rows())
        yield train("capitals", tiny_model_dir, learning_rate=1e-4, max_steps=2, eval_every=2, max_length=64,
                    doc_stride=16)


def ask(run_id: int, context: str, question: str):
    at = open_run(run_id)
    at.text_area(key="demo_context").set_value(context)
    at.text_input(key="demo_question").set_value(question)
    at.button(key="demo_answer").click().run()
    assert not at.exception, at.exception
    radio = at.radio(key="demo_choice")
    labels = list(radio.options)  # as drawn (AppTest gives the formatted option texts)
    return at, at.session_state["demo_qa"]["answers"], labels


def test_short_run_answers_show_relative_confidence_not_zero_percent(short_run):
    at, answers, labels = ask(short_run, QA_CONTEXTS[0], "who founded acme ?")
    assert max(answer["score"] for answer in answers) < 0.05  # the raw scores really are tiny after two steps
    percents = [int(PERCENT.search(label).group(1)) for label in labels]
    assert percents[0] > 0 and any(p > 0 for p in percents[1:])
    assert abs(sum(percents) - 100) <= len(percents)  # shares of the answers shown (rounded)
    assert [round(100 * answer["relative"]) for answer in answers] == percents
    assert "relative" in at.radio(key="demo_choice").help.lower()
    [share] = [h.value for h in at.html if "spanlab-share" in h.value]
    raw = re.search(r'title="([^"]*)"', share).group(1)
    assert f"raw model score {answers[0]['score']:.2g}" in html.unescape(raw)
    assert "Relative confidence" in share


def test_overlapping_alternatives_are_merged(short_run):
    _, answers, labels = ask(short_run, QA_CONTEXTS[2], "who founded initech ?")
    assert len(labels) == len(answers) >= 3
    spans = [(a["start"], a["end"]) for a in answers if a["start"] >= 0]
    for i, (start, end) in enumerate(spans):
        for other_start, other_end in spans[i + 1:]:
            assert end <= other_start or other_end <= start, f"overlapping answers shown: {answers}"
    assert any(answer["merged"] for answer in answers)  # the untrained model does propose overlapping spans


def test_arabic_answers_are_isolated_and_escaped(short_run):
    at, answers, labels = ask(short_run, ARABIC_CONTEXT, "من أسس أكمي ؟")
    for answer, label in zip(answers, labels):
        if not answer["answer"]:
            continue
        assert label.startswith(FIRST_STRONG_ISOLATE), label
        body, suffix = label[1:].split(POP_ISOLATE)
        assert PERCENT.fullmatch(suffix), label  # nothing but the share after the island
        assert "<" not in body and "$" not in body  # Markdown-escaped, as every user string in a label
        assert html.unescape(body) == " ".join(answer["answer"].split())[:60] or body.endswith("…")
    markup = "".join(h.value for h in at.html)
    assert "<b>" not in markup and "&lt;b&gt;" in markup  # the passage's own tag shows as text
    assert '<div dir="auto"><div class="spanlab-text' in markup  # the passage in its own direction
