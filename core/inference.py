"""Predictions from a trained model folder: label probabilities, and QA answers with character offsets.

``load_predictor`` caches loaded models (keyed by folder and its modification time), so a demo answers
quickly after the first question. The QA predictor replaces transformers' removed ``question-answering``
pipeline: features with a document stride, then the pipeline's way of choosing answers (core.tasks.qa).
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import threading
from functools import lru_cache
from pathlib import Path

from core import models, storage


class PredictorError(Exception):
    """The run or folder cannot be used for predictions; the message says why."""


def run_folder(run: int | str | Path) -> Path:
    """Model folder of a run id, or a folder path given directly."""
    if isinstance(run, Path) or (isinstance(run, str) and not run.isdigit()):
        folder = Path(run).expanduser()
        if not (folder / "config.json").exists():
            raise PredictorError(f"'{run}' is not a saved model folder (no config.json).")
        return folder
    info = storage.get_run(int(run))
    if not info.get("artifact_dir") or not Path(info["artifact_dir"]).exists():
        raise PredictorError(f"Run {info['id']} has no saved model (status: {info['status']}). "
                             "Pick a completed run.")
    return Path(info["artifact_dir"])


def load_predictor(run: int | str | Path, device: str = "auto", precision: str = "auto"):
    """The predictor of a run id or model folder (cached). ``precision`` is for QA models (see QAPredictor):
    "auto", "fp32" or "bf16"."""
    folder = run_folder(run).resolve()
    stamp = (folder / "config.json").stat().st_mtime_ns
    return _load(str(folder), stamp, device, precision)


@lru_cache(maxsize=4)
def _load(folder: str, stamp: int, device: str, precision: str = "auto"):
    meta_path = Path(folder) / "spanlab.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    task = meta.get("task") or ("qa" if any("QuestionAnswering" in a for a in config.get("architectures", []))
                                else "classification")
    if task == "qa":
        return QAPredictor(Path(folder), meta, device, precision)
    return ClassificationPredictor(Path(folder), meta, device)


def native_bf16(device: str) -> bool:
    """Whether "auto" answers QA questions in bf16 here: on a CPU with AVX512-BF16 or AMX, where it was measured
    faster (BENCHMARKS.md, section 4; elsewhere the CPU emulates bf16, slower than fp32). On a GPU one question's
    latency is kernel launches more than arithmetic, unmeasured so far: fp32 unless bf16 is asked for."""
    import torch
    if device == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


class _Predictor:
    def __init__(self, folder: Path, meta: dict, device: str = "auto"):
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification
        self.folder, self.meta = folder, meta
        models.quiet()
        self.device, _ = models.choose_device(device, "fp32")
        self.tokenizer = models.load_tokenizer(folder)
        auto = AutoModelForQuestionAnswering if self.task == "qa" else AutoModelForSequenceClassification
        self.model = auto.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False).to(self.device).eval()
        self.max_length = int(meta.get("max_length") or (384 if self.task == "qa" else 128))
        self.lock = threading.Lock()  # one forward pass at a time per cached model (Streamlit sessions share it)


class ClassificationPredictor(_Predictor):
    task = "classification"

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def predict(self, texts: list[str], batch_size: int = 32) -> list[list[dict]]:
        """For each text, every label with its probability, most likely first."""
        import torch
        results = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        probs_by_index = {}
        with self.lock, torch.inference_mode():
            for i in range(0, len(order), batch_size):
                ids = order[i:i + batch_size]
                enc = self.tokenizer([texts[j] for j in ids], truncation=True, max_length=self.max_length,
                                     padding=True, return_tensors="pt").to(self.device)
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1).cpu().tolist()
                probs_by_index.update(zip(ids, probs))
        labels = self.labels
        for i in range(len(texts)):
            pairs = sorted(zip(labels, probs_by_index[i]), key=lambda p: -p[1])
            results.append([{"label": label, "score": float(score)} for label, score in pairs])
        return results


class QAPredictor(_Predictor):
    """Answers questions about a context. With ``precision="bf16"`` (what "auto" picks where bf16 is native and the
    model is not a version-2 model) the forward pass runs under bf16 autocast, and every question whose call was
    close — the log-probabilities of an answer it returns and the next answer differ by less than
    ``recheck_margin`` — is answered again in fp32, so a bf16 rounding error cannot flip a clear answer and a close
    one is the fp32 answer. A weakly trained model makes many close calls; when "auto" sees more than
    ``give_up_share`` of its first questions re-answered, bf16 no longer saves time and it answers in fp32 only."""
    task = "qa"
    recheck_margin = 0.15  # log-probability: 1.5x the largest bf16 error seen (bench/qa_bf16_calibrate.py)
    give_up_share = 0.4  # bf16 costs ~0.63x fp32 here, so re-checking over ~37% of questions costs more than fp32
    give_up_after = 50   # questions answered before judging: a model with 25% close calls shows over 40% in its
                         # first 20 questions 1 time in 25, in its first 50 about 1 time in 160

    def __init__(self, folder: Path, meta: dict, device: str = "auto", precision: str = "auto"):
        super().__init__(folder, meta, device)
        precision = requested = (precision or "auto").lower()
        if precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"unknown precision '{precision}': use auto, fp32 or bf16")
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) and not meta.get("version_2") else "fp32"
        if precision == "bf16" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"bf16 answers run on the CPU or a CUDA GPU, not on '{self.device}'; use fp32")
        self.precision, self.adaptive = precision, requested == "auto"
        self.answered = 0  # questions answered in bf16 (re-checked or not)
        self.rechecked = 0  # questions answered again in fp32 (close calls), for benchmarks and the curious
        self.fast_model = _with_bf16_linear_layers(self.model) if precision == "bf16" else None

    def predict(self, question: str, context: str, top_k: int = 1, max_answer_length: int | None = None) -> list[dict]:
        return self.predict_batch([question], [context], top_k, max_answer_length)[0]

    def predict_batch(self, questions: list[str], contexts: list[str], top_k: int = 1,
                      max_answer_length: int | None = None, batch_size: int = 32) -> list[list[dict]]:
        """Top-k answers per question: {answer, start, end, score} with context[start:end] == answer, chosen as the
        old question-answering pipeline chose them (see core.tasks.qa); a version-2 model may answer ""
        (start = end = -1) for "no answer"."""
        answers = []
        for i in range(0, len(questions), batch_size):  # in chunks, so "auto" can change its mind between them
            answers += self._predict_chunk(questions[i:i + batch_size], contexts[i:i + batch_size], top_k,
                                           max_answer_length, batch_size)
        return answers

    def _predict_chunk(self, questions: list[str], contexts: list[str], top_k: int, max_answer_length: int | None,
                       batch_size: int) -> list[list[dict]]:
        if self.precision == "fp32":
            return self._answers(questions, contexts, top_k, max_answer_length, batch_size, bf16=False)
        answers = self._answers(questions, contexts, top_k, max_answer_length, batch_size, bf16=True, runners_up=1)
        close = [i for i, ranked in enumerate(answers) if self._close_call(ranked, top_k)]
        if close:
            exact = self._answers([questions[i] for i in close], [contexts[i] for i in close], top_k,
                                  max_answer_length, batch_size, bf16=False)
            for i, ranked in zip(close, exact):
                answers[i] = ranked
        self.answered += len(questions)
        self.rechecked += len(close)
        if (self.adaptive and self.answered >= self.give_up_after
                and self.rechecked > self.give_up_share * self.answered):
            self.precision = "fp32"  # so many close calls that fp32 alone is faster for this model
        return [ranked[:top_k] for ranked in answers]

    def _close_call(self, ranked: list[dict], top_k: int) -> bool:
        scores = [a["score"] for a in ranked[:top_k + 1]]
        if any(score <= 0.0 for score in scores[:top_k]):
            return True  # "no answer found" (score 0): let fp32 decide
        logs = [math.log(score) if score > 0.0 else -math.inf for score in scores]
        return any(a - b < self.recheck_margin for a, b in itertools.pairwise(logs))

    def _answers(self, questions: list[str], contexts: list[str], top_k: int, max_answer_length: int | None,
                 batch_size: int, bf16: bool, runners_up: int = 0) -> list[list[dict]]:
        import numpy as np
        import torch
        from core.tasks import qa as qa_task
        stride = int(self.meta.get("doc_stride") or 128)
        feats = qa_task.prepare_eval_features(questions, contexts, self.tokenizer, self.max_length, stride)
        n = len(feats["input_ids"])
        width = max(len(ids) for ids in feats["input_ids"])
        start = np.full((n, width), -1e4, dtype=np.float32)
        end = np.full((n, width), -1e4, dtype=np.float32)
        inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats]
        pad_id = self.tokenizer.pad_token_id or 0
        model = self.fast_model if bf16 else self.model
        autocast = torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16, enabled=bf16)
        with self.lock, torch.inference_mode(), autocast:
            for i in range(0, n, batch_size):
                rows = range(i, min(n, i + batch_size))
                longest = max(len(feats["input_ids"][r]) for r in rows)
                batch = {k: torch.tensor([list(feats[k][r]) + [pad_id if k == "input_ids" else 0] *
                                          (longest - len(feats[k][r])) for r in rows], device=self.device)
                         for k in inputs}
                out = model(**batch)
                s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
                for j, r in enumerate(rows):
                    length = len(feats["input_ids"][r])
                    start[r, :length], end[r, :length] = s[j, :length], e[j, :length]
        answers = qa_task.postprocess_predictions(
            contexts, {k: feats[k] for k in ("example_index", "offset_mapping", "word_offsets")},
            start, end, max_answer_length=max_answer_length or int(self.meta.get("max_answer_length") or 30),
            version_2=bool(self.meta.get("version_2")),
            null_score_diff_threshold=float(self.meta.get("null_score_threshold") or 0.0), top_k=top_k,
            runners_up=runners_up)
        return [[{k: a[k] for k in ("answer", "start", "end", "score")} for a in per] for per in answers]


def _with_bf16_linear_layers(model):
    """A copy of ``model`` whose linear layers hold bf16 weights, sharing every other parameter (embeddings, layer
    norms) with it. Under bf16 autocast it computes exactly what ``model`` computes, without casting the weights
    again at every call (measured: 22 vs 25 ms per question for MiniLM on a 2-core CPU; fp32 35 ms)."""
    import torch
    linear = {id(p) for m in model.modules() if isinstance(m, torch.nn.Linear) for p in m.parameters(recurse=False)}
    shared = {id(p): p for p in model.parameters() if id(p) not in linear}
    fast = copy.deepcopy(model, memo=dict(shared))
    for module in fast.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)
    return fast.eval()


def evaluate(run: int, dataset: str) -> dict:
    """Metrics of a trained run on a stored dataset (classification: accuracy, macro_f1, ...; qa: exact_match, f1)."""
    from core.tasks import classification as cls_task
    from core.tasks import qa as qa_task
    predictor = load_predictor(run, precision="fp32")  # metrics: the model's own answers, the same on any machine
    info = storage.get_dataset(dataset)
    if info["task"] != predictor.task:
        raise PredictorError(f"Run {run} is a {predictor.task} model but '{dataset}' is a {info['task']} dataset.")
    examples = storage.load_examples(dataset)
    if predictor.task == "classification":
        examples = [e for e in examples if e.get("label")]
        unknown = sorted({e["label"] for e in examples} - set(predictor.labels))
        if unknown:
            raise PredictorError(f"'{dataset}' has labels the model was not trained on: {unknown}.")
        preds = predictor.predict([e["text"] for e in examples])
        ids = {label: i for i, label in enumerate(predictor.labels)}
        result = cls_task.metrics([ids[e["label"]] for e in examples], [ids[p[0]["label"]] for p in preds],
                                  predictor.labels)
    else:
        examples = [e for e in examples if e.get("answer_text") is not None]
        answers = predictor.predict_batch([e["question"] for e in examples], [e["context"] for e in examples])
        result = qa_task.squad_metrics([a[0]["answer"] if a else "" for a in answers],
                                       [[e["answer_text"]] for e in examples])
    result["examples"] = len(examples)
    return result


def predict_dataset(run: int, dataset: str) -> list[dict]:
    """Suggestions for every row of a classification dataset: {id, label, score} (for annotation)."""
    predictor = load_predictor(run)
    if predictor.task != "classification":
        raise PredictorError("Suggestions are for classification runs.")
    examples = storage.load_examples(dataset)
    preds = predictor.predict([e["text"] for e in examples])
    return [{"id": e["id"], "label": p[0]["label"], "score": p[0]["score"], "probabilities": p}
            for e, p in zip(examples, preds)]
