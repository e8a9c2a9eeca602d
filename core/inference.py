"""Predictions from a trained model folder: label probabilities, and QA answers with character offsets.

``load_predictor`` caches loaded models (keyed by folder and its modification time), so a demo answers
quickly after the first question. The QA predictor replaces transformers' removed ``question-answering``
pipeline: features with a document stride, then the pipeline's way of choosing answers (core.tasks.qa).
"""
from __future__ import annotations

import json
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


def load_predictor(run: int | str | Path, device: str = "auto"):
    folder = run_folder(run).resolve()
    stamp = (folder / "config.json").stat().st_mtime_ns
    return _load(str(folder), stamp, device)


@lru_cache(maxsize=4)
def _load(folder: str, stamp: int, device: str):
    meta_path = Path(folder) / "spanlab.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    task = meta.get("task") or ("qa" if any("QuestionAnswering" in a for a in config.get("architectures", []))
                                else "classification")
    cls = QAPredictor if task == "qa" else ClassificationPredictor
    return cls(Path(folder), meta, device)


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
    task = "qa"

    def predict(self, question: str, context: str, top_k: int = 1, max_answer_length: int | None = None) -> list[dict]:
        return self.predict_batch([question], [context], top_k, max_answer_length)[0]

    def predict_batch(self, questions: list[str], contexts: list[str], top_k: int = 1,
                      max_answer_length: int | None = None, batch_size: int = 32) -> list[list[dict]]:
        """Top-k answers per question: {answer, start, end, score} with context[start:end] == answer, chosen as the
        old question-answering pipeline chose them (see core.tasks.qa); a version-2 model may answer ""
        (start = end = -1) for "no answer"."""
        import numpy as np
        import torch
        from core.tasks import qa as qa_task
        if not questions:
            return []
        stride = int(self.meta.get("doc_stride") or 128)
        feats = qa_task.prepare_eval_features(questions, contexts, self.tokenizer, self.max_length, stride)
        n = len(feats["input_ids"])
        width = max(len(ids) for ids in feats["input_ids"])
        start = np.full((n, width), -1e4, dtype=np.float32)
        end = np.full((n, width), -1e4, dtype=np.float32)
        inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats]
        pad_id = self.tokenizer.pad_token_id or 0
        with self.lock, torch.inference_mode():
            for i in range(0, n, batch_size):
                rows = range(i, min(n, i + batch_size))
                longest = max(len(feats["input_ids"][r]) for r in rows)
                batch = {k: torch.tensor([list(feats[k][r]) + [pad_id if k == "input_ids" else 0] *
                                          (longest - len(feats[k][r])) for r in rows], device=self.device)
                         for k in inputs}
                out = self.model(**batch)
                s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
                for j, r in enumerate(rows):
                    length = len(feats["input_ids"][r])
                    start[r, :length], end[r, :length] = s[j, :length], e[j, :length]
        answers = qa_task.postprocess_predictions(
            contexts, {k: feats[k] for k in ("example_index", "offset_mapping", "word_offsets")},
            start, end, max_answer_length=max_answer_length or int(self.meta.get("max_answer_length") or 30),
            version_2=bool(self.meta.get("version_2")),
            null_score_diff_threshold=float(self.meta.get("null_score_threshold") or 0.0), top_k=top_k)
        return [[{k: a[k] for k in ("answer", "start", "end", "score")} for a in per] for per in answers]


def evaluate(run: int, dataset: str) -> dict:
    """Metrics of a trained run on a stored dataset (classification: accuracy, macro_f1, ...; qa: exact_match, f1)."""
    from core.tasks import classification as cls_task
    from core.tasks import qa as qa_task
    predictor = load_predictor(run)
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
