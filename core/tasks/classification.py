"""Text classification: one label per text.

Rows ``{text, label, split}`` (label None = not labeled yet); a stratified validation split; a sequence
classification head; predictions are every label with its probability, most likely first; metrics accuracy and
macro-F1 with a per-class report and confusion matrix (scikit-learn).
"""
from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pandas as pd

from core.tasks.base import (SPLIT_FIELD, TEXT_SYNONYMS, ExportFormat, Rows, Task, TaskDataError, clean_split,
                             optional_str, quoted, required_text, warn_duplicates)


def split_train_validation(examples: list[dict], fraction: float = 0.2, seed: int = 42) -> tuple[list[dict], list[dict]]:
    """Stratified split of labeled examples. Every class keeps at least one training example; classes with
    two or more examples give at least one to validation. Deterministic for a seed."""
    by_label: dict[str, list[dict]] = {}
    for ex in examples:
        by_label.setdefault(ex["label"], []).append(ex)
    rng = random.Random(seed)
    train, validation = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        n_val = 0 if len(group) < 2 else min(len(group) - 1, max(1, round(len(group) * fraction)))
        validation.extend(group[:n_val])
        train.extend(group[n_val:])
    rng.shuffle(train)
    return train, validation


def encode(texts: list[str], labels: list[str] | None, label_names: list[str], tokenizer, max_length: int) -> list[dict]:
    """Tokenized features (no padding: the collator pads each batch to its own longest row)."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    label_ids = {name: i for i, name in enumerate(label_names)}
    features = []
    for i in range(len(texts)):
        row = {key: enc[key][i] for key in enc.keys()}
        if labels is not None:
            row["labels"] = label_ids[labels[i]]
        features.append(row)
    return features


def metrics(y_true: list[int], y_pred: list[int], label_names: list[str]) -> dict:
    """accuracy, macro_f1, per-class report and confusion matrix (rows = true, columns = predicted), counted as
    scikit-learn's accuracy_score / f1_score(average="macro") / classification_report / confusion_matrix count them
    with zero_division=0 (a test holds them equal). Counted here with numpy: importing sklearn.metrics took 0.3-0.7 s
    of a short CLI run's first validation."""
    import numpy as np
    k = len(label_names)
    true, pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    matrix = np.zeros((k, k), dtype=np.int64)
    known = (true >= 0) & (true < k) & (pred >= 0) & (pred < k)
    np.add.at(matrix, (true[known], pred[known]), 1)
    hits = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(axis=1).astype(float), matrix.sum(axis=0).astype(float)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    both = 2 * hits + (predicted - hits) + (support - hits)  # 2TP + FP + FN
    f1 = np.divide(2 * hits, both, out=np.zeros(k), where=both > 0)
    return {
        "accuracy": float((true == pred).mean()) if len(true) else 0.0,
        "macro_f1": float(f1.mean()) if k else 0.0,
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1-score": float(f1[i]),
                             "support": float(support[i])} for i, name in enumerate(label_names)},
        "confusion_matrix": matrix.tolist(),
        "labels": list(label_names),
    }


def label_counts(examples: list[dict]) -> Counter:
    return Counter(ex["label"] for ex in examples if ex.get("label"))


