"""Predictions from a model: one path for every task and every caller (the Demo page, ``predict``, ``evaluate``,
Label-page suggestions, and validation while a run trains).

``Predictor`` turns examples into the task's token features, runs the model in batches of similar length (padded
as training pads them, core.batching) and hands the outputs to the task's ``decode`` (label probabilities, QA
answers, entities — with character offsets). ``load_predictor`` caches loaded model folders (keyed by folder and its
modification time), so a demo answers quickly after the first question.

Precision: "fp32", or "bf16" where the CPU runs it natively and the task answers in bf16 by default (QA): then every
prediction that is a close call for the task (its top answers within ``recheck_margin`` in log-probability) is
made again in fp32, so a bf16 rounding error cannot flip a clear answer and a close one is the fp32 answer. A weakly
trained model makes many close calls; when "auto" sees more than ``give_up_share`` of its first predictions made
again, bf16 no longer saves time and it predicts in fp32 only.
"""
from __future__ import annotations

import copy
import json
import pickle
import threading
from functools import lru_cache
from pathlib import Path

from core import cpu_share, models, storage, tasks
from core.batching import MODEL_INPUTS, collate
from core.errors import SettingsError, UserError
from core.tasks.base import TaskDataError, by_length


class PredictorError(UserError):
    """The run or folder cannot be used for predictions; the message says why."""


def run_folder(run: int | str | Path) -> Path:
    """Model folder of a run id, or a folder path given directly."""
    if isinstance(run, Path) or (isinstance(run, str) and not run.isdigit()):
        try:  # a server's allowed model folders (SPANLAB_MODEL_ROOTS) apply here too
            folder = models.local_folder(str(run))
        except models.ModelUnavailable as exc:
            raise PredictorError(str(exc)) from None
        if folder is None or not (folder / "config.json").exists():
            raise PredictorError(f"'{run}' is not a saved model folder (no config.json).")
        return folder
    info = storage.get_run(int(run))
    if not info.get("artifact_dir") or not Path(info["artifact_dir"]).exists():
        raise PredictorError(f"Run {info['id']} has no saved model (status: {info['status']}). "
                             "Pick a completed run.")
    folder = Path(info["artifact_dir"])
    try:
        written_by = json.loads((folder / "spanlab.json").read_text(encoding="utf-8")).get("run_token")
    except (OSError, ValueError, AttributeError):
        written_by = None  # a folder from before model folders recorded their run: nothing to compare
    if written_by and info.get("token") and written_by != info["token"]:
        raise PredictorError(f"Run {info['id']}'s model folder {folder} holds another run's model (its spanlab.json "
                             "names a different run): it was replaced from elsewhere, e.g. by another database using "
                             "the same SPANLAB_HOME. Train the run again.")
    return folder


def load_predictor(run: int | str | Path, device: str = "auto", precision: str = "auto") -> "Predictor":
    """The predictor of a run id or model folder (cached). ``precision``: "auto", "fp32" or "bf16"."""
    folder = run_folder(run).resolve()
    stamp = (folder / "config.json").stat().st_mtime_ns
    return _load(str(folder), stamp, device, precision)


@lru_cache(maxsize=4)
def _load(folder: str, stamp: int, device: str, precision: str = "auto"):
    meta_path = Path(folder) / "spanlab.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        if not isinstance(meta, dict):
            raise ValueError("spanlab.json is not a JSON object")
        return Predictor(Path(folder), meta, device, precision)
    except UserError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, pickle.UnpicklingError) as exc:
        # The folder is the user's input: weights the safe loader refuses (pickles), missing or damaged files.
        detail = " ".join(str(exc).split())[:400]
        if isinstance(exc, pickle.UnpicklingError):
            refused = [line.strip() for line in str(exc).splitlines() if "GLOBAL" in line]
            detail = ("its pickled weights (pytorch_model.bin) hold objects the safe loader refuses to run"
                      + (f" ({refused[0]})" if refused else ""))
        raise PredictorError(f"cannot load the model in '{folder}': {type(exc).__name__}: {detail} — use a folder "
                             "saved by SpanLab or save_pretrained (safetensors weights, config.json, tokenizer)") \
            from exc


def folder_task(folder: Path, meta: dict) -> str:
    """The task of a model folder: spanlab.json says; a plain transformers folder is told by its head."""
    if meta.get("task"):
        return meta["task"]
    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    heads = " ".join(config.get("architectures") or [])
    for task in tasks.ALL:
        if task.auto_model.replace("AutoModelFor", "") in heads:
            return task.name
    return tasks.ALL[0].name


def native_bf16(device: str) -> bool:
    """Whether "auto" predicts in bf16 here: on a CPU with AVX512-BF16 or AMX, where it was measured faster
    (BENCHMARKS.md, section 4; elsewhere the CPU emulates bf16, slower than fp32). On a GPU one question's
    latency is kernel launches more than arithmetic, unmeasured so far: fp32 unless bf16 is asked for."""
    import torch
    if device == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


