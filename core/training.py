"""Fine-tuning: one readable path from a stored dataset to a saved Hugging Face model folder.

``execute_run`` is what the job runner and the CLI call: it marks the run running, trains, records every
logged loss/metric point in the database as it happens, keeps the best checkpoint (early stopping on the
validation metric), saves it atomically as a standard HF folder and records the outcome — completed,
cancelled, or failed with its message. Small classification datasets get the few-shot recipe of
``core/fewshot.py`` (no held-out split, mean-pooling head, contrastive stage, linear probe, then this loop).
Distributed data parallel comes from ``torchrun``/``accelerate launch`` (WORLD_SIZE/RANK/LOCAL_RANK in the
environment): rank 0 evaluates, logs and saves.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from core import config as spanlab_config
from core import cpu_share, fewshot, models, runs_store, source_runs, storage, tasks
from core.batching import MODEL_INPUTS, TARGETS, collate, length_grouped_batches  # noqa: F401 (re-exported)
from core.errors import UserError
from core.tasks.base import TaskDataError

log = logging.getLogger(__name__)


log = logging.getLogger(__name__)


class TrainingError(UserError):
    """A problem with the data or settings, explained for the user."""


AUTO_ON_OFF = ("auto", "on", "off")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def setting(default, help: str, *, kind=str, choices=None, minimum=None, maximum=None, above=None, flags=None,
            optional=False, cli=True):
    """A TrainConfig field: its default, help text, type and allowed values, declared once. ``optional``: None is
    allowed (meaning "automatic" or "no limit"); ``above``: values must be greater than it; ``flags``: the CLI
    flags (default --field-name); ``cli=False``: not a CLI flag (the dataset and model are given otherwise)."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices, "min": minimum,
                                            "max": maximum, "above": above, "flags": flags, "optional": optional,
                                            "cli": cli})


CV_FOLDS, CV_MAX_ROWS = 5, 200  # the automatic cross-validation estimate: folds, and up to how many labeled rows


@dataclass
class TrainConfig:
    """Every knob of a run, each declared once with its help and allowed values (checked when a config is built:
    a bad value raises TrainingError before any run exists). ``None`` means "choose automatically from the data"
    (see ``resolve_defaults``)."""
    dataset: str = setting(None, "the dataset to train on (name)", cli=False)
    model: str = setting(models.DEFAULT_MODEL, f"Hugging Face model id, a local model folder, "
                         f"{models.BUILTIN_ALIAS} (the built-in MiniLM, works offline), or {source_runs.PREFIX}N: "
                         "the saved model of finished run N (same task), trained further")
    eval_dataset: str | None = setting(None, "a dataset of the same task to score the model on while it trains "
                                       "(default: the dataset's validation split, or part of its labeled rows)",
                                       optional=True)
    epochs: float | None = setting(None, "passes over the training data; empty = automatic: the task's default "
                                   "(3 classification and entity spans, 2 QA), more for small datasets so training "
                                   "gets at least min_steps steps", kind=float, above=0, maximum=1000,
                                   optional=True)
    learning_rate: float | None = setting(None, "peak learning rate; empty = automatic: the task's default (5e-5 "
                                          "classification and entity spans, 3e-5 QA), doubled for small models "
                                          "(hidden size under 768, e.g. the built-in MiniLM)",
                                          kind=float, above=0, maximum=1.0, optional=True,
                                          flags=("--lr", "--learning-rate"))
    batch_size: int = setting(16, "examples per optimizer step (per GPU); lower it if memory runs out", kind=int,
                              minimum=1, maximum=4096)
    max_length: int | None = setting(None, "tokens per input; longer text is cut (QA and NER: read in overlapping "
                                     "windows); empty = automatic: 128 classification and NER, 384 QA",
                                     kind=int, minimum=8, maximum=100_000, optional=True)
    doc_stride: int = setting(128, "QA and NER: tokens of overlap between the windows of a long text", kind=int,
                              minimum=0, maximum=100_000)
    warmup_ratio: float = setting(0.1, "share of the steps over which the learning rate warms up", kind=float,
                                  minimum=0.0, maximum=1.0)
    weight_decay: float = setting(0.01, "AdamW weight decay", kind=float, minimum=0.0, maximum=1.0)
    seed: int = setting(42, "same seed + same settings = same result", kind=int, minimum=0, maximum=2**32 - 1)
    device: str = setting("auto", "auto (the GPU when PyTorch sees one), cpu, cuda, cuda:N or mps")
    precision: str = setting("auto", "auto: bf16 (or fp16) on a GPU, fp32 on the CPU; fp16 needs a GPU",
                             choices=PRECISIONS)
    validation_fraction: float | None = setting(None, "share of the labeled rows held out for validation when there "
                                                "is no validation split or evaluation dataset; 0 = every row trains "
                                                "(no scores, no early stopping); empty = automatic: 0.2, except "
                                                "entity spans with fewer than 2,000 labeled texts and QA with fewer "
                                                "than 1,000 answered questions, where every one trains", kind=float, minimum=0.0, maximum=0.9, optional=True)
    min_steps: int | None = setting(None, "small data still gets at least this many optimizer steps to learn; "
                                    "empty = automatic: 150 (entity spans: 400)", kind=int, minimum=0,
                                    maximum=10_000_000, optional=True)
    max_steps: int | None = setting(None, "stop after this many steps (quick trials); few-shot: on each of its two "
                                    "stages", kind=int, minimum=1, optional=True)
    eval_every: int | None = setting(None, "steps between evaluations; empty = about 10 evaluations per run",
                                     kind=int, minimum=1, optional=True)
    patience: int = setting(5, "evaluations without improvement before stopping early", kind=int, minimum=1,
                            maximum=100_000)
    cross_validation: int | None = setting(None, "when nothing is held out (small data), estimate the scores "
                                           "afterwards by k-fold cross-validation: k more models, each trained as "
                                           "this run on all rows but one k-th and scored on that k-th; 0 = no "
                                           f"estimate; empty = {CV_FOLDS} folds for few-shot runs (up to "
                                           f"{CV_MAX_ROWS} labeled rows), none otherwise",
                                           kind=int, minimum=0, maximum=20, optional=True,
                                           flags=("--cv-folds", "--cross-validation"))
    max_answer_length: int = setting(30, "QA: the longest answer in tokens", kind=int, minimum=1, maximum=10_000)
    null_score_threshold: float = setting(0.0, "QA (SQuAD 2.0 data): how much more likely 'no answer' must be than "
                                          "the best answer", kind=float)
    few_shot: str = setting("auto", f"the few-shot recipe for small classification data (core/fewshot.py); auto = "
                            f"up to {fewshot.MAX_EXAMPLES_PER_LABEL} labeled examples per label", choices=AUTO_ON_OFF)
    contrastive_epochs: int | None = setting(None, "few-shot recipe: epochs of its contrastive stage; empty = the "
                                             "recipe's choice, 0 = skip it", kind=int, minimum=0, maximum=1000,
                                             optional=True)
    freeze_word_embeddings: str = setting("auto", "keep the input word-embedding matrix fixed while training; auto = "
                                          "on for classification and for entity spans below 2,000 texts (faster "
                                          "steps, no accuracy loss measured), off for QA", choices=AUTO_ON_OFF)
    label_examples: str = setting("auto", "few-shot recipe: also train on 'This sentence is <label>.' for each "
                                  "label; auto = for a sentence-transformers model (builtin-minilm) whose labels "
                                  "all read as words (not codes like 0 / LABEL_1)", choices=AUTO_ON_OFF)

    def __post_init__(self):
        for spec in fields(self):
            setattr(self, spec.name, _checked_setting(spec, getattr(self, spec.name)))

    def to_params(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict) -> "TrainConfig":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in params.items() if k in known})

    @classmethod
    def help(cls, name: str) -> str:
        """The help text of one setting (the CLI and the Train page show the same words)."""
        return cls.__dataclass_fields__[name].metadata["help"]


