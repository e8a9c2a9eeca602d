"""core.charts: figures from metric frames, and the run tables/labels the pages show (no Streamlit needed)."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from core import charts


def frame(points: list[tuple[int, int, str, float]]) -> pd.DataFrame:
    """DataFrame shaped like storage.metric_frame: (run_id, step, name, value)."""
    return pd.DataFrame([{"run_id": r, "step": s, "epoch": None, "name": n, "value": v, "created_at": None}
                         for r, s, n, v in points],
                        columns=["run_id", "step", "epoch", "name", "value", "created_at"])


EMPTY = frame([])


def test_loss_figure_plots_loss_points_in_step_order():
    fig = charts.loss_figure(frame([(1, 20, "train/loss", 0.5), (1, 10, "train/loss", 0.9),
                                    (1, 10, "learning_rate", 1e-4), (1, 30, "train/loss", float("nan"))]))
    [trace] = fig.data
    assert list(trace.x) == [10, 20] and list(trace.y) == [0.9, 0.5]


def test_loss_figure_shows_the_few_shot_contrastive_stage_before_the_loss():
    fig = charts.loss_figure(frame([(1, 1, "train/contrastive_loss", 0.4), (1, 2, "train/contrastive_loss", 0.3),
                                    (1, 3, "train/loss", 0.7)]))
    assert [t.name for t in fig.data] == ["contrastive stage", "loss"]
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[1].x) == [3]


@pytest.mark.parametrize("data", [EMPTY, None, frame([(1, 5, "eval/f1", 50.0)])])
def test_loss_figure_without_points_says_so(data):
    fig = charts.loss_figure(data)
    assert not fig.data and "No loss" in fig.layout.annotations[0].text


def test_eval_figure_per_task():
    points = frame([(1, 10, "eval/accuracy", 0.5), (1, 20, "eval/accuracy", 0.75), (1, 10, "eval/macro_f1", 0.4),
                    (1, 20, "eval/macro_f1", 0.7), (1, 10, "train/loss", 1.0)])
    fig = charts.eval_figure(points, "classification")
    assert [t.name for t in fig.data] == ["accuracy", "macro-F1"]
    assert list(fig.data[0].y) == [0.5, 0.75] and tuple(fig.layout.yaxis.range) == (0, 1.01)

    qa = charts.eval_figure(frame([(2, 20, "eval/exact_match", 50.0), (2, 20, "eval/f1", 62.5)]), "qa")
    assert [t.name for t in qa.data] == ["exact match", "F1"] and qa.layout.yaxis.range[1] > 100
    assert not charts.eval_figure(points, "qa").data  # classification points are not QA metrics
    assert "No evaluation" in charts.eval_figure(EMPTY, "qa").layout.annotations[0].text


def test_compare_figure_one_line_per_run():
    points = frame([(1, 10, "train/loss", 1.0), (1, 20, "train/loss", 0.5), (2, 10, "train/loss", 0.8),
                    (2, 10, "eval/f1", 40.0)])
    fig = charts.compare_figure(points, "train/loss", {1: "#1 first", 2: "#2 second"})
    assert [t.name for t in fig.data] == ["#1 first", "#2 second"]
    assert list(fig.data[0].y) == [1.0, 0.5] and list(fig.data[1].y) == [0.8]
    assert [t.name for t in charts.compare_figure(points, "eval/f1").data] == ["#2"]
    assert not charts.compare_figure(points, "eval/accuracy").data


def test_confusion_figure_heatmap_with_counts():
    fig = charts.confusion_figure([[5, 1], [0, 4]], ["negative", "positive"])
    [heat] = fig.data
    assert heat.type == "heatmap" and [list(row) for row in heat.z] == [[5, 1], [0, 4]]
    assert list(heat.x) == ["negative", "positive"] and list(heat.y) == ["negative", "positive"]
    assert heat.texttemplate == "%{text}"
    assert fig.layout.xaxis.title.text == "predicted" and fig.layout.yaxis.title.text == "true"
    assert not charts.confusion_figure([], []).data


def test_probability_figure_most_likely_on_top_and_highlighted():
    fig = charts.probability_figure([{"label": "positive", "score": 0.8}, {"label": "negative", "score": 0.15},
                                     {"label": "neutral", "score": 0.05}])
    [bar] = fig.data
    assert bar.orientation == "h"
    assert list(bar.y) == ["neutral", "negative", "positive"]  # plotly draws the last one on top
    assert list(bar.text) == ["5.0%", "15.0%", "80.0%"]
    assert bar.marker.color[-1] != bar.marker.color[0]


def test_format_helpers():
    assert charts.format_duration(None) == "" and charts.format_duration(12.4) == "0:12"
    assert charts.format_duration(247) == "4:07" and charts.format_duration(3909) == "1:05:09"
    assert charts.format_metric("macro_f1", 0.91234) == "macro-F1 0.912"
    assert charts.format_metric("f1", 87.54) == "F1 87.5"
    assert charts.format_metric("f1", None) == ""
    assert charts.model_short_name("/tmp/x/tiny-bert0") == "tiny-bert0"
    assert charts.model_short_name("SpanBERT/spanbert-base-cased") == "SpanBERT/spanbert-base-cased"


def run_row(**overrides) -> dict:
    row = {"id": 3, "dataset_name": "reviews", "task": "classification", "model": "SpanBERT/spanbert-base-cased",
           "params": {"epochs": 3.0, "learning_rate": 5e-5, "batch_size": 16}, "status": "completed",
           "best_metric_name": "macro_f1", "best_metric": 0.9, "duration_s": 75.0,
           "created_at": datetime(2025, 5, 1, 9, 30, tzinfo=timezone.utc)}
    row.update(overrides)
    return row


def test_run_label_and_runs_table():
    assert charts.run_label(run_row()) == "#3 reviews · SpanBERT/spanbert-base-cased · macro-F1 0.900"
    assert charts.run_label(run_row(best_metric=None, status="failed", dataset_name=None)).endswith("· failed")
    table = charts.runs_table([run_row(), run_row(id=4, params={"epochs": None, "learning_rate": None,
                                                                  "batch_size": 8}, status="running",
                                                   best_metric=None, duration_s=None)])
    assert list(table["id"]) == [3, 4]
    first, second = table.iloc[0], table.iloc[1]
    assert (first["epochs"], first["lr"], first["batch"]) == ("3 planned", "5.0e-05", "16")  # an older run
    assert (second["epochs"], second["lr"], second["batch"]) == ("auto", "auto", "8")
    assert first["best metric"] == "macro-F1 0.900" and first["duration"] == "1:15"
    assert first["when"] == "2025-05-01 09:30" and second["duration"] == ""
    assert list(charts.runs_table([]).columns) == list(table.columns)


def test_progress_says_when_the_cross_validation_estimate_is_being_made():
    info = charts.progress_info({"status": "running", "step": 40, "total_steps": 40, "duration_s": 65.0,
                                 "metrics": {"cross_validation_fold": [2, 5]}})
    assert info["text"] == "trained; estimating its scores: cross-validation model 2 of 5 · 1:05 elapsed"
    assert info["fraction"] == 1.0 and info["remaining_s"] is None


def test_runs_table_shows_what_actually_ran_and_why_it_stopped():
    stopped_early = run_row(step=30, total_steps=1200, status="completed",
                            metrics={"steps_run": 30, "epochs_run": 0.75, "epochs_planned": 38.0,
                                     "stopped": "max_steps"})
    cancelled = run_row(id=5, step=7, total_steps=40, status="cancelled",
                        metrics={"epochs_run": 1.4, "epochs_planned": 8.0, "stopped": "cancelled"})
    early = run_row(id=6, status="completed", metrics={"epochs_run": 3.0, "epochs_planned": 10.0,
                                                        "stopped": "early_stopped"})
    done = run_row(id=7, status="completed", metrics={"epochs_run": 10.0, "epochs_planned": 10.0,
                                                       "stopped": "finished"})
    table = charts.runs_table([stopped_early, cancelled, early, done])
    assert table["steps"].tolist()[:2] == ["30 of 1200", "7 of 40"]
    assert table["epochs"].tolist() == ["0.75 of 38", "1.4 of 8", "3 of 10", "10 of 10"]
    assert table["stopped"].tolist() == ["max steps reached", "cancelled", "early stop (no improvement)",
                                         "all epochs done"]


def test_per_class_table_and_headline_metrics():
    metrics = {"accuracy": 0.75, "macro_f1": 0.7,
               "per_class": {"neg": {"precision": 1.0, "recall": 0.5, "f1-score": 0.667, "support": 2.0},
                             "pos": {"precision": 0.667, "recall": 1.0, "f1-score": 0.8, "support": 2.0}}}
    table = charts.per_class_table(metrics)
    assert list(table["label"]) == ["neg", "pos"] and list(table["support"]) == [2, 2]
    assert table.iloc[1]["f1"] == 0.8
    assert charts.per_class_table({}).empty
    assert charts.headline_metrics("classification", metrics) == [("accuracy", "0.750"), ("macro-F1", "0.700")]
    assert charts.headline_metrics("qa", {"exact_match": 50.0, "f1": 66.66}) == [("exact match (EM)", "50.0"),
                                                                                 ("F1", "66.7")]
    assert charts.headline_metrics("qa", {}) == []


def test_progress_info_estimates_remaining_time():
    info = charts.progress_info({"status": "running", "step": 25, "total_steps": 100, "duration_s": 50.0})
    assert info["fraction"] == 0.25 and info["remaining_s"] == pytest.approx(150.0)
    assert info["text"] == "step 25 of 100 · 0:50 elapsed · about 2:30 left"
    starting = charts.progress_info({"status": "running", "step": 0, "total_steps": 0, "duration_s": 3.0})
    assert starting["fraction"] == 0 and starting["remaining_s"] is None and "loading" in starting["text"]
    queued = charts.progress_info({"status": "queued", "step": 0, "total_steps": 0, "duration_s": None})
    assert "waiting" in queued["text"]
