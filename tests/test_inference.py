"""The predictor's precision (for QA models): bf16 answers with close calls re-checked in fp32, and how "auto" chooses."""
from __future__ import annotations

import json
import math

import pytest

from core import inference
from tests.conftest import qa_rows


@pytest.fixture(scope="module")
def qa_model_dir(tmp_path_factory, tiny_model_dir):
    """The tiny BERT with a fresh (random) QA head, saved as a SpanLab QA folder: its calls are all close."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    folder = tmp_path_factory.mktemp("tiny-qa")
    torch.manual_seed(3)
    AutoModelForQuestionAnswering.from_pretrained(tiny_model_dir).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    (folder / "spanlab.json").write_text(json.dumps({"task": "qa", "max_length": 64, "doc_stride": 16,
                                                     "max_answer_length": 5}), encoding="utf-8")
    return folder


def _predictor(folder, precision, **meta):
    base = json.loads((folder / "spanlab.json").read_text(encoding="utf-8"))
    return inference.Predictor(folder, {**base, **meta}, "cpu", precision)


def _questions():
    rows = qa_rows()
    return [r["question"] for r in rows], [r["context"] for r in rows]


def test_bf16_close_calls_are_answered_again_in_fp32(qa_model_dir):
    questions, contexts = _questions()
    exact = _predictor(qa_model_dir, "fp32").predict_batch(questions, contexts, top_k=2)

    always = _predictor(qa_model_dir, "bf16")
    always.recheck_margin = math.inf  # every call counts as close
    assert always.predict_batch(questions, contexts, top_k=2) == exact
    assert always.rechecked == len(questions)

    never = _predictor(qa_model_dir, "bf16")
    never.recheck_margin = -math.inf  # no call counts as close: the answers are bf16's own
    fast = never.predict_batch(questions, contexts, top_k=2)
    assert never.rechecked == 0
    assert [len(a) for a in fast] == [2] * len(questions)
    assert all(c[a["start"]:a["end"]] == a["answer"] for c, answers in zip(contexts, fast) for a in answers)
    # bf16 really ran: the probabilities differ from fp32's, by a rounding error
    scores = [(f["score"], e["score"]) for fa, ea in zip(fast, exact) for f, e in zip(fa, ea)]
    assert any(f != e for f, e in scores)
    assert all(abs(f - e) < 0.05 for f, e in scores)


def test_close_call_rule():
    from core.tasks.qa import TASK as qa_task
    predictor = inference.Predictor.__new__(inference.Predictor)
    predictor.recheck_margin, predictor.task = 0.5, qa_task

    def ranked(*scores):
        return [{"answer": str(i), "start": i, "end": i + 1, "score": s} for i, s in enumerate(scores)]

    assert predictor._close_call(ranked(0.6, 0.4), top_k=1)  # log(0.6 / 0.4) = 0.41 < 0.5
    assert not predictor._close_call(ranked(0.9, 0.05), top_k=1)
    assert not predictor._close_call(ranked(0.9), top_k=1)  # nothing else in the running
    assert not predictor._close_call(ranked(0.9, 0.0), top_k=1)
    assert predictor._close_call(ranked(0.0), top_k=1)  # "no answer found": fp32 decides
    assert predictor._close_call(ranked(0.5, 0.45, 0.01), top_k=2)  # the order within the top 2 is close
    assert predictor._close_call(ranked(0.5, 0.45, 0.01), top_k=1)
    assert not predictor._close_call(ranked(0.8, 0.1, 0.09), top_k=1)  # only the boundary after top_k matters


def test_auto_precision_is_bf16_only_where_native_and_not_for_version_2(qa_model_dir, monkeypatch):
    monkeypatch.setattr(inference, "native_bf16", lambda device: True)
    assert _predictor(qa_model_dir, "auto").precision == "bf16"
    assert _predictor(qa_model_dir, "auto", version_2=True).precision == "fp32"  # null-answer threshold: exact
    monkeypatch.setattr(inference, "native_bf16", lambda device: False)
    assert _predictor(qa_model_dir, "auto").precision == "fp32"
    assert _predictor(qa_model_dir, "bf16").precision == "bf16"  # asked for explicitly
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        _predictor(qa_model_dir, "fp16")


def test_auto_gives_up_bf16_when_most_calls_are_close(qa_model_dir, monkeypatch):
    monkeypatch.setattr(inference, "native_bf16", lambda device: True)
    questions, contexts = _questions()  # the random QA head: most calls are close
    auto, asked = _predictor(qa_model_dir, "auto"), _predictor(qa_model_dir, "bf16")
    for predictor in (auto, asked):
        for _ in range(2):
            predictor.predict_batch(questions, contexts)
        assert predictor.answered == 2 * len(questions) < predictor.give_up_after
        assert predictor.precision == "bf16"  # too early to judge
    for predictor in (auto, asked):
        while predictor.answered < predictor.give_up_after:
            predictor.predict(questions[0], contexts[0])
    assert auto.rechecked > auto.give_up_share * auto.answered and auto.precision == "fp32"
    assert asked.precision == "bf16"  # asked for explicitly: kept
    rechecked = auto.rechecked
    assert auto.predict_batch(questions, contexts) == _predictor(qa_model_dir, "fp32").predict_batch(questions,
                                                                                                    contexts)
    assert auto.rechecked == rechecked  # fp32 from the start now: nothing to re-check

    batch = _predictor(qa_model_dir, "auto")  # one long batch is answered in chunks: it can give up midway
    answers = batch.predict_batch(questions * 8, contexts * 8, batch_size=10)
    assert len(answers) == 64 and batch.precision == "fp32"
    assert batch.answered == batch.give_up_after and batch.rechecked <= batch.give_up_after


def test_load_predictor_caches_per_precision(qa_model_dir):
    fp32 = inference.load_predictor(qa_model_dir, device="cpu", precision="fp32")
    assert inference.load_predictor(qa_model_dir, device="cpu", precision="fp32") is fp32
    bf16 = inference.load_predictor(qa_model_dir, device="cpu", precision="bf16")
    assert bf16 is not fp32 and (fp32.precision, bf16.precision) == ("fp32", "bf16")


def test_bf16_copy_shares_all_but_the_linear_weights_and_computes_what_autocast_computes(qa_model_dir):
    import torch
    predictor = _predictor(qa_model_dir, "bf16")
    model, fast = predictor.model, predictor.fast_model
    assert fast.get_input_embeddings().weight is model.get_input_embeddings().weight  # not copied
    linear = [m for m in fast.modules() if isinstance(m, torch.nn.Linear)]
    assert linear and all(m.weight.dtype == torch.bfloat16 for m in linear)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the fp32 model is untouched
    batch = predictor.tokenizer(["who founded acme ?"], [qa_rows()[0]["context"]], return_tensors="pt")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(model(**batch).start_logits, fast(**batch).start_logits)
