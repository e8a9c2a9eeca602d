"""Widget choices that survive a visit to another page (not a page itself).

Streamlit forgets a widget's value when a run does not draw it, so leaving the Train page and coming back used to
reset its Dataset choice to the first dataset: a run could then start on the wrong data. ``kept(key)`` gives a
widget its key plus an on_change that copies the value aside, and puts the copy back before the widget is drawn
again.
"""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def _store(key: str) -> str:
    return f"_kept:{key}"


def kept(key: str, on_change: Callable[[], None] | None = None) -> dict:
    """Keyword arguments (key, on_change) for a widget whose value is kept across pages; call it right before
    drawing the widget."""
    if key not in st.session_state and _store(key) in st.session_state:
        st.session_state[key] = st.session_state[_store(key)]

    def remember() -> None:
        st.session_state[_store(key)] = st.session_state.get(key)
        if on_change is not None:
            on_change()

    return {"key": key, "on_change": remember}


def forget(key: str) -> None:
    """Drop a kept widget value (e.g. a choice that is no longer among the options), so the widget starts empty."""
    st.session_state.pop(key, None)
    st.session_state.pop(_store(key), None)
