"""A tiny app around pages.span_picker for tests/test_span_picker.py: two short examples (the first holds an
<img onerror> tag, an emoji and CJK, plus one model suggestion), three labels, and every event the component sends
written to the page as JSON. ``?long=1`` shows one 2,000-character example instead (for the latency check).
It refuses empty saves (a ValueError the widget shows). The "Tall text box" toggle changes the component's data
but not doc_id (unsaved edits must survive that rerun).

Run: streamlit run tests/span_picker_app.py --server.fileWatcherType none
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

LABELS = ["PERSON", "ORG", "LOC"]
TEXTS = ["Alice Smith joined Acme Corp in 東京 🙂 last May. The note said <img src=x onerror=alert(1)> verbatim.",
         "Carol flew to Berlin with Dave."]
SUGGESTIONS = [[{"start": TEXTS[0].index("東京"), "end": TEXTS[0].index("東京") + 2, "label": "LOC", "score": 0.91}], []]
SENTENCE = "Maria Lopez from Globex visited Madrid and Rome with Bob Chen of Initech last spring. "
LONG_TEXT = (SENTENCE * (2000 // len(SENTENCE) + 1))[:2000]


def words_of(text: str) -> list[tuple[int, int]]:
    """Words for the picker: runs of word characters, and each other non-space character on its own."""
    return [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]


def main() -> None:
    import streamlit as st

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` adds tests/, not the root
    from pages.span_picker import span_picker

    st.set_page_config(page_title="Span picker test", layout="wide")
    state = st.session_state
    if "doc" not in state:
        state.update(doc=0, events=[], saved={}, runs=0)
    state.runs += 1

    def received(event: dict) -> None:
        if event["action"] == "save" and not event["spans"]:  # to show the error path: the widget displays it
            raise ValueError("this test app refuses empty saves")
        state.events.append(event)
        if event["action"] == "save":
            state.saved[state.doc] = event["spans"]
        else:
            state.doc = max(0, min(len(TEXTS) - 1, state.doc + event["delta"]))

    long = st.query_params.get("long") == "1"
    index = state.doc
    text = LONG_TEXT if long else TEXTS[index]
    saved = state.saved.get(index)
    spans = [] if long else saved if saved is not None else SUGGESTIONS[index]
    tall = st.toggle("Tall text box")
    span_picker(text, words_of(text), spans, LABELS, doc_id="long" if long else f"doc-{index}", key="picker",
                suggested=saved is None, on_event=received, max_height_px=640 if tall else 420)
    st.caption(f"doc: {index} · events: {len(state.events)} · runs: {state.runs}")
    for event in state.events:  # oldest first: a rerun only appends
        st.code(json.dumps(event, ensure_ascii=False), language="json")


if __name__ == "__main__":
    main()
