"""Data and bookkeeping shared by the few-shot benchmark's sides: loading SST-2 / AG News from ../shared/data,
sampling k examples per class with a seed, writing subsets as CSV files every side reads, and describing the
machine and library versions for the report.

No SpanLab, torch or transformers import here: the reference side runs this module in its own venv too.
"""
from __future__ import annotations

import csv
import os
import platform
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SPANLAB_BENCH_DATA") or ROOT.parent / "shared" / "data")
AG_NEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]  # ag_news/classes.txt, ids 1-4


class DataMissing(Exception):
    """A benchmark data file is absent; the message names it."""


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataMissing(f"{path} is missing (the benchmark data lives in ../shared/data, see its PROVENANCE.md)")
    return path


def _read_label_first_tsv(path: Path) -> list[dict]:
    """SST-2 TSV: a header line, then label<TAB>sentence with 0 = negative, 1 = positive."""
    names = {"0": "negative", "1": "positive"}
    rows = []
    with open(_need(path), encoding="utf-8") as f:
        next(f)
        for line in f:
            label, _, text = line.rstrip("\n").partition("\t")
            if text:
                rows.append({"text": text, "label": names[label]})
    return rows


def load_sst2() -> tuple[list[dict], list[dict]]:
    """(training pool: SST-2 train, 67,349 rows; evaluation: SST-2 dev, 872 rows)."""
    folder = SHARED_DATA / "sst2"
    return _read_label_first_tsv(folder / "train.tsv"), _read_label_first_tsv(folder / "dev.tsv")


def load_ag_news() -> tuple[list[dict], list[dict]]:
    """(training pool: ag_news_alps/dev.tsv, 10,001 training-set descriptions; evaluation: ag_news/test.csv,
    7,600 rows). Both sides use the description only: the pool has no titles."""
    pool = []
    with open(_need(SHARED_DATA / "ag_news_alps" / "dev.tsv"), encoding="utf-8") as f:
        for line in f:
            text, _, label = line.rstrip("\n").rpartition("\t")
            if text and label in AG_NEWS_CLASSES:
                pool.append({"text": text, "label": label})
    test = []
    with open(_need(SHARED_DATA / "ag_news" / "test.csv"), encoding="utf-8", newline="") as f:
        for class_id, _title, description in csv.reader(f):
            test.append({"text": description, "label": AG_NEWS_CLASSES[int(class_id) - 1]})
    return pool, test


DATASETS = {"sst2": load_sst2, "ag_news": load_ag_news}


def sample_per_class(pool: list[dict], k: int, seed: int, exclude: set[str] | None = None) -> list[dict]:
    """k distinct-text examples of every label, drawn with ``seed``; shuffled. Same call -> same subset."""
    rng = random.Random(seed)
    by_label: dict[str, list[dict]] = {}
    seen = set(exclude or ())
    for row in pool:
        if row["text"] not in seen:
            seen.add(row["text"])
            by_label.setdefault(row["label"], []).append(row)
    subset = []
    for label in sorted(by_label):
        if len(by_label[label]) < k:
            raise ValueError(f"label {label!r} has only {len(by_label[label])} examples in the pool, need {k}")
        subset.extend(rng.sample(by_label[label], k))
    rng.shuffle(subset)
    return subset


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(f)]


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["processor"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def accuracy(truth: list[str], predicted: list[str]) -> float:
    return sum(t == p for t, p in zip(truth, predicted)) / max(1, len(truth))