def _checked_setting(spec, value):
    """``value`` of a TrainConfig field converted to its type and checked against its limits."""
    meta, name = spec.metadata, spec.name
    if value is None or (isinstance(value, str) and value.strip() == "" and meta["kind"] is not str):
        if meta["optional"] or spec.default is None:
            return None
        raise TrainingError(f"{name} needs a value ({meta['help']}).")
    kind = meta["kind"]
    try:
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif kind is float:
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
        else:
            value = str(value).strip()
    except (TypeError, ValueError):
        raise TrainingError(f"{name} must be {'a whole number' if kind is int else 'a number'}, not {value!r}.") \
            from None
    if meta["choices"]:
        value = value.lower()
        if value not in meta["choices"]:
            raise TrainingError(f"{name} must be {', '.join(meta['choices'][:-1])} or {meta['choices'][-1]}, "
                                f"not '{value}'.")
    if name == "model" and value:
        try:  # run:N, a finished run's model: checked against the run when the run is made (check_for_model)
            number = source_runs.run_id(value)
        except source_runs.SourceRunError as error:
            raise TrainingError(str(error)) from None
        value = value if number is None else f"{source_runs.PREFIX}{number}"
    if name == "device" and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.lower()):
        raise TrainingError(f"device must be auto, cpu, cuda, cuda:N or mps, not '{value}'.")
    if meta["above"] is not None and not value > meta["above"]:
        raise TrainingError(f"{name} must be more than {meta['above']}, not {value}.")
    if meta["min"] is not None and value < meta["min"]:
        raise TrainingError(f"{name} must be at least {meta['min']}, not {value}.")
    if meta["max"] is not None and value > meta["max"]:
        raise TrainingError(f"{name} must be at most {meta['max']}, not {value}.")
    return value


def add_cli_arguments(parser) -> None:
    """One CLI flag per TrainConfig setting, with its help and type (``python -m core train``)."""
    for spec in fields(TrainConfig):
        meta = spec.metadata
        if not meta["cli"]:
            continue
        flags = meta["flags"] or ("--" + spec.name.replace("_", "-"),)
        kind = {int: int, float: float}.get(meta["kind"], str)
        default = spec.default
        shown = f" (default {default})" if default is not None else ""
        parser.add_argument(*flags, dest=spec.name, type=kind, default=default, metavar=None if meta["choices"]
                            else spec.name.upper(), choices=meta["choices"], help=meta["help"] + shown)


def check_for_model(cfg: TrainConfig, folder: Path | None = None) -> None:
    """The checks that need the model's config.json: an explicit max_length beyond what the model reads is a
    TrainingError naming the limit; a model "run:N" must be a finished run of the dataset's task with its model saved
    (core/source_runs.py). The CLI, the job runner (the Train page) and the run itself call it before
    any training; a model not on this machine yet is checked once it is (when the run starts)."""
    if source_runs.is_reference(cfg.model):  # a finished run of the dataset's task, with its model saved
        task = storage.get_dataset(cfg.dataset)["task"] if cfg.dataset else None
        try:
            source = source_runs.for_task(cfg.model, task, cfg.dataset) if task else source_runs.load(cfg.model)
        except source_runs.SourceRunError as error:
            raise TrainingError(str(error)) from None
        folder = folder or source.folder
    if cfg.max_length is None:
        return
    folder = folder or models.available_folder(cfg.model)
    limit = models.input_limit(folder) if folder else None
    if limit is not None and cfg.max_length > limit:
        raise TrainingError(f"max_length {cfg.max_length} is more than the model {cfg.model} can read: its limit is "
                            f"{limit} tokens (its config.json / tokenizer). Use max_length {limit} or less; longer "
                            "texts are read in overlapping windows (QA and entity spans) or cut.")


