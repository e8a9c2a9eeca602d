"""Predictors loaded from saved folders: compiled (torch.compile in the background) and eager answers agree, and a
compile that cannot happen or fails leaves the eager model answering."""
from __future__ import annotations

import json
import shutil

import pytest

from core import inference

LONG_CONTEXT = " ".join(["acme was founded in 1999 by alice in paris , france ."] * 60)  # several 64-token windows
QUESTIONS = ["who founded acme ?", "when was acme founded ?", "where is the capital ?", "who founded globex ?"]
CONTEXTS = [LONG_CONTEXT, "acme was founded in 1999 by alice .", "paris is the capital of france .",
            "globex was founded in 2005 by bob ."]


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory, tiny_model_dir):
    """A QA and a classification folder (trained heads are not needed: random heads, saved, load identically)."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification
    folders = {}
    for task, auto, meta in (
            ("qa", AutoModelForQuestionAnswering, {"task": "qa", "max_length": 64, "doc_stride": 16}),
            ("classification", AutoModelForSequenceClassification, {"task": "classification"})):
        folder = tmp_path_factory.mktemp(f"saved-{task}")
        torch.manual_seed(1)
        kwargs = {"num_labels": 3, "id2label": {0: "a", 1: "b", 2: "c"}} if task == "classification" else {}
        auto.from_pretrained(tiny_model_dir, **kwargs).save_pretrained(folder)
        for path in tiny_model_dir.iterdir():
            if path.name not in ("config.json", "model.safetensors"):  # the tokenizer's files
                shutil.copy(path, folder / path.name)
        (folder / "spanlab.json").write_text(json.dumps(meta), encoding="utf-8")
        folders[task] = folder
    return folders


def test_compiled_qa_predictor_answers_like_the_eager_one(saved_models, monkeypatch):
    monkeypatch.setenv("SPANLAB_COMPILE", "1")
    eager = inference.load_predictor(saved_models["qa"], device="cpu")
    compiled = inference.load_predictor(saved_models["qa"], device="cpu", compiled=True)
    assert eager is not compiled and eager.compile_status == "not requested"
    # Answers work while it compiles (from the eager model).
    assert compiled.predict(QUESTIONS[1], CONTEXTS[1])[0]["answer"]
    assert compiled.wait_compiled(timeout=600), compiled.compile_status
    assert compiled.compile_status == "compiled" and compiled.compile_seconds > 0
    assert len(inference.models.load_tokenizer(saved_models["qa"])(QUESTIONS[0], LONG_CONTEXT)["input_ids"]) > 64

    def no_eager(**batch):
        raise AssertionError("the eager model answered although the compiled one is ready")

    monkeypatch.setattr(compiled, "model", no_eager)
    for batch in (QUESTIONS, QUESTIONS[1:2]):  # several windows and questions at once, then a batch of one
        contexts = CONTEXTS if len(batch) > 1 else CONTEXTS[1:2]
        want = eager.predict_batch(batch, contexts, top_k=3)
        got = compiled.predict_batch(batch, contexts, top_k=3)
        for w_answers, g_answers in zip(want, got):
            assert [(a["start"], a["end"]) for a in g_answers] == [(a["start"], a["end"]) for a in w_answers]
            assert [a["score"] for a in g_answers] == pytest.approx([a["score"] for a in w_answers], abs=1e-4)


def test_compiled_classification_falls_back_to_eager_when_compiling_fails(saved_models, monkeypatch):
    import torch
    monkeypatch.setenv("SPANLAB_COMPILE", "1")

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no compiler on this machine")

    monkeypatch.setattr(torch, "compile", broken_compile)
    predictor = inference.load_predictor(saved_models["classification"], device="cpu", compiled=True)
    assert predictor.wait_compiled(timeout=60) is False
    assert predictor.compile_status.startswith("eager: torch.compile failed (RuntimeError: no compiler")
    scores = predictor.predict(["good movie", "bad film"])
    assert [len(s) for s in scores] == [3, 3]
    assert all(abs(sum(p["score"] for p in s) - 1) < 1e-5 for s in scores)


def test_compiling_is_skipped_when_turned_off_or_off_cpu(saved_models, monkeypatch):
    monkeypatch.setenv("SPANLAB_COMPILE", "off")
    folder = saved_models["classification"]
    (folder / "config.json").touch()  # a new stamp: a fresh predictor rather than the cached one
    predictor = inference.load_predictor(folder, device="cpu", compiled=True)
    assert predictor.compile_status == "eager: turned off by SPANLAB_COMPILE"
    assert predictor.wait_compiled(timeout=1) is False  # nothing to wait for
    monkeypatch.setenv("SPANLAB_COMPILE", "1")
    assert "only CPU inference" in inference.compile_disabled_reason("cuda")
    monkeypatch.setenv("CXX", "")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "no C++ compiler" in inference.compile_disabled_reason("cpu")
