"""Demo page (AppTest): QA answers highlighted (and escaped) in the context, alternatives, "No answer", examples
from the dataset, classification with probabilities, and the empty state."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import storage
from core.training import TrainConfig, execute_run
from tests.conftest import QA_CONTEXTS, qa_rows, sentiment_rows

APP = Path(__file__).resolve().parent.parent / "app.py"
ACTIVE_MARK = re.compile(r'<mark class="spanlab-mark spanlab-active"[^>]*>(.*?)</mark>')


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def train(dataset: str, model_dir: Path, **settings) -> int:
    cfg = TrainConfig(dataset=dataset, eval_dataset=dataset, model=str(model_dir), batch_size=8, device="cpu",
                      **settings)
    run_id = storage.create_run(dataset, storage.get_dataset(dataset)["task"], cfg.model, cfg.to_params(),
                                eval_dataset=dataset)
    execute_run(run_id)
    run = storage.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    return run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """A QA run that has learned qa_rows() (as tests/test_training.py::test_qa_learns_spans) and a quick
    classification run, shared by this module."""
    with pytest.MonkeyPatch.context() as patch:  # one torch thread: see conftest
        patch.setenv("SPANLAB_HOME", str(tmp_path_factory.mktemp("demo-page-home")))
        patch.delenv("DATABASE_URL", raising=False)
        storage.create_dataset("capitals", "qa", qa_rows())
        storage.create_dataset("sentiment", "classification", sentiment_rows(6))
        qa = train("capitals", tiny_model_dir, learning_rate=1e-3, max_steps=60, eval_every=20, max_length=64,
                   doc_stride=16)
        cls = train("sentiment", tiny_model_dir, learning_rate=2e-3, max_steps=20, eval_every=10)
        yield {"qa": qa, "classification": cls}


def open_run(run_id: int) -> AppTest:
    at = open_page("demo")
    at.selectbox(key="demo_run").set_value(run_id).run()
    assert not at.exception, at.exception
    return at


def context_html(at: AppTest) -> str:
    """The highlighted context: the wrapper div (without the CSS that precedes it)."""
    [markup] = [h.value for h in at.html if '<div class="spanlab-text' in h.value]
    return markup[markup.index('<div class="spanlab-text'):]


def test_empty_state_links_to_train(spanlab_home):
    at = open_page("demo")
    assert any("No trained model yet" in info.value for info in at.info)
    assert at.get("page_link")


def test_qa_answer_is_highlighted_in_the_context(runs):
    at = open_run(runs["qa"])
    assert at.text_area(key="demo_context").value == QA_CONTEXTS[0]  # prefilled from the run's dataset
    at.text_input(key="demo_question").set_value("who founded acme ?")
    at.button(key="demo_answer").click().run()
    assert not at.exception, at.exception
    markup = context_html(at)
    assert ACTIVE_MARK.findall(markup) == ["alice"]
    assert html.unescape(re.sub(r"<[^>]+>", "", markup)) == QA_CONTEXTS[0]
    assert any(">alice</div>" in h.value for h in at.html)  # the big answer

    radio = at.radio(key="demo_choice")
    assert len(radio.options) > 1 and radio.value == 0
    answers = at.session_state["demo_qa"]["answers"]
    radio.set_value(1).run()
    assert ACTIVE_MARK.findall(context_html(at)) == [html.escape(answers[1]["answer"])]


def test_hostile_context_is_shown_escaped(runs):
    at = open_run(runs["qa"])
    hostile = "<script>alert(1)</script> <img src=x onerror=alert(2)> $x$ acme was founded in 1999 by alice ."
    at.text_area(key="demo_context").set_value(hostile)
    at.text_input(key="demo_question").set_value("who founded acme ?")
    at.button(key="demo_answer").click().run()
    assert not at.exception, at.exception
    markup = context_html(at)
    assert "<script" not in markup and "<img" not in markup and "$" not in markup
    assert set(re.findall(r"</?([a-z]+)", markup)) == {"div", "mark"}  # no tag of the user's survives
    unmarked = re.sub(r"</?mark[^>]*>", "", markup)  # wherever the (tiny) model put its answer
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(2)&gt; &#36;x&#36;" in unmarked
    assert html.unescape(re.sub(r"<[^>]+>", "", markup)) == hostile
    assert len(ACTIVE_MARK.findall(markup)) == 1


def test_no_answer_is_shown_as_such(runs):
    at = open_run(runs["qa"])
    at.session_state["demo_qa"] = {"run": runs["qa"], "context": QA_CONTEXTS[1], "answers": [
        {"answer": "", "start": -1, "end": -1, "score": 0.7},
        {"answer": "bob", "start": QA_CONTEXTS[1].index("bob"), "end": QA_CONTEXTS[1].index("bob") + 3,
         "score": 0.3}]}
    at.run()
    assert any(">No answer</div>" in h.value for h in at.html)
    assert "<mark" not in context_html(at)
    at.radio(key="demo_choice").set_value(1).run()
    assert ACTIVE_MARK.findall(context_html(at)) == ["bob"]


def test_example_context_picker_fills_the_context(runs):
    at = open_run(runs["qa"])
    at.selectbox(key="demo_context_example").set_value(2).run()
    assert at.text_area(key="demo_context").value == QA_CONTEXTS[2]


def test_classification_shows_label_and_probabilities(runs):
    at = open_run(runs["classification"])
    at.text_area(key="demo_text").set_value("great film")
    at.button(key="demo_classify").click().run()
    assert not at.exception, at.exception
    scores = at.session_state["demo_classification"]["scores"]
    assert {s["label"] for s in scores} == {"negative", "positive"}
    assert sum(s["score"] for s in scores) == pytest.approx(1.0)
    assert any(f">{scores[0]['label']}</div>" in h.value for h in at.html)
    [chart] = at.get("plotly_chart")
    assert '"orientation":"h"' in chart.proto.spec.replace(" ", "")


def test_entities_are_highlighted_by_type_with_a_legend_and_escaped(tmp_path, monkeypatch, tiny_model_dir):
    from tests.test_tasks_ner import toy_rows
    monkeypatch.setenv("SPANLAB_HOME", str(tmp_path / "ner-home"))
    storage.create_dataset("toy", "ner", toy_rows())
    run_id = train("toy", tiny_model_dir, learning_rate=1e-3)
    at = open_run(run_id)
    assert at.text_area(key="demo_entities_text").value == toy_rows()[0]["text"]  # an example from the dataset
    text = "bob founded globex in paris . <img src=x onerror=alert(1)>"
    at.text_area(key="demo_entities_text").set_value(text).run()
    at.button(key="demo_find_entities").click().run()
    assert not at.exception, at.exception
    shown = " ".join(element.proto.body for element in at.get("html"))
    marks = re.findall(r'<mark class="spanlab-entity" style="background: ([^"]+)"[^>]*>(.*?)<span class="spanlab-type">'
                       r'(.*?)</span></mark>', shown)
    assert [(html.unescape(entity), kind) for _, entity, kind in marks][:3] == [("bob", "PER"), ("globex", "ORG"),
                                                                              ("paris", "LOC")]
    assert len({colour for colour, _, _ in marks[:3]}) == 3  # one colour per type
    assert 'class="spanlab-legend"' in shown and all(f">{kind}</span>" in shown for kind in ("LOC", "ORG", "PER"))
    assert "<img" not in shown and "onerror=alert(1)&gt;" in shown, shown[-900:]