def config_from_cli(args, dataset: str) -> "TrainConfig":
    """The TrainConfig of parsed ``add_cli_arguments`` flags."""
    values = {spec.name: getattr(args, spec.name) for spec in fields(TrainConfig) if spec.metadata["cli"]}
    return TrainConfig(dataset=dataset, **values)


@dataclass
class Prepared:
    task: str
    labels: list[str]
    train: list[dict]
    validation: list[dict]
    notes: list[str] = field(default_factory=list)
    version_2: bool = False
    few_shot: bool = False  # train with the few-shot recipe (core/fewshot.py)
    settings: dict = field(default_factory=dict)  # what the task learned from the data (saved with the model)

    @property
    def spec(self):
        return tasks.get(self.task)


# ---------------------------------------------------------------- data

def prepare_data(cfg: TrainConfig) -> Prepared:
    """Training and validation examples: the dataset's own validation split, a named evaluation dataset, or a
    split of the labeled examples chosen by the task (stratified, by context, ...)."""
    info = storage.get_dataset(cfg.dataset)
    task = tasks.get(info["task"])
    examples = storage.load_examples(cfg.dataset)
    usable = [e for e in examples if task.is_labeled(e)]
    notes = []
    if len(usable) < len(examples):
        notes.append(f"{len(examples) - len(usable)} unlabeled rows left out of training")
    if cfg.eval_dataset:
        eval_info = storage.get_dataset(cfg.eval_dataset)
        if eval_info["task"] != task.name:
            raise TrainingError(f"Evaluation dataset '{cfg.eval_dataset}' is a {eval_info['task']} dataset; "
                                f"'{cfg.dataset}' is {task.name}. Pick an evaluation dataset of the same task.")
        validation = [e for e in storage.load_examples(cfg.eval_dataset) if task.is_labeled(e)]
        train = [e for e in usable if e.get("split") != "test"]
    elif any(e.get("split") == "validation" for e in usable):
        validation = [e for e in usable if e.get("split") == "validation"]
        train = [e for e in usable if e.get("split") in (None, "", "train")]
    else:
        pool = [e for e in usable if e.get("split") != "test"]
        if fewshot.applies(task, len(pool), len({e.get("label") for e in pool}), cfg.few_shot):
            train, validation = pool, []  # few labels: every one of them trains (core/fewshot.py, step 1)
            notes.append(f"few-shot recipe: all {len(pool)} labeled examples train the model, none is held out; "
                         "pick an evaluation dataset (or add a validation split) to measure accuracy")
        else:
            fraction = cfg.validation_fraction
            if fraction is None:
                fraction = task.validation_fraction(len(pool))
            train, validation = (pool, []) if fraction == 0 else task.split(pool, fraction, cfg.seed)
    if not train:
        raise TrainingError(f"Dataset '{cfg.dataset}' has no labeled training examples: label some rows first.")
    try:
        labels = task.training_labels(list(info["labels"]), train, validation)
    except TaskDataError as error:
        raise TrainingError(str(error).replace("the dataset", f"'{cfg.dataset}'", 1)) from None
    few_shot = fewshot.applies(task, len(train), len({e.get("label") for e in train}), cfg.few_shot)
    if not validation and not few_shot:
        notes.append("no validation examples: every labeled row trains and the last checkpoint is kept (no early "
                     "stopping); pick an evaluation dataset or add a validation split to see scores as it trains")
    settings = task.run_settings(train + validation)
    return Prepared(task.name, labels, train, validation, notes, bool(settings.get("version_2")), few_shot, settings)


def cv_folds(cfg: TrainConfig, prepared: Prepared) -> int:
    """How many cross-validation folds a run with nothing held out gets (0: no estimate)."""
    if prepared.validation or _distributed()["world"] > 1:
        return 0
    n = len(prepared.train)
    automatic = CV_FOLDS if prepared.few_shot and n <= CV_MAX_ROWS else 0  # few-shot runs are short: 5 more are cheap
    folds = cfg.cross_validation if cfg.cross_validation is not None else automatic
    return min(folds, n) if folds >= 2 else 0


