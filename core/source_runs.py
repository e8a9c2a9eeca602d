"""Starting a run from a finished run's model: the model reference ``run:N``.

``TrainConfig.model = "run:3"`` trains on from run 3's saved model folder (the CLI's ``--model run:3``, the Train
page's "Start from a run"), e.g. a general QA model trained on a SQuAD-format file, then an analyst's own questions.

Rules (README, "Start from a finished run"):

* Only a run whose model is saved (completed, or cancelled after keeping a checkpoint) and still exists can be a
  source; a deleted run, a failed or unfinished one, or a run whose folder is gone is refused with a sentence saying
  which (a UserError: the CLI exits with status 2, the Train page shows it).
* Only a run of the same task: its head (QA's start/end layer, a classifier, an entity tagger) is what makes it a
  model of that task. A run of another task is refused rather than silently dropping the head it was trained for;
  its encoder alone can still be reused by giving its model folder as a local model folder.
* The head is kept when it predicts the same things: always for QA (start and end of the answer), for classification
  and entity spans when the label set is the same, in the same order. Otherwise the encoder is kept and the head
  starts anew (a note on the run says so).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from core import storage, tasks
from core.errors import UserError

PREFIX = "run:"
_REFERENCE = re.compile(r"run:\s*(\S*)", re.IGNORECASE)


class SourceRunError(UserError):
    """The run asked to start from cannot be used; the message says why and what to do instead."""


@dataclass
class SourceRun:
    id: int
    folder: Path
    task: str
    labels: list[str]
    base_model: str        # what the source run itself started from (a model id, a folder, or run:M)
    dataset: str | None    # what it was trained on
    recipe: str            # "fine-tuning" or the few-shot recipe (its classifier reads a mean-pooling layer)

    @property
    def reference(self) -> str:
        return f"{PREFIX}{self.id}"

    def keeps_head(self, labels: list[str]) -> bool:
        """Whether a run learning ``labels`` keeps this model's head (same task checked already)."""
        return not tasks.get(self.task).has_labels or list(labels) == list(self.labels)


def run_id(ref: str | None) -> int | None:
    """N for the model reference "run:N", None for any other reference (a model id, a folder, builtin-minilm).
    A "run:" reference without a whole number is a SourceRunError."""
    match = _REFERENCE.fullmatch((ref or "").strip())
    if match is None:
        return None
    if not match.group(1).isdigit():
        raise SourceRunError(f"'{ref.strip()}' names no run: write run: and the run's number, e.g. run:3 (the runs "
                             "list shows the numbers)")
    return int(match.group(1))


def is_reference(ref: str | None) -> bool:
    return _REFERENCE.fullmatch((ref or "").strip()) is not None


def load(ref: str) -> SourceRun:
    """The finished run ``ref`` ("run:N") names, with its model folder; SourceRunError when it has no usable model."""
    number = run_id(ref)
    if number is None:
        raise SourceRunError(f"'{ref}' is not a run reference (run:N)")
    try:
        run = storage.get_run(number)
    except storage.NotFoundError:
        raise SourceRunError(f"There is no run #{number} to start from: it was deleted (or never existed). Pick a "
                             "completed run from the runs list.") from None
    if run["status"] in ("queued", "running"):
        raise SourceRunError(f"Run #{number} is still {run['status']}: a run can start from it once it has "
                             "completed and saved its model.")
    folder = Path(run["artifact_dir"]) if run.get("artifact_dir") else None
    if folder is None or not (folder / "config.json").exists():
        why = "its model folder is gone" if folder is not None else f"it {run['status']} without saving one"
        raise SourceRunError(f"Run #{number} has no saved model to start from ({why}). Pick a completed run.")
    from core.inference import PredictorError, run_folder
    try:  # the same checks as predictions: the folder is still the one this run wrote
        folder = run_folder(number)
    except PredictorError as error:
        raise SourceRunError(str(error)) from None
    meta = _meta(folder)
    return SourceRun(id=number, folder=folder, task=meta.get("task") or run["task"],
                     labels=list(meta.get("labels") or (run.get("params") or {}).get("labels") or []),
                     base_model=str(meta.get("base_model") or run["model"]), dataset=run.get("dataset_name"),
                     recipe=str(meta.get("recipe") or "fine-tuning"))


def for_task(ref: str, task: str, dataset: str | None = None) -> SourceRun:
    """``load(ref)``, refused (SourceRunError) when the run is of another task than ``task``."""
    source = load(ref)
    if source.task != task:
        theirs, ours = tasks.get(source.task).title.lower(), tasks.get(task).title.lower()
        target = f"'{dataset}' is a dataset for {ours}" if dataset else f"this run is {ours}"
        raise SourceRunError(f"Run #{source.id} trained a model for {theirs}, and {target}: a run can only start "
                             f"from a run of the same task (the head it learned does another job). Start from run "
                             f"#{source.id}'s own starting model ({source.base_model}) or from a run of {ours} "
                             "instead.")
    return source


def root_model(ref: str) -> str:
    """The model a chain of runs started from: builtin-minilm for run:5 started from run:2 started from it; the
    reference itself for anything else, or when a run in the chain is gone."""
    seen = set()
    while is_reference(ref):
        try:
            number = run_id(ref)
            if number in seen:
                break
            seen.add(number)
            ref = storage.get_run(number)["model"]
        except (SourceRunError, storage.NotFoundError):
            break
    return ref


def choices(task: str) -> list[dict]:
    """Runs a new run of ``task`` can start from: completed, same task, model folder present; newest first."""
    found = []
    for run in storage.list_runs():
        folder = run.get("artifact_dir")
        if run["task"] == task and run["status"] == "completed" and folder and (Path(folder) / "config.json").exists():
            found.append(run)
    return found


def _meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / "spanlab.json").read_text(encoding="utf-8"))
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}
