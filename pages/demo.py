"""Demo page: try a trained model live, in large type for a presenter.

Classification: type a text, see the predicted label and every label's probability. QA: a context (typed, or one
of the run's dataset contexts) and a question give the answer highlighted inside the context, "No answer" for an
unanswerable question, and the runner-up answers; picking one highlights that one instead. Each answer shows its
relative confidence (its share among the answers shown; the raw model score on hover), alternatives overlapping a
better answer are merged into it (core.tasks.qa.presented_answers), and answer text is a bidi island so a
right-to-left answer cannot scramble the percentage after it. Models stay loaded
(core.inference.load_predictor caches them), so answers after the first come quickly. User text reaches the page
as HTML only through core.highlight, which escapes it.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import charts, config, models, source_runs, storage, tasks
from core.highlight import (ENTITY_CSS, HIGHLIGHT_CSS, big_text_html, entities_html, escape_text, highlight_html,
                            isolate, legend_html)
from pages import auth
from pages.common import plain

auth.require("demo")  # before anything else: sign-in and demo mode (pages/auth.py)

TOP_K = 5
CANDIDATES = 4 * TOP_K  # asked of the model, so that TOP_K remain once overlapping alternatives are merged
EXAMPLE_LIMIT = 200
# Presenter-sized inputs (CSS only; the style lives as long as this page is shown).
DEMO_CSS = """<style>
[data-testid="stTextArea"] textarea, [data-testid="stTextInput"] input { font-size: 1.2rem; line-height: 1.5; }
[data-testid="stRadio"] label p { font-size: 1.1rem; }
</style>"""


def _demo_runs() -> list[dict]:
    """Finished runs whose model folder is on disk, newest first."""
    return [run for run in storage.list_runs()
            if run["status"] not in ("queued", "running") and run.get("artifact_dir")
            and (Path(run["artifact_dir"]) / "config.json").exists()]


@st.cache_data(ttl=60, show_spinner=False)
def _examples(database_url: str, dataset: str | None, field: str) -> list[dict]:
    """Up to EXAMPLE_LIMIT example inputs from the run's dataset: distinct values of ``field`` (texts, or contexts
    each with its first question). (database_url is part of the cache key only.)"""
    if not dataset:
        return []
    try:
        rows = storage.load_examples(dataset)
    except storage.NotFoundError:
        return []
    seen, examples = set(), []
    for row in rows:
        key = row.get(field)
        if not key or key in seen:
            continue
        seen.add(key)
        examples.append({"text": key, "question": row.get("question") or ""})
        if len(examples) >= EXAMPLE_LIMIT:
            break
    return examples


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _load_predictor(run_id: int):
    from core.inference import PredictorError, load_predictor
    try:
        with st.spinner("Loading the model…"):
            return load_predictor(run_id)
    except (PredictorError, storage.StorageError) as exc:
        st.error(plain(exc))
    except Exception as exc:  # a damaged or foreign folder: say so instead of a traceback
        st.error(f"This model cannot be loaded ({type(exc).__name__}: {plain(exc)}). Pick another run or train again.")
    return None


def _predict(method, *args, **kwargs):
    """The predictor's answer, or None after showing what went wrong."""
    try:
        with st.spinner("Thinking…"):
            return method(*args, **kwargs)
    except Exception as exc:  # e.g. out of memory on a huge text: a message, not a traceback
        st.error(f"The model could not answer ({type(exc).__name__}: {plain(exc)}).")
        return None


def _example_picker(examples: list[dict], target_key: str, label: str, run_id: int) -> None:
    """A selectbox of dataset examples that copies the chosen one into the widget ``target_key``; the first
    example fills it when the run changes."""
    if not examples:
        return
    marker = f"{target_key}_run"
    if st.session_state.get(marker) != run_id:
        st.session_state[marker] = run_id
        st.session_state[target_key] = examples[0]["text"]
        st.session_state[f"{target_key}_example"] = 0

    def copy_example() -> None:
        st.session_state[target_key] = examples[st.session_state[f"{target_key}_example"]]["text"]

    st.selectbox(label, range(len(examples)), key=f"{target_key}_example", on_change=copy_example,
                 format_func=lambda i: _short(examples[i]["text"]),
                 help="Fills the box below with an example from the run's dataset; edit it freely.")