def fold_rows(rows: list[dict], folds: int, seed: int) -> list[list[dict]]:
    """``rows`` dealt into ``folds`` groups: rows sharing a context (QA) stay together, and each label is spread
    over the folds (stratified), in a seeded random order."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row.get("context") or ("row", row.get("id")), []).append(row)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    order.sort(key=lambda group: str(group[0].get("label")))  # stable: shuffled within each label
    dealt: list[list[dict]] = [[] for _ in range(folds)]
    for number, group in enumerate(order):
        dealt[number % folds].extend(group)
    return [fold for fold in dealt if fold]


def _with_estimate(run_id: int, run: dict, cancel: threading.Event, owner: str | None, outcome: dict) -> dict:
    """``outcome`` with the k-fold estimate of a run that held nothing out added to its metrics (or why not)."""
    try:
        estimate = cross_validate(run_id, TrainConfig.from_params(run["params"]), cancel, owner)
    except storage.RunGoneError:
        raise
    except Exception as exc:  # the run itself is fine: say why there is no estimate
        log.exception("cross-validation of run %s failed", run_id)
        estimate = {"error": describe_error(exc)}
    if estimate:
        outcome["metrics"] = {**outcome.get("metrics", {}), "cross_validation": estimate}
    return outcome


def cross_validate(run_id: int, cfg: TrainConfig, cancel: threading.Event | None = None,
                   owner: str | None = None) -> dict | None:
    """The k-fold estimate of a run that held nothing out: {folds, rows, metrics (scalar ones averaged over the
    folds, weighted by their rows; confusion matrices summed)}; None when the run gets none (see cv_folds)."""
    prepared = prepare_data(cfg)
    folds = cv_folds(cfg, prepared)
    if not folds:
        return None
    cancel = cancel or threading.Event()
    parts = fold_rows(prepared.train, folds, cfg.seed)
    results = []
    for number, held in enumerate(parts, start=1):
        if cancel.is_set():
            return {"error": "cancelled before the estimate was complete"}
        # progress for the Train page (charts.progress_info); the final metrics replace it
        storage.update_run(run_id, owner=owner, metrics={"cross_validation_fold": [number, len(parts)]})
        kept = [row for part in parts if part is not held for row in part]
        fold_cfg = TrainConfig.from_params({**cfg.to_params()})
        result = _train(run_id, fold_cfg, cancel, None, owner, fold=(kept, held))
        if result["cancelled"]:
            return {"error": "cancelled before the estimate was complete"}
        results.append((len(held), result["metrics"]))
    return {"folds": len(parts), "rows": sum(n for n, _ in results), "metrics": _pool(results)}


def _pool(results: list[tuple[int, dict]]) -> dict:
    total = sum(n for n, _ in results)
    pooled = {}
    for name, value in results[0][1].items():
        values = [(n, metrics.get(name)) for n, metrics in results]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for _, v in values):
            pooled[name] = sum(n * v for n, v in values) / total
    matrices = [metrics.get("confusion_matrix") for _, metrics in results]
    label_sets = {tuple(metrics.get("labels") or ()) for _, metrics in results}
    if all(matrices) and len(label_sets) == 1:
        import numpy as np
        pooled["confusion_matrix"] = np.sum([np.asarray(m) for m in matrices], axis=0).tolist()
        pooled["labels"] = list(label_sets.pop())
    return pooled


def measurement_plan(cfg: TrainConfig) -> dict:
    """What a run with ``cfg`` will measure, said before it starts: {measured (bool), text}. Reads the dataset
    and splits it as training will (no model needed)."""
    try:
        prepared = prepare_data(cfg)
    except (TrainingError, storage.StorageError) as error:
        return {"measured": False, "text": f"This run cannot start yet: {error}"}
    n_train, n_validation = len(prepared.train), len(prepared.validation)
    if n_validation:
        if cfg.eval_dataset:
            source = f"the evaluation dataset '{cfg.eval_dataset}' ({n_validation} labeled rows)"
        elif any(e.get("split") == "validation" for e in prepared.validation):
            source = f"this dataset's validation split ({n_validation} rows, not trained on)"
        else:
            source = (f"{n_validation} of the {n_train + n_validation} labeled rows, held out (not trained on)")
        return {"measured": True, "text": f"Scores (during training and at the end) come from {source}; "
                                          f"{n_train} rows train."}
    if prepared.few_shot:
        why = "the few-shot recipe trains on every labeled example"
    elif cfg.validation_fraction == 0:
        why = "the validation fraction is 0"
    else:
        why = "with this little data every labeled row trains"
    folds = cv_folds(cfg, prepared)
    if folds:
        return {"measured": True,
                "text": f"all {n_train} labeled rows train and none is held out ({why}), so there are no scores "
                        f"while it trains. Afterwards a {folds}-fold cross-validation estimates them: {folds} more "
                        f"models, each trained the same way on all rows but a {_nth(folds)} and scored on that "
                        f"{_nth(folds)} (about {folds}x the training time again)."}
    return {"measured": False,
            "text": f"Nothing will be measured: all {n_train} labeled rows train and none is held out ({why}), so no "
                    "accuracy, F1 or confusion matrix will appear — scores on the rows a model trained on would not "
                    "say how it does on new text. To measure it, pick an evaluation dataset, add a validation split "
                    "to the data, set a validation fraction, or allow the cross-validation estimate under Advanced."}


def _nth(folds: int) -> str:
    return {2: "half", 3: "third", 4: "quarter"}.get(folds, f"{folds}th")


def run_settings(prepared: Prepared, cfg: TrainConfig) -> dict:
    """What encoding and post-processing need, saved in the model folder's spanlab.json as well."""
    return {"labels": prepared.labels, "max_length": cfg.max_length, "doc_stride": cfg.doc_stride,
            "max_answer_length": cfg.max_answer_length, "null_score_threshold": cfg.null_score_threshold,
            "version_2": prepared.version_2, **prepared.settings}


def encode(prepared: Prepared, examples: list[dict], tokenizer, cfg: TrainConfig, for_eval: bool) -> list[dict]:
    """Token features, one dict per feature, unpadded."""
    return prepared.spec.encode(examples, tokenizer, run_settings(prepared, cfg), for_eval)


# ---------------------------------------------------------------- schedule defaults

def resolve_defaults(cfg: TrainConfig, task: str, n_train_features: int, hidden_size: int,
                     few_shot: bool = False, n_labels: int = 2) -> TrainConfig:
    """Fill the automatic settings. Small models tolerate (and need) a larger learning rate; small data gets at
    least ``min_steps`` optimizer steps, or, with the few-shot recipe, that recipe's schedule."""
    cfg = TrainConfig(**asdict(cfg))
    spec = tasks.get(task)
    if few_shot:  # the fine-tuning stage that follows the contrastive stage and the linear probe
        cfg.learning_rate = fewshot.FINE_TUNE_LR if cfg.learning_rate is None else cfg.learning_rate
        cfg.epochs = fewshot.FINE_TUNE_EPOCHS if cfg.epochs is None else cfg.epochs
        if cfg.contrastive_epochs is None:
            cfg.contrastive_epochs = fewshot.contrastive_epochs(n_labels)
        return cfg
    if cfg.learning_rate is None:
        cfg.learning_rate = spec.default_lr * (2 if hidden_size < 768 else 1)
    steps_per_epoch = max(1, math.ceil(n_train_features / cfg.batch_size))
    if cfg.min_steps is None:
        cfg.min_steps = spec.default_min_steps
    if cfg.epochs is None:
        cfg.epochs = spec.default_epochs
        if steps_per_epoch * cfg.epochs < cfg.min_steps:
            cfg.epochs = float(math.ceil(cfg.min_steps / steps_per_epoch))
    return cfg