class Classification(Task):
    name = "classification"
    title = "Text classification"
    fields = {
        "text": ["text", *TEXT_SYNONYMS],
        "label": ["label", "category", "class", "intent", "target", "sentiment"],
        "split": SPLIT_FIELD,
    }
    required = ("text",)
    stored = ("text", "label")
    input_fields = ("text",)
    done_field = "label"
    edit_field = "label"
    has_labels = True
    checks_in_chunks = True
    default_lr = 5e-5
    default_max_length = 128
    default_epochs = 3.0
    metric_for_best = "macro_f1"
    freezes_word_embeddings_below = math.inf  # measured: no accuracy lost, faster steps (BENCHMARKS.md, section 3)
    few_shot = True
    auto_model = "AutoModelForSequenceClassification"
    label_widget = "choice"
    demo_widget = "probabilities"
    prediction_key = "labels"
    eval_metrics = [("eval/accuracy", "accuracy"), ("eval/macro_f1", "macro-F1")]
    headline = ("accuracy", "macro_f1")

    # --- data -----------------------------------------------------------------------------------------
    def validate(self, rows: Rows) -> None:
        result = rows.result
        texts = pd.Series(rows.column("text", strip=True))
        label_column = rows.mapping.get("label")
        labels = pd.Series(rows.column("label", strip=True) if label_column else [""] * len(texts), dtype=object)
        splits, bad = rows.splits()
        empty = (texts == "").to_numpy()
        for pos in np.flatnonzero(empty):
            rows.problem(pos, "text", "the text is empty — write the text or delete the row")
        bad = bad | empty
        if label_column is None:
            rows.warn(None, "label", f"no label column found (accepted names: {quoted(self.fields['label'])}) — "
                                     "all rows are imported unlabeled, ready to annotate")
        keys = pd.DataFrame({"text": texts.to_numpy(), "label": labels.to_numpy(),
                             "split": pd.Series(splits, dtype=object).fillna("").to_numpy()})
        warn_duplicates(rows, keys, bad, "text")
        if label_column is not None:
            rows.checks.conflicting_labels(rows, keys["text"].tolist(), keys["label"].tolist(), ~bad)
        result.rows = [
            rows.with_meta(pos, {"text": text, "label": label or None, "split": split} if split
                           else {"text": text, "label": label or None})
            for pos, (text, label, split, skip) in enumerate(zip(texts.tolist(), labels.tolist(), splits,
                                                                 bad.tolist())) if not skip
        ]
        result.labels = sorted({row["label"] for row in result.rows if row["label"]})

    def clean_row(self, row: dict, number: int) -> dict:
        return {"split": clean_split(row.get("split"), number), "text": required_text(row, "text", number),
                "label": optional_str(row.get("label"))}

    def row_labels(self, row: dict) -> set[str]:
        return {row["label"]} if row.get("label") is not None else set()

    def is_labeled(self, example: dict) -> bool:
        return bool(example.get("label"))

    def edit_value(self, example):
        return example["label"] if isinstance(example, dict) else example.label

    def check_edit(self, example, value, labels: list[str]):
        label = optional_str(value)
        if label is not None and label not in labels:
            raise TaskDataError(f"unknown label {label!r} (labels: {quoted(labels) or 'none yet'}): "
                                "add the label first")
        return label

    def relabel(self, value, old: str, new: str):
        return new if value == old else value

    def label_uses(self, value) -> set[str]:
        return {value} if value is not None else set()

    @property
    def exports(self) -> dict[str, ExportFormat]:
        from core import exporting
        columns = ["text", "label", "split"]
        return {
            "csv": ExportFormat("csv", "CSV", ".csv", "text/csv",
                                lambda rows, title: exporting.csv_bytes(rows, columns), "Opens in Excel (UTF-8 with BOM)"),
            "jsonl": ExportFormat("jsonl", "JSON Lines", ".jsonl", "application/jsonl",
                                  lambda rows, title: exporting.jsonl_bytes(rows, columns)),
        }

    def hf_dataset(self, rows):
        from datasets import Dataset, Features, Value
        features = Features({"text": Value("string"), "label": Value("string"), "split": Value("string")})
        return Dataset.from_dict({name: [row.get(name) for row in rows] for name in features}, features=features)

    # --- training -------------------------------------------------------------------------------------
    def split(self, pool, fraction, seed):
        return split_train_validation(pool, fraction, seed)

    def training_labels(self, dataset_labels, train, validation):
        present = sorted({e["label"] for e in train})
        if len(present) < 2:
            raise TaskDataError(f"Training needs examples of at least 2 labels; the dataset has labeled examples of "
                                f"{present or 'none'}. Label some rows with another label first.")
        labels = [lab for lab in dataset_labels if lab in present or any(e["label"] == lab for e in validation)]
        unknown = sorted({e["label"] for e in validation} - set(labels))
        if unknown:
            raise TaskDataError(f"The evaluation data has labels the training data lacks: {quoted(unknown)}. "
                                "Add training examples for them or remove them from the evaluation data.")
        return labels

    def encode(self, examples, tokenizer, settings, for_eval):
        labels = None if for_eval else [e["label"] for e in examples]
        return encode([e["text"] for e in examples], labels, settings["labels"], tokenizer, settings["max_length"])

    def head_config(self, labels):
        labels = list(labels or [])
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {label: i for i, label in enumerate(labels)}, "ignore_mismatched_sizes": True}

    def outputs(self, model_output, lengths):
        return list(model_output.logits.float().cpu().numpy())

    def decode(self, examples, features, outputs, settings, top_k, runners_up=0):
        labels = settings["labels"]
        results = []
        for logits in outputs:
            probs = np.exp(logits - logits.max())
            probs = probs / probs.sum()
            pairs = sorted(zip(labels, probs.tolist()), key=lambda p: -p[1])
            results.append([{"label": label, "score": float(score)} for label, score in pairs][:top_k or None])
        return results

    def score(self, examples, predictions, labels):
        ids = {label: i for i, label in enumerate(labels)}
        return metrics([ids[e["label"]] for e in examples], [ids[p[0]["label"]] for p in predictions], labels)

    def check_eval_labels(self, examples, model_labels):
        unknown = sorted({e["label"] for e in examples} - set(model_labels))
        if unknown:
            raise TaskDataError(f"the dataset has labels the model was not trained on: {quoted(unknown)}.")

    def certainty(self, prediction) -> float:
        return float(prediction[0]["score"]) if prediction else 0.0

    def suggestion(self, prediction) -> dict:
        return {"label": prediction[0]["label"], "value": prediction[0]["label"], "score": prediction[0]["score"],
                "probabilities": prediction}

    def prediction_record(self, example, prediction) -> dict:
        return {"text": example["text"], "label": prediction[0]["label"], "score": prediction[0]["score"]}


TASK = Classification()
