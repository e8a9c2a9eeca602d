"""Runs page (AppTest) and core.artifacts: history table, run detail, compare, download zip, delete with
confirmation, and the empty state."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import storage
from core.artifacts import ArtifactError, zip_run_folder
from core.training import TrainConfig, execute_run
from tests.conftest import qa_rows, sentiment_rows

APP = Path(__file__).resolve().parent.parent / "app.py"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def train(model_dir: Path, dataset: str, **overrides) -> int:
    settings = dict(dataset=dataset, eval_dataset=dataset, model=str(model_dir), device="cpu", batch_size=8,
                    learning_rate=2e-3, max_steps=8, eval_every=4)
    cfg = TrainConfig(**{**settings, **overrides})
    run_id = storage.create_run(dataset, storage.get_dataset(dataset)["task"], cfg.model, cfg.to_params(),
                                eval_dataset=dataset)
    execute_run(run_id)
    return run_id


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """Two classification runs, one QA run and one failed run, in a home shared by this module."""
    with pytest.MonkeyPatch.context() as patch:  # one torch thread: see conftest
        patch.setenv("SPANLAB_HOME", str(tmp_path_factory.mktemp("runs-page-home")))
        patch.delenv("DATABASE_URL", raising=False)
        storage.create_dataset("sentiment", "classification", sentiment_rows(6))
        storage.create_dataset("capitals", "qa", qa_rows())
        first = train(tiny_model_dir, "sentiment")
        second = train(tiny_model_dir, "sentiment", seed=7)
        qa = train(tiny_model_dir, "capitals", max_length=64, doc_stride=16)
        failed = storage.create_run("sentiment", "classification", "nowhere", {"epochs": 1})
        storage.update_run(failed, status="failed", error="The folder 'nowhere' does not exist.")
        for run_id in (first, second, qa):
            assert storage.get_run(run_id)["status"] == "completed", storage.get_run(run_id)["error"]
        yield {"first": first, "second": second, "qa": qa, "failed": failed}


def test_empty_state_links_to_train(spanlab_home):
    at = open_page("runs")
    assert any("No runs yet" in info.value for info in at.info)
    assert at.get("page_link")


def test_history_table_and_classification_detail(runs):
    at = open_page("runs")
    table = at.dataframe[0].value
    assert set(table["id"]) == set(runs.values())
    row = table[table["id"] == runs["first"]].iloc[0]
    assert (row["dataset"], row["status"], row["batch"], row["lr"]) == ("sentiment", "completed", "8", "2.0e-03")
    assert row["best metric"].startswith("macro-F1") and row["duration"]

    at.selectbox(key="runs_detail").set_value(runs["first"]).run()
    assert not at.exception, at.exception
    assert {m.label for m in at.metric} == {"accuracy", "macro-F1"}
    per_class = at.dataframe[1].value
    assert set(per_class["label"]) == {"negative", "positive"}
    figures = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert any('"heatmap"' in spec for spec in figures)  # the confusion matrix
    assert any("Training loss" in spec for spec in figures)
    assert at.get("download_button")


def test_qa_and_failed_run_detail(runs):
    at = open_page("runs")
    at.selectbox(key="runs_detail").set_value(runs["qa"]).run()
    assert {m.label for m in at.metric} == {"exact match (EM)", "F1"}
    at.selectbox(key="runs_detail").set_value(runs["failed"]).run()
    assert [e.value for e in at.error] == ["The folder 'nowhere' does not exist."]
    assert not at.get("download_button")


def test_compare_overlays_the_chosen_runs(runs):
    at = open_page("runs")
    at.multiselect(key="runs_compare").set_value([runs["first"], runs["second"]]).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="runs_compare_metric").value == "eval/macro_f1"
    specs = [chart.proto.spec for chart in at.get("plotly_chart")]
    compare = [spec for spec in specs if f"#{runs['second']} sentiment" in spec]
    assert len(compare) == 2  # loss and the validation metric, each with both runs
    assert all(f"#{runs['first']} sentiment" in spec for spec in compare)


def test_zip_holds_the_standard_model_folder(runs):
    data = zip_run_folder(runs["first"])
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    prefix = f"spanlab-run-{runs['first']}/"
    assert f"{prefix}config.json" in names and f"{prefix}model.safetensors" in names
    assert f"{prefix}spanlab.json" in names and any(n.startswith(prefix + "tokenizer") for n in names)
    with pytest.raises(ArtifactError, match="no saved model"):
        zip_run_folder(runs["failed"])


def test_delete_asks_for_confirmation_then_removes_run_and_files(runs, tiny_model_dir):
    doomed = train(tiny_model_dir, "sentiment", max_steps=2)
    folder = Path(storage.get_run(doomed)["artifact_dir"])
    assert folder.exists()
    at = open_page("runs")
    at.selectbox(key="runs_detail").set_value(doomed).run()
    at.button(key=f"runs_delete_{doomed}").click().run()
    assert any(f"Delete run #{doomed}" in w.value for w in at.warning)
    assert storage.get_run(doomed)  # nothing deleted before confirming

    at.button(key="runs_delete_no").click().run()
    assert storage.get_run(doomed) and not at.warning

    at.button(key=f"runs_delete_{doomed}").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not at.exception, at.exception
    with pytest.raises(storage.NotFoundError):
        storage.get_run(doomed)
    assert not folder.exists()
    assert any(f"Run #{doomed}" in s.value for s in at.success)
    assert doomed not in set(at.dataframe[0].value["id"])
