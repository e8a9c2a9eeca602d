"""Classification metrics: counted with numpy, they must equal scikit-learn's (accuracy_score, f1_score macro,
classification_report, confusion_matrix; zero_division=0), the field's reference, on random and corner cases."""
from __future__ import annotations

import random

import pytest

from core.tasks.classification import metrics

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # scikit-learn on labels absent from y_true/y_pred


def sklearn_metrics(y_true, y_pred, names):
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score
    ids = list(range(len(names)))
    report = classification_report(y_true, y_pred, labels=ids, target_names=names, output_dict=True,
                                   zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
            "per_class": {name: {k: float(v) for k, v in report[name].items()} for name in names},
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(), "labels": names}


CASES = [
    ([0, 1, 1, 0], [0, 1, 0, 0], ["neg", "pos"]),
    ([0, 0, 0], [1, 1, 1], ["neg", "pos"]),           # a class never predicted, another never true
    ([2, 2, 1], [2, 2, 1], ["a", "b", "c"]),          # class "a" absent everywhere
    ([0], [0], ["only"]),
]


@pytest.mark.parametrize("y_true,y_pred,names", CASES)
def test_corner_cases_match_scikit_learn(y_true, y_pred, names):
    same(metrics(y_true, y_pred, names), sklearn_metrics(y_true, y_pred, names))


def test_random_predictions_match_scikit_learn():
    rng = random.Random(7)
    for _ in range(200):
        k = rng.randint(1, 6)
        n = rng.randint(1, 40)
        names = [f"label{i}" for i in range(k)]
        y_true = [rng.randrange(k) for _ in range(n)]
        y_pred = [rng.randrange(k) if rng.random() < 0.6 else y for y in y_true]
        same(metrics(y_true, y_pred, names), sklearn_metrics(y_true, y_pred, names))


def same(ours: dict, theirs: dict) -> None:
    assert (ours["confusion_matrix"], ours["labels"]) == (theirs["confusion_matrix"], theirs["labels"])
    assert (ours["accuracy"], ours["macro_f1"]) == pytest.approx((theirs["accuracy"], theirs["macro_f1"]))
    assert ours["per_class"].keys() == theirs["per_class"].keys()
    for name, row in theirs["per_class"].items():
        assert ours["per_class"][name] == pytest.approx(row), name
