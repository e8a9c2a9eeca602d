"""What several pages share: the one job runner per server process, and small UI helpers.

Not a page itself (app.py lists the pages explicitly).
"""
from __future__ import annotations

import streamlit as st


@st.cache_resource
def get_runner():
    """One JobRunner per server process, shared by every browser tab. Creating it marks runs that a previous
    server left running as interrupted, and imports the training libraries in the background (while the user fills
    in the form), so the first run starts at once."""
    import threading
    from core import models
    from core.runner import JobRunner
    threading.Thread(target=models.warm_up, name="spanlab-warm-up", daemon=True).start()
    return JobRunner(recover=True)


@st.cache_data(ttl=600, show_spinner=False)
def prefetch_model(ref: str) -> bool:
    """Read the chosen model's files in the background once (per model, every 10 minutes at most), so training
    finds them in the file cache."""
    import threading
    from core import models
    threading.Thread(target=models.prefetch, args=(ref,), name="spanlab-prefetch", daemon=True).start()
    return True


# --- Messages that survive one rerun (set in a button callback, shown by the next run of the page) ---------------
# Added by the Data/Label page helper.

def flash(page: str, kind: str, message: str) -> None:
    """Queue a message ("success", "info", "warning", "error" or "toast") for the next run of ``page``."""
    st.session_state.setdefault(f"_flash:{page}", []).append((kind, message))


def show_flashes(page: str) -> list[tuple[str, str]]:
    """Show and forget the queued messages of ``page``; returns them (kind, message)."""
    shown = st.session_state.pop(f"_flash:{page}", [])
    for kind, message in shown:
        {"success": st.success, "info": st.info, "warning": st.warning, "toast": st.toast}.get(kind, st.error)(message)
    return shown


def highlighted_html(text: str, spans: list[tuple[int, int]] = (), active: int | None = None,
                     large: bool = False) -> str:
    """``text`` as escaped HTML (with its CSS, ready for st.html) with ``spans`` (character start, end) marked and
    span number ``active`` marked strongly; built by core.highlight."""
    from core.highlight import HIGHLIGHT_CSS, highlight_html
    return HIGHLIGHT_CSS + highlight_html(text, spans, active=active, large=large)


def plain(text) -> str:
    """A user-supplied string (dataset, label or run name, typed text, a message quoting one) for any place Streamlit
    renders as Markdown, so it shows as plain text: no image is fetched, no link or bold forms."""
    from core.highlight import escape_markdown
    return escape_markdown(text)
