"""What the Train, Runs and Demo pages draw: plotly figures from metric points and run rows, plus the small
tables and labels around them (history table, per-class report, progress/ETA text).

Pure functions of plain data (``storage.metric_frame`` frames, ``storage.get_run`` dicts), no Streamlit, so they
are unit-tested without a browser. Figures say so when there is nothing to draw yet instead of showing empty axes.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from core import tasks

LOSS = "train/loss"
CONTRASTIVE_LOSS = "train/contrastive_loss"  # the few-shot recipe's first stage (core/fewshot.py)
METRIC_TITLES = {LOSS: "training loss", "learning_rate": "learning rate", "eval/accuracy": "accuracy",
                 "eval/macro_f1": "macro-F1", "eval/exact_match": "exact match (EM)", "eval/f1": "F1",
                 "accuracy": "accuracy", "macro_f1": "macro-F1", "exact_match": "exact match (EM)", "f1": "F1",
                 "precision": "precision", "recall": "recall", "eval/precision": "precision",
                 "eval/recall": "recall"}
# Metric names on a 0-100 scale when the task is not known (QA's SQuAD metrics).
PERCENT_METRICS = {name for task in tasks.ALL if task.metric_scale == 100 for name in task.headline}
FIGURE_HEIGHT = 320


def metric_title(name: str) -> str:
    return METRIC_TITLES.get(name, name.split("/")[-1].replace("_", " "))


def _base_figure(title: str, x_title: str = "step", y_title: str = "", height: int = FIGURE_HEIGHT) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=45, b=10), xaxis_title=x_title,
                      yaxis_title=y_title, hovermode="x unified", template="plotly_white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig


def _empty_note(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="gray"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _points(frame: pd.DataFrame | None, name: str) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame(columns=["run_id", "step", "value"])
    rows = frame[(frame["name"] == name) & frame["value"].notna()]
    return rows.sort_values(["run_id", "step"]) if "run_id" in rows else rows.sort_values("step")


def loss_figure(frame: pd.DataFrame | None) -> go.Figure:
    """Training loss per logged step of one run (and, for the few-shot recipe, its contrastive stage before it)."""
    fig = _base_figure("Training loss", y_title="loss")
    drawn = 0
    for name, title in ((CONTRASTIVE_LOSS, "contrastive stage"), (LOSS, "loss")):
        points = _points(frame, name)
        if not points.empty:
            fig.add_trace(go.Scatter(x=points["step"], y=points["value"], mode="lines", name=title,
                                     line=dict(width=2)))
            drawn += 1
    if not drawn:
        return _empty_note(fig, "No loss logged yet")
    return fig


def eval_figure(frame: pd.DataFrame | None, task: str) -> go.Figure:
    """Validation metrics per evaluation, those the task names: accuracy + macro-F1 (classification), EM + F1 (QA),
    entity precision, recall and F1 (entities)."""
    spec = tasks.get(task)
    metrics = spec.eval_metrics
    y_title = f"score (0-{spec.metric_scale:g})"
    fig = _base_figure("Validation", y_title=y_title)
    drawn = 0
    for name, title in metrics:
        points = _points(frame, name)
        if points.empty:
            continue
        fig.add_trace(go.Scatter(x=points["step"], y=points["value"], mode="lines+markers", name=title))
        drawn += 1
    if not drawn:
        return _empty_note(fig, "No evaluation yet")
    fig.update_yaxes(range=[0, spec.metric_scale * 1.005 if spec.metric_scale > 1 else 1.01])
    return fig


def compare_figure(frame: pd.DataFrame | None, metric: str, run_labels: dict[int, str] | None = None) -> go.Figure:
    """One line per run for ``metric`` (a metric point name such as ``train/loss`` or ``eval/f1``)."""
    title = metric_title(metric)
    fig = _base_figure(title[:1].upper() + title[1:], y_title=title)
    points = _points(frame, metric)
    if points.empty:
        return _empty_note(fig, f"No '{metric_title(metric)}' points in the selected runs")
    run_labels = run_labels or {}
    for run_id, rows in points.groupby("run_id", sort=True):
        fig.add_trace(go.Scatter(x=rows["step"], y=rows["value"], name=run_labels.get(int(run_id), f"#{run_id}"),
                                 mode="lines" if metric == LOSS else "lines+markers"))
    return fig


def confusion_figure(matrix: list[list[int]], labels: list[str]) -> go.Figure:
    """Heatmap of a confusion matrix (rows = true label, columns = predicted), counts written in the cells."""
    size = max(260, 60 * len(labels) + 120)
    fig = _base_figure("Confusion matrix", x_title="predicted", y_title="true", height=size)
    fig.update_layout(hovermode="closest")
    if not matrix or not labels:
        return _empty_note(fig, "No confusion matrix for this run")
    names = [str(label) for label in labels]
    fig.add_trace(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", showscale=False,
                             text=matrix, texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}"
                                                                                "<br>%{z} examples<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return fig


def probability_figure(scores: list[dict]) -> go.Figure:
    """Horizontal bars of label probabilities ({label, score} dicts), most likely on top."""
    ordered = sorted(scores, key=lambda s: s["score"])  # plotly draws the first bar at the bottom
    fig = _base_figure("", x_title="probability", height=max(160, 48 * len(ordered) + 60))
    fig.update_layout(hovermode="closest", margin=dict(l=10, r=10, t=10, b=10))
    if not ordered:
        return _empty_note(fig, "No prediction")
    top = ordered[-1]["label"]
    fig.add_trace(go.Bar(x=[s["score"] for s in ordered], y=[str(s["label"]) for s in ordered], orientation="h",
                         text=[f"{s['score']:.1%}" for s in ordered], textposition="auto",
                         marker_color=["#ff4b4b" if s["label"] == top else "#9aa5b1" for s in ordered],
                         hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(type="category", tickfont=dict(size=16))
    return fig


# ----------------------------------------------------------------------------- labels and tables

def format_duration(seconds: float | None) -> str:
    """1:05:09 / 4:07 / 0:12 ; '' for None."""
    if seconds is None or seconds != seconds:  # None or NaN
        return ""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _percent(key: str, task: str | None) -> bool:
    return tasks.get(task).metric_scale > 1 if task else key in PERCENT_METRICS


def format_metric(name: str | None, value: float | None, task: str | None = None) -> str:
    """'macro-F1 0.912' / 'F1 87.5' (QA's 0-100 scale) ; '' when there is no value."""
    if value is None or value != value:
        return ""
    key = (name or "").split("/")[-1]
    number = f"{value:.1f}" if _percent(key, task) else f"{value:.3f}"
    return f"{metric_title(key)} {number}" if name else number


def model_short_name(model: str | None) -> str:
    """A hub id stays as is; a local folder path shows its last part."""
    if not model:
        return ""
    if "/" in model and (model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model):
        return Path(model).name or model
    return model


def run_label(run: dict) -> str:
    """'#12 reviews · SpanBERT/spanbert-base-cased · macro-F1 0.912' (Demo/Runs selectors)."""
    parts = [f"#{run['id']} {run.get('dataset_name') or '(deleted dataset)'}", model_short_name(run.get("model"))]
    metric = format_metric(run.get("best_metric_name"), run.get("best_metric"), run.get("task"))
    if metric:
        parts.append(metric)
    if run.get("status") not in (None, "completed"):
        parts.append(run["status"])
    return " · ".join(parts)


def cv_estimate(run: dict) -> dict | None:
    """A run's cross-validation estimate ({folds, rows, metrics}) when it has one (see training.cross_validate)."""
    estimate = (run.get("metrics") or {}).get("cross_validation")
    return estimate if isinstance(estimate, dict) and estimate.get("metrics") else None


def cv_title(estimate: dict) -> str:
    return (f"{estimate['folds']}-fold cross-validation estimate: each of the {estimate['rows']} labeled rows scored "
            "by a model trained the same way without it")


STOP_REASONS = {"early_stopped": "early stop (no improvement)", "max_steps": "max steps reached",
                "cancelled": "cancelled", "finished": "all epochs done"}


def stop_reason(run: dict) -> str:
    """Why a run ended, in words ('' while it is active)."""
    status = run.get("status")
    if status in ("queued", "running"):
        return ""
    if status in ("failed", "interrupted"):
        return status
    stopped = (run.get("metrics") or {}).get("stopped")
    return STOP_REASONS.get(stopped, "cancelled" if status == "cancelled" else stopped or "")


def _steps_run(run: dict) -> str:
    """'30 of 120': optimizer steps done of those planned (the planned count is known once training started)."""
    step, total = run.get("step") or 0, run.get("total_steps") or 0
    return f"{step} of {total}" if total else str(step)


def epochs_run(run: dict) -> str:
    """Epochs actually trained of those planned ('0.8 of 38'); older runs recorded only the plan ('38 planned')."""
    metrics, params = run.get("metrics") or {}, run.get("params") or {}
    if isinstance(metrics.get("epochs_run"), (int, float)):
        planned = metrics.get("epochs_planned")
        return f"{metrics['epochs_run']:g}" + (f" of {planned:g}" if isinstance(planned, (int, float)) else "")
    if isinstance(params.get("epochs"), (int, float)):
        return f"{params['epochs']:g} planned"
    return "auto"


def _cv_metric(run: dict) -> str:
    estimate = cv_estimate(run)
    if not estimate:
        return ""
    shown = headline_metrics(run.get("task"), estimate["metrics"])
    return f"{shown[-1][0]} {shown[-1][1]} ({estimate['folds']}-fold estimate)" if shown else ""


def run_choice_title(run: dict) -> str:
    """'#12 reviews · SpanBERT/spanbert-base-cased': a run's text in selectors that also list active runs. It never
    changes while the run trains (a browser keeps a choice only while its text is still among the options)."""
    return f"#{run['id']} {run.get('dataset_name') or '(deleted dataset)'} · {model_short_name(run.get('model'))}"


def _param(params: dict, key: str):
    value = params.get(key)
    return "auto" if value is None else value


def runs_table(runs: list[dict]) -> pd.DataFrame:
    """History table of runs (newest first as given): one row each, columns the Runs page shows."""
    rows = []
    for run in runs:
        params = run.get("params") or {}
        created = run.get("created_at")
        rows.append({
            "id": run["id"],
            "dataset": run.get("dataset_name") or "",
            "task": run.get("task") or "",
            "model": model_short_name(run.get("model")),
            "steps": _steps_run(run),
            "epochs": epochs_run(run),
            "stopped": stop_reason(run),
            "lr": (f"{params['learning_rate']:.1e}" if isinstance(params.get("learning_rate"), (int, float))
                   else "auto"),
            "batch": str(_param(params, "batch_size")),
            "status": run.get("status") or "",
            "best metric": format_metric(run.get("best_metric_name"), run.get("best_metric"), run.get("task"))
                           or _cv_metric(run),
            "duration": format_duration(run.get("duration_s")),
            "when": created.strftime("%Y-%m-%d %H:%M") if created is not None else "",
            "started by": run.get("created_by") or "unknown",
        })
    columns = ["id", "dataset", "task", "model", "steps", "epochs", "stopped", "lr", "batch", "status", "best metric",
               "duration", "when", "started by"]
    return pd.DataFrame(rows, columns=columns)


def per_class_table(metrics: dict) -> pd.DataFrame:
    """Per-class precision/recall/F1/support from a classification run's final metrics."""
    per_class = (metrics or {}).get("per_class") or {}
    rows = [{"label": label, "precision": values.get("precision"), "recall": values.get("recall"),
             "f1": values.get("f1-score", values.get("f1")), "support": int(values.get("support", 0) or 0)}
            for label, values in per_class.items()]
    return pd.DataFrame(rows, columns=["label", "precision", "recall", "f1", "support"])


def headline_metrics(task: str, metrics: dict) -> list[tuple[str, str]]:
    """The final numbers worth a big st.metric: [(title, formatted value)], in display order."""
    spec = tasks.get(task)
    shown = []
    for name in spec.headline:
        value = (metrics or {}).get(name)
        if isinstance(value, (int, float)):
            shown.append((metric_title(name), f"{value:.1f}" if spec.metric_scale > 1 else f"{value:.3f}"))
    return shown


def progress_info(run: dict) -> dict:
    """Progress of a run: fraction done (0-1), elapsed and estimated remaining seconds, and a one-line text.

    The estimate assumes the remaining steps take as long as the done ones did (model loading included,
    so it errs on the long side early on)."""
    step, total = int(run.get("step") or 0), int(run.get("total_steps") or 0)
    elapsed = run.get("duration_s")
    fraction = min(1.0, step / total) if total else 0.0
    remaining = None
    if elapsed is not None and step > 0 and total >= step:
        remaining = elapsed * (total - step) / step
    if run.get("status") == "queued":
        text = "waiting for the run before it to finish"
    elif not total:
        text = "preparing data and loading the model…"
    elif (run.get("metrics") or {}).get("cross_validation_fold"):  # training done, the estimate is being made
        fold, folds = run["metrics"]["cross_validation_fold"]
        text = f"trained; estimating its scores: cross-validation model {fold} of {folds}"
        remaining = None
        if elapsed is not None:
            text += f" · {format_duration(elapsed)} elapsed"
    else:
        text = f"step {step} of {total}"
        if elapsed is not None:
            text += f" · {format_duration(elapsed)} elapsed"
        if remaining is not None and run.get("status") == "running":
            text += f" · about {format_duration(remaining)} left"
    return {"fraction": fraction, "elapsed_s": elapsed, "remaining_s": remaining, "text": text}