# ---------------------------------------------------------------- the run

class MetricWriter:
    """Buffers metric points and writes them to the database at most every ``interval`` seconds, to the run its
    worker owns (``owner``: the run's token)."""

    def __init__(self, run_id: int, interval: float = 1.0, owner: str | None = None):
        self.run_id, self.interval, self.buffer, self.last, self.owner = run_id, interval, [], 0.0, owner

    def add(self, step: int, epoch: float, values: dict, force: bool = False, **run_fields):
        self.buffer.extend({"step": step, "epoch": round(epoch, 4), "name": k, "value": float(v)}
                           for k, v in values.items())
        if force or time.monotonic() - self.last >= self.interval:
            self.flush(step=step, **run_fields)

    def flush(self, **run_fields):
        if self.buffer:
            storage.add_metric_points(self.run_id, self.buffer, owner=self.owner)
            self.buffer = []
        if run_fields:
            storage.update_run(self.run_id, owner=self.owner, **run_fields)
        self.last = time.monotonic()


class Heartbeat:
    """A worker's pulse: a daemon thread that refreshes the run's heartbeat every HEARTBEAT_INTERVAL_S (so other
    processes can tell this worker is alive, even during a long evaluation or save) and sets ``cancel`` when someone
    asked the run to stop (storage.request_cancel) or deleted it (then ``gone`` is set too)."""

    def __init__(self, run_id: int, owner: str, cancel: threading.Event):
        self.run_id, self.owner, self.cancel = run_id, owner, cancel
        self.gone, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"spanlab-heartbeat-{run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)

    def _beat(self):
        while not self._stop.wait(runs_store.HEARTBEAT_INTERVAL_S):
            try:
                if storage.heartbeat(self.run_id, self.owner):
                    self.cancel.set()
            except storage.RunGoneError:
                self.gone.set()
                self.cancel.set()
                return
            except Exception as error:  # a busy or unreachable database: try again at the next beat
                log.warning("run %s: heartbeat not recorded (%s)", self.run_id, error)


def train_other_rank(cfg: TrainConfig) -> dict:
    """What ranks 1..N-1 of a torchrun / accelerate launch do: train their shard in step with rank 0, which alone
    records the run in the database, evaluates and saves."""
    return _train(None, cfg, threading.Event(), None)


def execute_run(run_id: int, cancel: threading.Event | None = None, progress=None) -> dict:
    """Train run ``run_id`` (its params are a TrainConfig) and record the outcome. Never raises for a training
    failure: the run is marked failed with the message. KeyboardInterrupt marks it interrupted and re-raises.

    The worker writes only to the run it owns (the run's token): if the run is deleted meanwhile, training stops,
    nothing more is written and a model folder saved for it is removed again (status "deleted" in the result)."""
    cancel = cancel or threading.Event()
    run = storage.get_run(run_id)
    owner = run["token"]
    try:
        if not storage.claim_run(run_id, owner):
            return {"run": run_id, "status": storage.get_run(run_id)["status"], "error": "cancelled before it started"}
        with Heartbeat(run_id, owner, cancel):
            try:
                outcome = _train(run_id, TrainConfig.from_params(run["params"]), cancel, progress, owner)
            except KeyboardInterrupt:
                storage.update_run(run_id, owner=owner, status="interrupted", error="stopped by Ctrl-C",
                                   finished_at=_now())
                raise
            except storage.RunGoneError:
                raise
            except Exception as exc:  # recorded, not raised: the runner goes on with the next run
                message = describe_error(exc)
                _write_traceback(run_id, owner)
                storage.update_run(run_id, owner=owner, status="failed", error=message, finished_at=_now())
                return {"run": run_id, "status": "failed", "error": message}
            if outcome.get("status") == "completed":  # still under the heartbeat: the estimate trains too
                outcome = _with_estimate(run_id, run, cancel, owner, outcome)
        try:
            storage.update_run(run_id, owner=owner, finished_at=_now(), **outcome)
        except storage.RunGoneError:
            if outcome.get("artifact_dir"):
                shutil.rmtree(outcome["artifact_dir"], ignore_errors=True)
            raise
    except storage.RunGoneError as error:
        log.warning("%s", error)
        return {"run": run_id, "status": "deleted", "error": str(error)}
    return {"run": run_id, **outcome}


def describe_error(exc: Exception) -> str:
    """A sentence for the user instead of a stack trace."""
    if isinstance(exc, UserError):
        return str(exc)
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, MemoryError) or any(sign in lowered for sign in (
            "out of memory", "can't allocate memory", "cannot allocate memory", "defaultcpuallocator")):
        first = (text.splitlines() or [type(exc).__name__])[0][:200]
        return ("Out of memory while training: lower the batch size or the max length, or use a smaller model. "
                f"({first})")
    return f"{type(exc).__name__}: {text[:500]}"


def _write_traceback(run_id: int, owner: str | None) -> None:
    try:
        folder = spanlab_config.runs_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{storage.model_folder_name(run_id, owner)}-error.txt"
        path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        pass


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)


def freezes_word_embeddings(setting: str, task: str, n_texts: int) -> bool:
    """Whether a run on ``n_texts`` labeled training texts keeps the input word-embedding matrix fixed. "auto": the
    task's choice (classification: yes, see BENCHMARKS.md, section 3: no loss of accuracy measured, and each step
    skips the gradient, clipping and AdamW update of the largest matrix; entity spans: below 2,000 texts, measured on
    the training pool, section 7; QA: no, not measured there)."""
    setting = (setting or "auto").lower()
    if setting not in AUTO_ON_OFF:
        raise TrainingError(f"freeze_word_embeddings must be auto, on or off, not '{setting}'.")
    return setting == "on" or (setting == "auto" and n_texts < tasks.get(task).freezes_word_embeddings_below)


class _NoWriter:
    """MetricWriter's stand-in for cross-validation folds: their points and progress are not the run's."""

    def add(self, *args, **kwargs):
        pass

    def flush(self, **kwargs):
        pass


