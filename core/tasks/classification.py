"""Text classification: validation split, features and metrics (scikit-learn)."""
from __future__ import annotations

import random
from collections import Counter


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
    """accuracy, macro_f1, per-class report and confusion matrix (rows = true, columns = predicted)."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score
    ids = list(range(len(label_names)))
    report = classification_report(y_true, y_pred, labels=ids, target_names=label_names, output_dict=True,
                                   zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {name: {k: float(v) for k, v in report[name].items()} for name in label_names},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": list(label_names),
    }


def label_counts(examples: list[dict]) -> Counter:
    return Counter(ex["label"] for ex in examples if ex.get("label"))