def _classification(run: dict, predictor) -> None:
    examples = _examples(config.database_url(), run.get("dataset_name"), "text")
    _example_picker(examples, "demo_text", "Example text", run["id"])
    text = st.text_area("Text", key="demo_text", height=140, placeholder="Type or paste a text to classify…")
    if st.button("Classify", type="primary", key="demo_classify", icon="🏷️"):
        if not text.strip():
            st.warning("Type a text first.")
        else:
            scores = _predict(predictor.predict, [text])
            if scores:
                st.session_state["demo_classification"] = {"run": run["id"], "scores": scores[0]}
    result = st.session_state.get("demo_classification")
    if not result or result["run"] != run["id"]:
        return
    scores = result["scores"]
    left, right = st.columns([2, 3])
    with left:
        st.caption("Predicted label")
        st.html(HIGHLIGHT_CSS + big_text_html(scores[0]["label"]))
        st.caption(f"{scores[0]['score']:.0%} probability")
    right.plotly_chart(charts.probability_figure(scores), key="demo_probabilities")


def _answer_title(answer: dict) -> str:
    """A radio option: the answer as a bidi island (so " — 42%" stays after right-to-left text), its share."""
    text = isolate(plain(_short(answer["answer"], 60))) if answer["answer"] else "*No answer*"
    return text if answer.get("relative") is None else f"{text} — {answer['relative']:.0%}"


def _own_direction(markup: str) -> str:
    """User text in its own writing direction (an Arabic passage reads right to left, punctuation included)."""
    return f'<div dir="auto">{markup}</div>'


def _share_html(answer: dict, tooltip: str) -> str:
    """The picked answer's share of the confidence, with the raw score and merged alternatives on hover."""
    share = "no score" if answer.get("relative") is None else f"{answer['relative']:.0%}"
    return (f'<div class="spanlab-share" title="{escape_text(tooltip)}">Relative confidence: {share} of the answers '
            'shown · hover for the raw score</div>')


def _qa(run: dict, predictor) -> None:
    examples = _examples(config.database_url(), run.get("dataset_name"), "context")
    _example_picker(examples, "demo_context", "Example context", run["id"])
    context = st.text_area("Context", key="demo_context", height=200,
                           placeholder="Paste the passage the answer should come from…",
                           help="Any length: long passages are read in overlapping windows.")
    chosen_example = st.session_state.get("demo_context_example")
    hint = examples[chosen_example]["question"] if examples and chosen_example is not None else ""
    question = st.text_input("Question", key="demo_question",
                             placeholder=f"e.g. {hint}" if hint else "Ask something the passage answers…")
    if st.button("Answer", type="primary", key="demo_answer", icon="💬"):
        if not context.strip() or not question.strip():
            st.warning("Give both a context and a question.")
        else:
            answers = _predict(predictor.predict, question, context, top_k=CANDIDATES)
            if answers is not None:
                st.session_state["demo_qa"] = {"run": run["id"], "context": context,
                                               "answers": predictor.task.presented(answers, TOP_K)}
                st.session_state["demo_choice"] = 0
    result = st.session_state.get("demo_qa")
    if not result or result["run"] != run["id"]:
        return
    answers = predictor.task.presented(result["answers"] or [{"answer": "", "start": -1, "end": -1, "score": 0.0}],
                                       TOP_K)
    tooltips = [predictor.task.answer_tooltip(answer) for answer in answers]
    if st.session_state.get("demo_choice") not in range(len(answers)):
        st.session_state["demo_choice"] = 0
    left, right = st.columns([3, 1])
    with right:
        choice = st.radio("Top answers", range(len(answers)), key="demo_choice", format_func=lambda i: _answer_title(
            answers[i]), help="Pick one to highlight it in the passage. The percentages are relative: each answer's "
                              "share of the model's confidence among the answers shown (together 100%), not a "
                              "probability of being right. Overlapping answers are merged into the better one. "
                              "Hover the answer for the raw model score.")
    with left:
        picked = answers[choice]
        st.caption("Answer" if choice == 0 else f"Alternative {choice + 1}")
        st.html(HIGHLIGHT_CSS + _own_direction(big_text_html(picked["answer"] if picked["answer"] else "No answer")))
        if not picked["answer"]:
            st.caption("The model finds no answer to this question in the passage.")
        st.html(_share_html(picked, tooltips[choice]))
        marked = [{**answer, "title": tooltip} for answer, tooltip in zip(answers, tooltips)]
        st.html(HIGHLIGHT_CSS + _own_direction(highlight_html(
            result["context"], marked, active=choice if picked["answer"] else None, large=True,
            highlight_others=False)))


