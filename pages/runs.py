"""Runs page: the history of training runs, one run's detail (settings, curves, final metrics, download,
delete) and an overlay of several runs' curves.

Figures and tables come from core.charts, the model zip from core.artifacts; this script only lays them out.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import charts, models, storage
from core.artifacts import run_zip_name, zip_run_folder
from pages import auth
from pages.common import flash, plain, show_flashes
from pages.identity import current_user

auth.require("runs")  # before anything else: sign-in and demo mode (pages/auth.py)

ACTIVE = ("queued", "running")
CONFIRM_KEY = "runs_confirm_delete"


def _default_index(run_ids: list[int]) -> int:
    focus = st.session_state.get("focus_run")
    return run_ids.index(focus) if focus in run_ids else 0


def _delete(run_id: int) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    st.session_state.pop("runs_detail", None)  # the selector falls back to the newest run
    try:
        storage.delete_run(run_id, by=current_user())
    except storage.StorageError as exc:
        flash("runs", "error", plain(exc))
        return
    if st.session_state.get("focus_run") == run_id:
        st.session_state.pop("focus_run")
    flash("runs", "success", f"Run #{run_id} and its model files were deleted.")


def _download(run: dict) -> None:
    if not run.get("artifact_dir"):
        st.caption("No saved model to download (only completed runs keep one).")
        return
    if not (Path(run["artifact_dir"]) / "config.json").exists():
        st.caption(f"The saved model folder is gone ({plain(run['artifact_dir'])}).")
        return
    run_id = run["id"]

    def build_zip() -> bytes:  # runs when the button is clicked, not on every page draw
        return zip_run_folder(run_id)

    st.download_button("Download model", data=build_zip, file_name=f"{run_zip_name(run_id)}.zip",
                       mime="application/zip", on_click="ignore", icon="📦", key=f"runs_download_{run_id}",
                       help="The standard Hugging Face folder (config.json, weights, tokenizer): load it with "
                            "from_pretrained after unzipping.")


def _delete_button(run: dict) -> None:
    run_id = run["id"]
    if run["status"] in ACTIVE:
        st.button("Delete run", key=f"runs_delete_{run_id}", disabled=True, icon="🗑️",
                  help="Cancel the run on the Train page before deleting it.")
    elif st.button("Delete run", key=f"runs_delete_{run_id}", icon="🗑️",
                   help="Removes the run, its metrics and its saved model (asks first)."):
        st.session_state[CONFIRM_KEY] = run_id


def _delete_confirmation(run: dict) -> None:
    run_id = run["id"]
    if st.session_state.get(CONFIRM_KEY) != run_id:
        return
    owner = run.get("created_by")
    theirs = f" It was started by {plain(owner)}, not by you." if owner and owner != current_user() else ""
    st.warning(f"Delete run #{run_id}, its metrics and its saved model? This cannot be undone.{theirs}")
    yes, no, _ = st.columns([1, 1, 4])
    yes.button("Yes, delete", type="primary", key="runs_delete_yes", on_click=_delete, args=(run_id,))
    if no.button("Keep it", key="runs_delete_no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


def _final_metrics(run: dict) -> None:
    metrics = run.get("metrics") or {}
    shown = charts.headline_metrics(run["task"], metrics)
    estimate = charts.cv_estimate(run)
    if not shown and estimate:
        st.caption(charts.cv_title(estimate))
        metrics, shown = estimate["metrics"], charts.headline_metrics(run["task"], estimate["metrics"])
    if not shown:
        st.caption("No final metrics (the run ended before an evaluation, or had no validation data).")
        return
    for column, (title, value) in zip(st.columns(4), shown):
        column.metric(title, value)
    table = charts.per_class_table(metrics)
    number_format = {name: st.column_config.NumberColumn(format="%.3f") for name in ("precision", "recall", "f1")}
    if metrics.get("confusion_matrix"):
        left, right = st.columns([3, 2])
        left.plotly_chart(charts.confusion_figure(metrics["confusion_matrix"], metrics.get("labels") or []),
                          key=f"runs_confusion_{run['id']}")
        right.dataframe(table, hide_index=True, width="stretch", column_config=number_format)
    elif not table.empty:
        st.caption("Per type (entity-level, counted as seqeval/conlleval count entities)")
        st.dataframe(table, hide_index=True, width="stretch", column_config=number_format)
    if metrics.get("examples") or run.get("params", {}).get("n_validation"):
        st.caption(f"Validation examples: {metrics.get('examples') or run['params'].get('n_validation')}.")


def _detail(run: dict) -> None:
    status = run["status"]
    title = f"#{run['id']} {run.get('dataset_name') or '(deleted dataset)'} · {charts.model_short_name(run['model'])}"
    st.markdown(f"**{plain(title)}** — {status}"
                + (f" · {charts.format_duration(run['duration_s'])}" if run.get("duration_s") else "")
                + f" · started by {plain(run.get('created_by') or storage.UNKNOWN_PERSON)}"
                + (f" · cancelled by {plain(run['cancelled_by'])}" if run.get("cancelled_by") else ""))
    if status == "failed":
        st.error(plain(models.worded_for(run["error"], models.APP)) if run.get("error") else
                 "The run failed without a message.")
    elif status in ("cancelled", "interrupted"):
        st.warning(f"{status.capitalize()}: {plain(models.worded_for(run.get('error') or 'no details', models.APP))}")
    elif status in ACTIVE:
        st.info("This run is still going: watch it live on the Train page.")
    params = dict(run.get("params") or {})
    notes = params.pop("notes", None) or []
    for note in notes:
        st.caption(f"Note: {plain(note)}")
    frame = storage.metric_frame(run["id"])
    left, right = st.columns(2)
    left.plotly_chart(charts.loss_figure(frame), key=f"runs_loss_{run['id']}")
    right.plotly_chart(charts.eval_figure(frame, run["task"]), key=f"runs_eval_{run['id']}")
    if status not in ACTIVE:
        st.markdown("##### Final metrics")
        _final_metrics(run)
    with st.expander("Parameters"):
        used = {key: run[key] for key in ("device", "precision") if run.get(key)}  # what "auto" resolved to
        st.json({"model": run["model"], "dataset": run.get("dataset_name"),
                 "eval_dataset": run.get("eval_dataset_name"), **params, **used}, expanded=True)
    left, right, _ = st.columns([1, 1, 2])
    with left:
        _download(run)
    with right:
        _delete_button(run)
    _delete_confirmation(run)


def _compare(runs: list[dict]) -> None:
    by_id = {run["id"]: run for run in runs}
    chosen = st.multiselect("Runs to compare", list(by_id), key="runs_compare",
                            format_func=lambda rid: charts.run_choice_title(by_id[rid]),
                            help="Their curves are drawn on top of each other.")
    if not chosen:
        st.caption("Pick two or more runs to overlay their training loss and validation scores.")
        return
    frame = storage.metric_frame(chosen)
    labels = {rid: charts.run_label(by_id[rid]) for rid in chosen}
    eval_names = sorted(name for name in frame["name"].unique() if name.startswith("eval/"))
    preferred = [name for name in ("eval/macro_f1", "eval/f1") if name in eval_names]
    left, right = st.columns(2)
    left.plotly_chart(charts.compare_figure(frame, charts.LOSS, labels), key="runs_compare_loss")
    with right:
        if eval_names:
            metric = st.selectbox("Validation metric", eval_names, key="runs_compare_metric",
                                  index=eval_names.index(preferred[0]) if preferred else 0,
                                  format_func=charts.metric_title)
            st.plotly_chart(charts.compare_figure(frame, metric, labels), key="runs_compare_eval")
        else:
            st.caption("None of these runs has validation scores.")


st.title("Runs")
show_flashes("runs")
_runs = storage.list_runs()
if not _runs:
    st.info("No runs yet — train one.")
    st.page_link("pages/train.py", label="Train a model", icon="🚀")
    st.stop()

st.dataframe(charts.runs_table(_runs), hide_index=True, width="stretch", key="runs_table")
_details_tab, _compare_tab = st.tabs(["Run details", "Compare runs"])
with _details_tab:
    _ids = [run["id"] for run in _runs]
    _by_id = {run["id"]: run for run in _runs}
    _selected = st.selectbox("Run", _ids, index=_default_index(_ids), key="runs_detail",
                             format_func=lambda rid: charts.run_choice_title(_by_id[rid]))
    _detail(_by_id[_selected])
with _compare_tab:
    _compare(_runs)