def _train(run_id: int, cfg: TrainConfig, cancel: threading.Event, progress, owner: str | None = None,
           fold: tuple[list[dict], list[dict]] | None = None) -> dict:
    """Train the run (its worker writing as ``owner``). With ``fold`` (training rows, held-out rows) train a
    cross-validation model instead: the same recipe on those training rows, nothing recorded on the run, scored on
    the held-out rows only at the end (returns {"metrics", "cancelled"})."""
    with models.IMPORT_LOCK:  # not while the app's warm-up thread is half-way through importing transformers
        import torch
        from transformers import get_linear_schedule_with_warmup, set_seed

    dist = _distributed()
    is_main = dist["rank"] == 0
    prepared = prepare_data(cfg)
    if fold is not None:
        prepared = replace(prepared, train=list(fold[0]), validation=[], notes=list(prepared.notes))
        progress = None
    task = prepared.spec
    freeze_embeddings = freezes_word_embeddings(cfg.freeze_word_embeddings, task.name, len(prepared.train))
    source = None
    if source_runs.is_reference(cfg.model):
        try:
            source = source_runs.for_task(cfg.model, task.name, cfg.dataset)
        except source_runs.SourceRunError as error:
            raise TrainingError(str(error)) from None
    resolved = models.resolve(cfg.model)
    check_for_model(cfg, resolved.folder)
    limit = models.input_limit(resolved.folder)
    cfg.max_length = cfg.max_length or min(task.default_max_length, limit or task.default_max_length)
    requested = cfg.device
    if dist["world"] > 1:  # one process per GPU (or per CPU process with gloo, for testing the launcher)
        requested = f"cuda:{dist['local_rank']}" if torch.cuda.is_available() else "cpu"
    device, precision = models.choose_device(requested, cfg.precision)
    notes = prepared.notes + resolved.notes
    tokenizer = models.load_tokenizer(resolved.folder, notes)
    set_seed(cfg.seed)
    keeps_head = source is None or source.keeps_head(prepared.labels)
    model = models.load_model(resolved.folder, prepared.task, prepared.labels, new_head=not keeps_head)
    if source is not None:
        notes.append(f"the {task.title.lower()} head of run #{source.id} is kept" if keeps_head else
                     f"run #{source.id} learned other labels ({', '.join(source.labels)}): its encoder is kept and the "
                     "head starts anew")
    if prepared.few_shot:
        present = {e["label"] for e in prepared.train}
        made = fewshot.label_examples([lab for lab in prepared.labels if lab in present], cfg.label_examples,
                                      fewshot.is_sentence_encoder(resolved.folder))
        if made:
            prepared.train = prepared.train + made
            notes.append(f"few-shot recipe: {len(made)} examples made from the label names (\"{made[0]['text']}\") "
                         "train with the labeled rows; label_examples=off leaves them out")
        if source is not None and source.recipe.startswith("few-shot"):
            pass  # the source run's model has its mean-pooling layer already
        elif not fewshot.add_mean_pooling_head(model):
            notes.append(f"few-shot recipe: {type(model).__name__} keeps its own [CLS] head (no mean-pooling layer)")
        if not fewshot.has_linear_head(model):
            notes.append("few-shot recipe: the classifier is not one linear layer, so no linear probe initialises it")
    if freeze_embeddings:
        fewshot.freeze_word_embeddings(model)
    train_features = encode(prepared, prepared.train, tokenizer, cfg, for_eval=False)
    asked_epochs = cfg.epochs
    cfg = resolve_defaults(cfg, prepared.task, len(train_features), model.config.hidden_size, prepared.few_shot,
                           len(prepared.labels))
    steps_per_epoch = math.ceil(len(train_features) / cfg.batch_size / dist["world"])
    ft_steps = math.ceil(steps_per_epoch * cfg.epochs)
    if not prepared.few_shot:
        ft_steps = max(1, ft_steps)
        if asked_epochs is not None and ft_steps < (cfg.min_steps or 0) and not cfg.max_steps:
            notes.append(f"{asked_epochs:g} epochs are only {ft_steps} optimizer steps on this data; small data "
                         f"needs about {cfg.min_steps} to learn: leave epochs empty (automatic) to get them")
    contrastive_plan = []  # few-shot stage before fine-tuning: batches of example indices
    if prepared.few_shot and cfg.contrastive_epochs:
        if dist["world"] > 1:
            notes.append("few-shot recipe: the contrastive stage is skipped in data-parallel runs")
        else:
            contrastive_plan = fewshot.contrastive_batches([f["labels"] for f in train_features],
                                                           cfg.contrastive_epochs, cfg.batch_size, cfg.seed)
    if cfg.max_steps:  # a cap on the steps of each stage
        contrastive_plan = contrastive_plan[:cfg.max_steps]
        ft_steps = min(ft_steps, cfg.max_steps)
    pre_steps = len(contrastive_plan)
    total_steps = pre_steps + ft_steps  # steps are counted across both stages (progress, metric points)
    eval_every = cfg.eval_every or evaluation_interval(ft_steps, len(prepared.validation), cfg.batch_size)
    log_every = max(1, min(10, total_steps // 50))
    if is_main and fold is None:
        storage.update_run(run_id, owner=owner, device=device, precision=precision, total_steps=total_steps, step=0,
                           params={**cfg.to_params(), "notes": notes, "version_2": prepared.version_2,
                                   "labels": prepared.labels,
                                   "n_train": sum(not e.get("synthetic") for e in prepared.train),
                                   "n_label_examples": sum(bool(e.get("synthetic")) for e in prepared.train),
                                   "n_validation": len(prepared.validation), "world_size": dist["world"],
                                   **({"source_run": source.id, "source_head": "kept" if keeps_head else "new",
                                       "base_model": source_runs.root_model(cfg.model)} if source else {})})

    model.to(device)
    train_model = model
    if dist["world"] > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist["local_rank"]] if device.startswith("cuda") else None)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if not any(k in n for k in no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in trainable if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=models.fused_adam_supported(device))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(ft_steps * cfg.warmup_ratio), max(1, ft_steps))
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    pad_id = tokenizer.pad_token_id or 0
    multiple = 8 if device.startswith("cuda") else 1
    lengths = [len(f["input_ids"]) for f in train_features]
    rng = random.Random(cfg.seed)
    evaluator = Evaluator(prepared, tokenizer, cfg, device, amp_dtype) if is_main and prepared.validation else None
    writer = MetricWriter(run_id, owner=owner) if fold is None else _NoWriter()
    metric_name = task.metric_for_best
    best = {"value": None, "step": 0, "state": None, "metrics": {}}
    bad_evals, step, samples, eval_time, window = 0, 0, 0, 0.0, []
    started = time.monotonic()
    stop_reason = None
    loop_started = time.perf_counter()  # the training loop's seconds: all of it but the validation passes

    if prepared.few_shot:
        step = _few_shot_start(model, train_features, contrastive_plan, cfg, device, amp_dtype, pad_id,
                               writer if is_main else None, log_every, total_steps, cancel, progress)
        samples = sum(len(b) for b in contrastive_plan[:step])
        stop_reason = "cancelled" if cancel.is_set() else None

    model.train()
    on_cpu = device.split(":")[0] == "cpu"
    while step < total_steps and stop_reason is None:
        batches = length_grouped_batches(lengths, cfg.batch_size * dist["world"], rng)
        for batch_ids in batches:
            batch_ids = batch_ids[dist["rank"]::dist["world"]] or batch_ids[:1]
            if cancel.is_set():
                stop_reason = "cancelled"
                break
            if on_cpu:
                cpu_share.pause_for_predictions()  # someone waits for a Demo answer on this machine: theirs first
            batch = {k: v.to(device, non_blocking=True)
                     for k, v in collate([train_features[i] for i in batch_ids], pad_id, multiple).items()}
            with torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                loss = train_model(**batch).loss
            if scaler:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            samples += len(batch_ids) * dist["world"]
            if is_main:  # read at log steps only: a .item() every step would stall a GPU's queue
                window.append(loss.detach())
            epoch = (step - pre_steps) / steps_per_epoch
            if is_main and (step % log_every == 0 or step == total_steps or step == pre_steps + 1):
                writer.add(step, epoch, {"train/loss": torch.stack(window).float().mean().item(),
                                         "learning_rate": scheduler.get_last_lr()[0]})
                window = []
                if progress:
                    progress(step, total_steps)
            if evaluator and (step == total_steps or ((step - pre_steps) % eval_every == 0
                                                      and not _final_validation_near(step, total_steps, eval_every,
                                                                                     cfg.eval_every))):
                evaluation_started = time.perf_counter()
                scores = evaluator.evaluate(model)
                model.train()
                writer.add(step, epoch, {f"eval/{k}": v for k, v in scores.items() if _is_number(v)}, force=True)
                if best["value"] is None or scores[metric_name] > best["value"]:
                    best = {"value": scores[metric_name], "step": step, "metrics": scores,
                            "state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
                    bad_evals = 0
                else:
                    bad_evals += 1
                    if bad_evals >= cfg.patience:
                        stop_reason = "early_stopped"
                eval_time += time.perf_counter() - evaluation_started
            if dist["world"] > 1:
                stop_reason = _agree_on_stop(stop_reason, device)
            if step >= total_steps or stop_reason:
                break
    if is_main:
        writer.flush(step=step)
    train_time = time.perf_counter() - loop_started - eval_time  # as Trainer's train_runtime, without evaluation

    outcome = {"status": "cancelled" if stop_reason == "cancelled" else "completed",
               "train_samples_per_second": samples / train_time if train_time else None,
               "step": step}
    if not is_main:
        return outcome
    if fold is not None:
        scorer = Evaluator(replace(prepared, validation=list(fold[1])), tokenizer, cfg, device, amp_dtype)
        return {"metrics": scorer.evaluate(model), "cancelled": stop_reason == "cancelled"}
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    final = dict(best["metrics"])
    if evaluator and best["state"] is None:
        final = evaluator.evaluate(model)
    artifact = None
    if stop_reason != "cancelled" or best["state"] is not None:
        artifact = save_model_folder(run_id, model, tokenizer, prepared, cfg, resolved.ref, final, owner)
    capped = bool(cfg.max_steps) and ft_steps < math.ceil(steps_per_epoch * cfg.epochs) and step >= total_steps
    final.update({"best_step": best["step"], "train_seconds": round(train_time, 3),
                  "eval_seconds": round(eval_time, 3), "wall_seconds": round(time.monotonic() - started, 3),
                  # what actually ran, and why it stopped: early_stopped, cancelled, max_steps, or finished (every
                  # planned epoch done); epochs count the fine-tuning stage only
                  "steps_run": step, "epochs_run": round(max(0, step - pre_steps) / steps_per_epoch, 2),
                  "epochs_planned": round(float(cfg.epochs), 2),
                  "stopped": stop_reason or ("max_steps" if capped else "finished")})
    outcome.update(metrics=final, artifact_dir=str(artifact) if artifact else None,
                   best_metric_name=metric_name if metric_name in final else None,
                   best_metric=final.get(metric_name))
    if stop_reason == "cancelled":
        who = storage.get_run(run_id).get("cancelled_by")
        outcome["error"] = (f"cancelled by {who}" if who else "cancelled") + (" (best checkpoint so far kept)"
                                                                                 if artifact else "")
    return outcome


def _final_validation_near(step: int, total_steps: int, eval_every: int, chosen: int | None) -> bool:
    """Whether an automatic validation at ``step`` can be left out because the run's final validation comes less
    than half an interval later (it would score nearly the same model; in a 52-step run validated every 39 steps it
    cost a third of the validation time). An interval the user chose (``chosen``) is always kept."""
    return chosen is None and total_steps - step < eval_every / 2


def evaluation_interval(ft_steps: int, n_validation: int, batch_size: int) -> int:
    """Steps between validation passes: about 10 per run, but never more often than every 3 x (validation examples /
    batch size) steps. A validation pass is a forward pass per example, about a third of a training step's work, so
    evaluating costs at most about a ninth of the training (it cost as much as the training itself in a 1-epoch run
    of 1,024 sentences evaluated every 5 steps)."""
    return max(1, math.ceil(ft_steps / 10), math.ceil(3 * n_validation / max(1, batch_size)))


def _few_shot_start(model, train_features, contrastive_plan, cfg, device, amp_dtype, pad_id, writer, log_every,
                    total_steps, cancel, progress) -> int:
    """Steps 3 and 4 of the few-shot recipe (core/fewshot.py): the contrastive stage, then the linear probe that
    initialises the classifier. Returns the number of contrastive steps done (fewer when cancelled)."""
    label_ids = [f["labels"] for f in train_features]
    per_epoch = max(1, len(contrastive_plan) // max(1, cfg.contrastive_epochs or 1))

    def on_step(step, total, loss, learning_rate):
        if writer and (step % log_every == 0 or step == total):
            writer.add(step, step / per_epoch, {"train/contrastive_loss": loss, "learning_rate": learning_rate})
            if progress:
                progress(step, total_steps)

    losses = fewshot.contrastive_stage(model, train_features, label_ids, contrastive_plan,
                                       learning_rate=fewshot.CONTRASTIVE_LR, collate=collate, pad_id=pad_id,
                                       device=device, amp_dtype=amp_dtype, should_stop=cancel.is_set,
                                       on_step=on_step)
    if not cancel.is_set() and fewshot.has_linear_head(model):
        embeddings = fewshot.pooled_features(model, train_features, collate, pad_id, device)
        fewshot.init_head_with_linear_probe(model, embeddings, label_ids, model.config.num_labels, cfg.seed)
    return len(losses)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _distributed() -> dict:
    """Rank info from torchrun / accelerate launch; initialises the process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = {"world": world, "rank": int(os.environ.get("RANK", "0")), "local_rank": int(os.environ.get("LOCAL_RANK", "0"))}
    if world > 1:
        import torch
        import torch.distributed as torch_dist
        if not torch_dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch_dist.init_process_group(backend)
            if torch.cuda.is_available():
                torch.cuda.set_device(info["local_rank"])
    return info


def close_distributed() -> None:
    """Destroy the process group of a torchrun / accelerate launch, if one was set up. Every rank calls it once
    training is over: a process that exits with the group alive can die with SIGABRT at interpreter shutdown
    (gloo's worker threads still hold tensors; pytorch/pytorch#179291)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch.distributed as torch_dist
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _agree_on_stop(reason: str | None, device: str) -> str | None:
    """All ranks stop together if any rank (rank 0 decides early stopping, any rank may be cancelled) wants to."""
    import torch
    import torch.distributed as torch_dist
    flag = torch.tensor([0 if reason is None else (2 if reason == "cancelled" else 1)],
                        device=device if device.startswith("cuda") else "cpu")
    torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
    return {0: None, 1: "early_stopped", 2: "cancelled"}[int(flag.item())]


class Evaluator:
    """Validation metrics for the model as it trains: the same prediction path as the Demo page, ``evaluate`` and
    Label-page suggestions (core.inference.Predictor), around the model being trained."""

    def __init__(self, prepared: Prepared, tokenizer, cfg: TrainConfig, device: str, amp_dtype=None,
                 examples: list[dict] | None = None):
        self.prepared, self.settings = prepared, run_settings(prepared, cfg)
        self.tokenizer, self.device, self.amp_dtype = tokenizer, device, amp_dtype
        self.examples = examples if examples is not None else prepared.validation
        self.features = prepared.spec.encode(self.examples, tokenizer, self.settings, for_eval=True)

    def evaluate(self, model) -> dict:
        from core.inference import Predictor
        predictor = Predictor.around(model, self.tokenizer, self.prepared.spec, self.settings, self.device,
                                     self.amp_dtype)
        predictions = predictor.predict_examples(self.examples, features=self.features, batch_size=64)
        return self.prepared.spec.score(self.examples, predictions, self.prepared.labels)


def save_model_folder(run_id: int, model, tokenizer, prepared: Prepared, cfg: TrainConfig, base_model: str,
                      metrics: dict, token: str | None = None) -> Path:
    """Write the model as a standard HF folder, atomically (temp folder + rename): plain ``transformers`` loads it.
    The folder is the run's own (storage.model_folder_name: its id and token); an existing folder of that name is
    never replaced (TrainingError)."""
    root = spanlab_config.runs_dir()
    final = root / storage.model_folder_name(run_id, token)
    if final.exists():
        raise TrainingError(f"the model folder {final} already exists and SpanLab never replaces a model folder: "
                            "move it away (or delete the run it belongs to) and train again")
    tmp = Path(tempfile.mkdtemp(prefix=storage.partial_folder_prefix(run_id, token), dir=root))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        meta = {"task": prepared.task, **run_settings(prepared, cfg), "base_model": base_model, "run": run_id,
                "run_token": token, "recipe": "few-shot (core/fewshot.py)" if prepared.few_shot else "fine-tuning",
                "metrics": {k: v for k, v in metrics.items() if _is_number(v)}}
        (tmp / "spanlab.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            final.mkdir()  # claims the name: fails if anything took it meanwhile, so nothing is ever replaced
        except FileExistsError:
            raise TrainingError(f"the model folder {final} appeared while this run was saving: it was left as it "
                                "is; train again") from None
        os.replace(tmp, final)  # onto the empty folder just made
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