def _entities(run: dict, predictor) -> None:
    from pages.span_picker import label_colors
    examples = _examples(config.database_url(), run.get("dataset_name"), "text")
    _example_picker(examples, "demo_entities_text", "Example text", run["id"])
    text = st.text_area("Text", key="demo_entities_text", height=160,
                        placeholder="Type or paste a text to find its entities…",
                        help="Any length: long texts are read in overlapping windows.")
    if st.button("Find entities", type="primary", key="demo_find_entities", icon="🔎"):
        if not text.strip():
            st.warning("Type a text first.")
        else:
            found = _predict(predictor.predict, text)
            if found is not None:
                st.session_state["demo_entities"] = {"run": run["id"], "text": text, "entities": list(found)}
    result = st.session_state.get("demo_entities")
    if not result or result["run"] != run["id"]:
        return
    colors = label_colors(predictor.labels)
    entities = result["entities"]
    st.html(HIGHLIGHT_CSS + ENTITY_CSS + legend_html(colors))
    st.html(HIGHLIGHT_CSS + ENTITY_CSS + entities_html(result["text"], entities, colors, large=True))
    if not entities:
        st.caption("The model finds no entities in this text.")
    else:
        st.caption(f"{len(entities)} entit{'y' if len(entities) == 1 else 'ies'} · hover one to see how sure the "
                   "model is")


def _when(run: dict) -> str:
    moment = run.get("finished_at") or run.get("created_at")
    if moment is None:
        return "—"
    return (moment.astimezone() if moment.tzinfo else moment).strftime("%Y-%m-%d %H:%M")


def _licence(model: str) -> str:
    model = source_runs.root_model(model)  # run:N: the licence of the model the chain of runs started from
    known = models.KNOWN_MODELS.get(model)
    if known:
        return known["license"]
    if models.local_folder_like(model):
        return "not known (a local model folder: see where it came from)"
    return "see its model card on the Hugging Face Hub"


def run_card(run: dict) -> None:
    """What a stakeholder should know about the model on screen: its data, scores, date, base model and licence.
    Every name in it is user-supplied, so it is shown as plain text."""
    with st.container(border=True, key="demo_run_card"):
        st.markdown(f"**Run #{run['id']}**")
        task = tasks.get(run["task"])
        st.caption("Trained on")
        st.markdown(f"{plain(run.get('dataset_name') or '(deleted dataset)')} · {plain(task.title)}")
        shown = charts.headline_metrics(run["task"], run.get("metrics") or {})
        if shown:
            for title, value in shown:
                st.metric(title, value)
            examples = (run.get("metrics") or {}).get("examples") or (run.get("params") or {}).get("n_validation")
            if examples:
                st.caption(f"Measured on {examples} held-out examples.")
        else:
            st.caption("No validation scores: nothing was held out for measuring this run.")
        st.caption("Finished")
        st.markdown(plain(_when(run)))
        st.caption("Base model")
        model = run.get("model") or ""
        root = source_runs.root_model(model)
        shown_model = charts.model_short_name(model) or "—"
        if root != model:  # started from another run: name the model that chain began with too
            shown_model += f" (from {charts.model_short_name(root)})"
        st.markdown(plain(shown_model))
        st.caption(f"Licence: {plain(_licence(run.get('model') or ''))}")


st.title("Demo")
st.html(DEMO_CSS)
_access = auth.current_access()
_demo_only = _access.demo_runs is not None
if st.session_state.get(auth.DEMO_LINK_PROBLEM_KEY) and _demo_only:
    st.error(st.session_state[auth.DEMO_LINK_PROBLEM_KEY])
_runs = _demo_runs()
if _demo_only:  # only the chosen runs, in the order given
    _found = {run["id"]: run for run in _runs}
    _runs = [_found[run_id] for run_id in _access.demo_runs if run_id in _found]
if not _runs:
    if _demo_only:
        st.info("The models of this demo are not available (not trained yet, or deleted). Ask whoever shared it.")
    else:
        st.info("No trained model yet — train one, then come back to try it here.")
        st.page_link("pages/train.py", label="Train a model", icon="🚀")
    st.stop()

_by_id = {run["id"]: run for run in _runs}
_ids = list(_by_id)
_focus = st.session_state.get("focus_run")
_run_id = st.selectbox("Model", _ids, index=_ids.index(_focus) if _focus in _ids else 0, key="demo_run",
                       format_func=lambda rid: charts.run_label(_by_id[rid]),
                       help="The models of this demo." if _demo_only else "Finished runs that saved a model.")
_run = _by_id[_run_id]
_main, _card = st.columns([3, 1])
with _card:
    run_card(_run)
WIDGETS = {"probabilities": _classification, "answer": _qa, "entities": _entities}  # each task's demo_widget
with _main:
    _predictor = _load_predictor(_run_id)
    if _predictor is not None:
        WIDGETS[_predictor.task.demo_widget](_run, _predictor)
