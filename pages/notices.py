"""Tell a person how their run ended, on whichever page they are when it ends (not a page itself).

The Train page remembers the run this tab started while it trains (``WATCHING_KEY``); the first page drawn after
it ended shows a toast with the outcome, once.
"""
from __future__ import annotations

import streamlit as st

from core import charts, models, storage
from pages.common import plain

WATCHING_KEY = "train_watching"  # this tab's run, noted by the Train page while it trains
ANNOUNCED_KEY = "train_announced"  # runs whose end this tab was told about


def outcome(run: dict) -> str:
    """'Your run #4 completed: accuracy 0.910, macro-F1 0.900' (or how it ended otherwise)."""
    shown = charts.headline_metrics(run["task"], run.get("metrics") or {})
    estimate = charts.cv_estimate(run)
    if not shown and estimate:
        shown = charts.headline_metrics(run["task"], estimate["metrics"])
    scores = ", ".join(f"{title} {value}" for title, value in shown[:2])
    scores += f" ({estimate['folds']}-fold estimate)" if scores and estimate and not run.get("best_metric_name") else ""
    text = f"Your run #{run['id']} {run['status']}"
    if run["status"] == "completed":
        return text + (f": {scores}" if scores else " (no held-out scores)")
    return text + (f": {models.worded_for(run['error'], models.APP)}" if run.get("error") else "")


def announce_run_end() -> dict | None:
    """Toast the outcome of this tab's run once it has ended (once per run); returns that run, else None."""
    run_id = st.session_state.get(WATCHING_KEY)
    announced = st.session_state.setdefault(ANNOUNCED_KEY, [])
    if run_id is None or run_id in announced:
        return None
    try:
        run = storage.get_run(int(run_id))
    except storage.NotFoundError:
        return None
    if run["status"] in ("queued", "running"):
        return None
    announced.append(run_id)
    st.toast(plain(outcome(run)), icon="✅" if run["status"] == "completed" else "⚠️")
    return run