class Predictor:
    """A model folder (or, during training, the model being trained) that predicts for its task."""
    recheck_margin = 0.15  # log-probability: 1.5x the largest bf16 error seen (bench/qa_bf16_calibrate.py)
    give_up_share = 0.4  # bf16 costs ~0.63x fp32 here, so re-checking over ~37% of predictions costs more than fp32
    give_up_after = 50   # predictions made before judging: a model with 25% close calls shows over 40% in its
                         # first 20 questions 1 time in 25, in its first 50 about 1 time in 160

    def __init__(self, folder: Path, meta: dict, device: str = "auto", precision: str = "auto"):
        with models.IMPORT_LOCK:  # see core.models.IMPORT_LOCK
            import torch
            import transformers
        self.folder, self.meta = Path(folder), meta
        self.task = tasks.get(folder_task(folder, meta))
        models.quiet()
        self.device, _ = models.choose_device(device, "fp32")
        self.tokenizer = models.load_tokenizer(folder)
        auto = getattr(transformers, self.task.auto_model)
        self.model = auto.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False).to(self.device).eval()
        config = self.model.config
        labels = meta.get("labels") or [config.id2label[i] for i in range(config.num_labels)]
        self.settings = {**meta, "max_length": int(meta.get("max_length") or self.task.default_max_length),
                         "labels": list(labels)}
        self.amp_dtype = None
        self.lock = threading.Lock()  # one forward pass at a time per cached model (Streamlit sessions share it)
        self._choose_precision(precision)

    @classmethod
    def around(cls, model, tokenizer, task, settings: dict, device: str, amp_dtype=None) -> "Predictor":
        """A predictor of a model already in memory (validation while training), in the precision it trains in."""
        predictor = cls.__new__(cls)
        predictor.folder, predictor.meta, predictor.task = None, {}, tasks.get(task)
        predictor.model, predictor.tokenizer, predictor.settings = model, tokenizer, settings
        predictor.device, predictor.amp_dtype, predictor.lock = device, amp_dtype, threading.Lock()
        predictor.precision, predictor.adaptive, predictor.fast_model = "fp32", False, None
        predictor.answered = predictor.rechecked = 0
        return predictor

    def _choose_precision(self, precision: str) -> None:
        precision = requested = (precision or "auto").lower()
        if precision not in ("auto", "fp32", "bf16"):
            raise SettingsError(f"unknown precision '{precision}': use auto, fp32 or bf16")
        if precision == "auto":
            precision = "bf16" if native_bf16(self.device) and self.task.answers_in_bf16(self.settings) else "fp32"
        if precision == "bf16" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise SettingsError(f"bf16 predictions run on the CPU or a CUDA GPU, not on '{self.device}'; use fp32")
        self.precision, self.adaptive = precision, requested == "auto"
        self.answered = 0  # predictions made in bf16 (re-checked or not)
        self.rechecked = 0  # predictions made again in fp32 (close calls), for benchmarks and the curious
        self.fast_model = _with_bf16_linear_layers(self.model) if precision == "bf16" else None

    @property
    def labels(self) -> list[str]:
        return list(self.settings.get("labels") or [])

    # --- the ways to ask ---------------------------------------------------------------------------------
    def predict(self, *values, top_k: int | None = None, **kwargs):
        """One prediction; ``values`` are the task's input fields in order (a text; or a question and a context).
        A single list of texts gives one prediction per text (classification, entities). On the CPU, training runs
        on this machine pause between their steps while one prediction runs (core.cpu_share)."""
        if len(values) == 1 and isinstance(values[0], (list, tuple)):
            return self.predict_batch(values[0], top_k=top_k, **kwargs)
        if self.device.split(":")[0] != "cpu":
            return self.predict_batch(*[[value] for value in values], top_k=top_k, **kwargs)[0]
        with cpu_share.prediction():  # someone waits for this one: training runs on this machine pause meanwhile
            return self.predict_batch(*[[value] for value in values], top_k=top_k, **kwargs)[0]

    def predict_batch(self, *columns, top_k: int | None = None, max_answer_length: int | None = None,
                      batch_size: int = 32) -> list:
        """One prediction per row; ``columns`` are lists, one per input field (texts; or questions, contexts)."""
        names = self.task.input_fields
        if len(columns) != len(names):
            raise ValueError(f"a {self.task.name} model predicts from {', '.join(names)}: give one list each")
        examples = [dict(zip(names, values)) for values in zip(*columns)]
        return self.predict_examples(examples, top_k=top_k, max_answer_length=max_answer_length,
                                     batch_size=batch_size)

    def predict_examples(self, examples: list[dict], top_k: int | None = None, max_answer_length: int | None = None,
                         batch_size: int = 32, features: list[dict] | None = None) -> list:
        """Predictions for examples (dicts holding the task's input fields). ``features``: the examples' features
        when already made (validation reuses them at every evaluation)."""
        settings = dict(self.settings)
        if max_answer_length:
            settings["max_answer_length"] = max_answer_length
        if features is not None or self.precision == "fp32":
            return self._predictions(examples, settings, top_k, batch_size, bf16=False, features=features)
        predictions = []
        for i in range(0, len(examples), batch_size):  # in chunks, so "auto" can change its mind between them
            predictions += self._bf16_chunk(examples[i:i + batch_size], settings, top_k, batch_size)
        return predictions

    def _bf16_chunk(self, examples, settings, top_k, batch_size) -> list:
        if self.precision == "fp32":
            return self._predictions(examples, settings, top_k, batch_size, bf16=False)
        predictions = self._predictions(examples, settings, top_k, batch_size, bf16=True, runners_up=1)
        close = [i for i, ranked in enumerate(predictions) if self._close_call(ranked, top_k or 1)]
        if close:
            exact = self._predictions([examples[i] for i in close], settings, top_k, batch_size, bf16=False)
            for i, ranked in zip(close, exact):
                predictions[i] = ranked
        self.answered += len(examples)
        self.rechecked += len(close)
        if (self.adaptive and self.answered >= self.give_up_after
                and self.rechecked > self.give_up_share * self.answered):
            self.precision = "fp32"  # so many close calls that fp32 alone is faster for this model
        return [self.task.trim(ranked, top_k) for ranked in predictions]

    def _close_call(self, ranked, top_k: int) -> bool:
        return self.task.is_close_call(ranked, top_k, self.recheck_margin)

    # --- the one path ---------------------------------------------------------------------------------------
    def _predictions(self, examples, settings, top_k, batch_size, bf16: bool, runners_up: int = 0,
                     features: list[dict] | None = None) -> list:
        if not examples:
            return []
        if features is None:
            try:
                features = self.task.encode(examples, self.tokenizer, settings, for_eval=True)
            except TaskDataError as error:
                raise PredictorError(str(error)) from None
        outputs = self._outputs(features, batch_size, bf16)
        return self.task.decode(examples, features, outputs, settings, top_k, runners_up)

    def _outputs(self, features: list[dict], batch_size: int, bf16: bool) -> list:
        """The model's outputs for every feature (in feature order), in batches of similar length."""
        import torch
        model = self.fast_model if bf16 else self.model
        dtype = torch.bfloat16 if bf16 else self.amp_dtype
        autocast = torch.autocast(device_type=self.device.split(":")[0], dtype=dtype or torch.float32,
                                  enabled=dtype is not None)
        was_training = model.training
        model.eval()
        pad_id = self.tokenizer.pad_token_id or 0
        order = by_length(features)
        outputs = [None] * len(features)
        with self.lock, torch.inference_mode(), autocast:
            for i in range(0, len(order), batch_size):
                ids = order[i:i + batch_size]
                batch = collate([features[j] for j in ids], pad_id, keys=MODEL_INPUTS)
                out = model(**{k: v.to(self.device) for k, v in batch.items()})
                rows = self.task.outputs(out, [len(features[j]["input_ids"]) for j in ids])
                for j, row in zip(ids, rows):
                    outputs[j] = row
        if was_training:
            model.train()
        return outputs


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
    """Metrics of a trained run on a stored dataset (the task's: accuracy and macro_f1; exact_match and f1; entity
    precision, recall and f1), plus ``examples``, how many labeled rows were scored."""
    predictor = load_predictor(run, precision="fp32")  # metrics: the model's own answers, the same on any machine
    info = storage.get_dataset(dataset)
    task = predictor.task
    if info["task"] != task.name:
        raise PredictorError(f"Run {run} is a {task.name} model but '{dataset}' is a {info['task']} dataset.")
    examples = [e for e in storage.load_examples(dataset) if task.is_labeled(e)]
    try:
        task.check_eval_labels(examples, predictor.labels)
    except TaskDataError as error:
        raise PredictorError(f"'{dataset}': {error}") from None
    result = task.score(examples, predictor.predict_examples(examples), predictor.labels)
    result["examples"] = len(examples)
    return result


def predict_dataset(run: int, dataset: str) -> list[dict]:
    """The model's suggestion for every row of a dataset: {id, value, label, score, ...} (Label page)."""
    predictor = load_predictor(run)
    info = storage.get_dataset(dataset)
    if info["task"] != predictor.task.name:
        raise PredictorError(f"Run {run} is a {predictor.task.name} model but '{dataset}' is a {info['task']} "
                             "dataset.")
    examples = storage.load_examples(dataset)
    predictions = predictor.predict_examples(examples)
    return [{"id": e["id"], **predictor.task.suggestion(p)} for e, p in zip(examples, predictions)]
