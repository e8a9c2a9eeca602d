"""Benchmark 3: training throughput (samples/s) of SpanLab vs the Hugging Face ``Trainer``, in one process.

Workloads (same model = the built-in MiniLM, same data, batch size, seed, device and thread count on every side):

* ``sst2``: 1,024 SST-2 training sentences, sequence classification (max length 128).
* ``qa``: questions of SQuAD v1.1 dev articles, max length 384 with doc stride 128.

Sides:

* ``spanlab``: ``core.training.execute_run`` on a stored dataset (what ``python -m core train`` runs), with a tiny
  evaluation dataset and ``eval_every = steps`` so evaluation does not run inside the measured loop.
* ``trainer_padded``: ``Trainer`` as the example scripts (run_glue / run_qa) run it: every feature padded to the max
  length, ``default_data_collator``, random sampling.
* ``trainer_dynamic``: ``Trainer`` at its best on this data: ``DataCollatorWithPadding`` (pad each batch to its own
  longest row) and ``train_sampling_strategy="group_by_length"``.

Sides are compared in pairs (SpanLab vs one Trainer configuration) that train *in lockstep*: two threads in one
process take turns, one optimizer step each (a ``Turnstile`` that SpanLab meets at each batch collation and the
Trainer in a TrainerCallback; both wait for each other before step 1), so only one side computes at any moment and
the noise of
a shared machine hits both alike. A side's rate is the samples of its measured steps / the summed duration of those
turns (a turn is one whole loop iteration: batch collation, forward, backward, clipping, optimizer, scheduler,
logging, SpanLab's database writes).

* vs ``trainer_dynamic``: measured over one whole epoch (steps 1..E), so both sides process exactly the same samples
  (a partial epoch would compare different slices: Trainer's length-grouped sampler puts each megabatch's longest
  batches first, SpanLab shuffles its batches); 2 more steps run so the window never overlaps the other side's
  wind-down.
* vs ``trainer_padded``: steps 2..N-2 of a short run (Trainer's batches all have one shape there). SpanLab's few
  batches in that window are a seeded sample, so this ratio is indicative only.

Model FLOPs: for the whole-epoch pair, each side's achieved model TFLOP/s is the epoch's model FLOPs (per feature of
n real tokens: 6·P·n for the matmuls of the P non-embedding parameters, forward + backward, plus 12·L·d·n² for
attention scores and values; padding is not counted) / its measured time. On a GPU with a known peak (or
``--peak-tflops``) the table adds model FLOPs utilisation (MFU = achieved / peak).

GPU (benchmark 6): ``--model spanbert-base-random --device cuda --precision bf16`` trains a SpanBERT-base-shaped
BERT (12 layers, hidden 768, 12 heads, 3072 intermediate; random weights, as the hub is unreachable from the
machines this ran on; the built-in tokenizer's vocabulary, or ``--tokenizer FOLDER``'s) on both sides.
``--model`` also takes any model folder. On a GPU two defaults change:

* ``--schedule sequential``: a dedicated GPU has no neighbours' noise to share out, and lockstep would take from
  each side the CPU/GPU overlap it has in real use (a turn must synchronise the device to charge asynchronous
  kernels to the side that launched them). So one side trains, then the other, and the device is synchronised only
  at the two ends of the measured window. ``--schedule lockstep`` is still there (it synchronises at every turn).
* ``--warmup-epochs 1``: every window moves one epoch later. A GPU's first epoch is dominated by one-time costs
  (CUDA loads each kernel on first use, and each new batch shape meets it), which a short window would charge to
  whichever side meets more new shapes in it; the runs users care about are many epochs long.

Pairs repeat over ``--rounds``; tables give the median ratio and its range. The libraries' own figures
("reported": SpanLab's ``train_samples_per_second``, which times the optimizer steps only; Trainer's
``train_samples_per_second`` = samples / wall time of ``train()``, which here includes the other side's turns) are
printed too, but only as a cross-check.

    python bench/throughput.py [--quick] [--rounds 3] [--workloads sst2 qa]
    python bench/throughput.py --model spanbert-base-random --device cuda --precision bf16 --workloads qa sst2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time

import bench_common as bc

# Dense (no sparsity) peak TFLOP/s by GPU name fragment, for bf16/fp16 tensor cores and tf32-free fp32.
PEAK_TFLOPS = {"H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
               "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
               "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
               "L40S": {"bf16": 362.0, "fp16": 362.0, "fp32": 91.6},
               "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3},
               "A10": {"bf16": 125.0, "fp16": 125.0, "fp32": 31.2}}
SPANBERT_BASE_SHAPE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                       "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2}
SETUP = {"model_dir": None, "device": "cpu", "precision": "fp32", "schedule": "lockstep"}  # set once by main(); read by both sides


def resolve_model(name: str, home, tokenizer_dir: str | None = None) -> str:
    """The model folder both sides load: the built-in MiniLM, a SpanBERT-base-shaped random BERT (with the
    tokenizer of ``tokenizer_dir``, default the built-in model's), or a folder."""
    from core import models
    if name == models.BUILTIN_ALIAS:
        return str(models.builtin_folder())
    if name != "spanbert-base-random":
        return name
    import torch
    from transformers import BertConfig, BertModel
    folder = str(home / "spanbert-base-random")  # inside the benchmark's private SPANLAB_HOME
    tokenizer = models.load_tokenizer(tokenizer_dir or models.builtin_folder())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), **SPANBERT_BASE_SHAPE)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def model_flops_per_feature(n_tokens: int, config) -> float:
    """Training FLOPs (forward + backward) of one feature of ``n_tokens`` real tokens (see the module docstring)."""
    d, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * d * d + 2 * d * config.intermediate_size  # attention projections + feed-forward weights
    return 6 * layers * per_layer * n_tokens + 12 * layers * d * n_tokens ** 2


def peak_tflops(precision: str, override: float | None) -> float | None:
    if override:
        return override
    import torch
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    for fragment, peaks in PEAK_TFLOPS.items():
        if fragment in name:
            return peaks[precision]
    return None


# ------------------------------------------------------------------------------------------ workloads
def sst2_workload(n_rows: int, seed: int) -> dict:
    rows = bc.sample_rows(bc.load_sst2("train"), n_rows, seed)
    return {"task": "classification", "max_length": 128, "labels": ["negative", "positive"],
            "texts": [t for t, _ in rows], "label_ids": [y for _, y in rows],
            "description": f"{len(rows)} SST-2 train sentences, max length 128"}


def qa_workload(n_questions: int, seed: int) -> dict:
    questions = bc.squad_questions(bc.load_squad_articles())
    chosen = bc.sample_rows(questions, n_questions, seed)
    return {"task": "qa", "max_length": 384, "doc_stride": 128, "questions": chosen,
            "description": f"{len(chosen)} SQuAD v1.1 dev questions, max length 384, doc stride 128"}


# ------------------------------------------------------------------------------------------ SpanLab side
class _StepClock:
    """Wall and process-CPU time at the end of each optimizer step."""

    def __init__(self):
        self.times: dict[int, float] = {}
        self.cpu: dict[int, float] = {}

    def __call__(self, step: int, total: int | None = None) -> None:
        self.times[step] = time.perf_counter()
        self.cpu[step] = time.process_time()

    def rates(self, batch_size: int) -> tuple[float | None, float | None]:
        """(samples/s, samples per CPU-second) over steps 2..N."""
        last = max(self.times, default=0)
        if last < 2 or 1 not in self.times:
            return None, None
        samples = (last - 1) * batch_size
        return samples / (self.times[last] - self.times[1]), samples / max(1e-9, self.cpu[last] - self.cpu[1])


class Turnstile:
    """Two training loops in two threads take turns, one optimizer step each, so only one computes at a time and
    machine noise hits both alike. ``sync(me, step)`` ends my turn (recording how long it took, labelled with the
    step it completed) and waits for my next one; ``finish`` ends my last turn without waiting."""

    def __init__(self, parties: tuple[str, str], synchronize=None):
        self.parties = parties
        self.synchronize = synchronize  # e.g. torch.cuda.synchronize: a turn ends when its kernels have run
        self.cond = threading.Condition()
        self.turn: str | None = None
        self.done: set[str] = set()
        self.started: dict[str, float] = {}
        self.spans: dict[str, list[tuple[int, float]]] = {p: [] for p in parties}

    def _end_turn(self, me: str, step: int) -> str:
        if self.synchronize is not None:
            self.synchronize()
        now = time.perf_counter()
        if me in self.started:
            self.spans[me].append((step, now - self.started.pop(me)))
        other = self.parties[1] if me == self.parties[0] else self.parties[0]
        self.turn = other
        self.cond.notify_all()
        return other

    def sync(self, me: str, step: int) -> None:
        with self.cond:
            other = self._end_turn(me, step)
            self.cond.wait_for(lambda: self.turn == me or other in self.done)
            self.started[me] = time.perf_counter()

    def finish(self, me: str, step: int) -> None:
        with self.cond:
            if me not in self.done:
                self._end_turn(me, step)
                self.done.add(me)
                self.cond.notify_all()

    def rate(self, me: str, first: int, last: int, samples: int) -> float:
        """Samples/s over the turns that completed steps first..last (``samples`` processed in them)."""
        spans = [d for step, d in self.spans[me] if first <= step <= last]
        return samples / sum(spans) if len(spans) == last - first + 1 else float("nan")


class Sequential:
    """The ``Turnstile`` interface for sides that run one after the other (a dedicated GPU): no per-step
    synchronisation, so each side keeps the CPU/GPU overlap it has in real use; the device is synchronised only at
    the two ends of the measured window (after step first - 1 and after step last)."""

    def __init__(self, parties: tuple[str, str], window: tuple[int, int], synchronize=None):
        self.parties, self.window, self.synchronize = parties, window, synchronize
        self.marks: dict[str, dict[int, float]] = {p: {} for p in parties}

    def sync(self, me: str, step: int) -> None:
        if step in (self.window[0] - 1, self.window[1]) and step not in self.marks[me]:
            if self.synchronize is not None:
                self.synchronize()
            self.marks[me][step] = time.perf_counter()

    def finish(self, me: str, step: int) -> None:
        if step >= 0:
            self.sync(me, step)

    def rate(self, me: str, first: int, last: int, samples: int) -> float:
        marks = self.marks[me]
        return samples / (marks[last] - marks[first - 1]) if first - 1 in marks and last in marks else float("nan")


def spanlab_run(work: dict, steps: int, batch_size: int, seed: int, tag: str,
                turnstile: Turnstile | None = None, party: str = "spanlab") -> dict:
    from core import storage
    from core.training import TrainConfig, execute_run

    if work["task"] == "classification":
        rows = [{"text": t, "label": work["labels"][y], "split": "train"}
                for t, y in zip(work["texts"], work["label_ids"])]
        eval_rows = rows[:4] + [r for r in rows if r["label"] != rows[0]["label"]][:4]
    else:
        rows = [{"context": q["context"], "question": q["question"], "answer_text": q["answer_text"],
                 "answer_start": q["answer_start"], "split": "train"} for q in work["questions"]]
        eval_rows = rows[:4]
    name = f"tp-{tag}"
    if not any(d["name"] == name for d in storage.list_datasets()):
        storage.create_dataset(name, work["task"], rows)
        storage.create_dataset(name + "-eval", work["task"], [{**r, "split": None} for r in eval_rows])
    cfg = TrainConfig(dataset=name, eval_dataset=name + "-eval", model=SETUP["model_dir"], batch_size=batch_size,
                      max_length=work["max_length"], doc_stride=work.get("doc_stride", 128), seed=seed,
                      device=SETUP["device"], precision=SETUP["precision"], max_steps=steps, eval_every=steps,
                      min_steps=steps)
    run_id = storage.create_run(name, work["task"], cfg.model, cfg.to_params(), eval_dataset=cfg.eval_dataset)
    clock = _StepClock()

    def progress(step: int, total: int) -> None:  # called at log steps; every step only in short runs
        if step >= total:
            clock(step)
            if turnstile is not None:
                turnstile.finish(party, step)

    from core import training
    original_collate = training.collate
    calls = [0]

    def collate_at_step_start(*args, **kwargs):  # collate n starts step n, so it ends the turn of step n - 1
        calls[0] += 1
        if calls[0] <= steps:  # later calls are the final evaluation's
            if calls[0] > 1:
                clock(calls[0] - 1)
            if turnstile is not None:
                turnstile.sync(party, calls[0] - 1)
        return original_collate(*args, **kwargs)
    training.collate = collate_at_step_start
    started = time.perf_counter()
    try:
        outcome = execute_run(run_id, progress=progress)
    finally:
        training.collate = original_collate
        if turnstile is not None:
            turnstile.finish(party, -1)
    wall = time.perf_counter() - started
    if outcome.get("status") != "completed":
        raise RuntimeError(f"SpanLab run failed: {outcome}")
    run = storage.get_run(run_id)
    loop, loop_cpu = clock.rates(batch_size)
    return {"reported": outcome["train_samples_per_second"], "loop": loop, "loop_cpu": loop_cpu,
            "steps": int(outcome["step"]),
            "run_wall_s": round(wall, 2), "train_seconds": run["metrics"].get("train_seconds")}


# ------------------------------------------------------------------------------------------ Trainer side
def _trainer_features(work: dict, tokenizer, padded: bool):
    from datasets import Dataset
    if work["task"] == "classification":
        enc = tokenizer(work["texts"], truncation=True, max_length=work["max_length"],
                        padding="max_length" if padded else False)
        return Dataset.from_dict({**{k: enc[k] for k in enc.keys()}, "labels": work["label_ids"]})
    from qa_quality import hf_prepare_train_features
    qs = work["questions"]
    enc = hf_prepare_train_features([q["question"] for q in qs], [q["context"] for q in qs],
                                    [q["answer_text"] for q in qs], [q["answer_start"] for q in qs], tokenizer,
                                    work["max_length"], work["doc_stride"], pad_to_max_length=padded)
    return Dataset.from_dict(enc)


def trainer_run(work: dict, steps: int, batch_size: int, seed: int, dynamic: bool, cache: dict,
                turnstile: Turnstile | None = None, party: str = "trainer") -> dict:
    import torch
    from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments,
                              default_data_collator, set_seed)
    from core import models

    folder = SETUP["model_dir"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    key = (id(work), dynamic)
    if key not in cache:
        cache[key] = _trainer_features(work, tokenizer, padded=not dynamic)
    dataset = cache[key]
    set_seed(seed)
    models.quiet()
    if work["task"] == "classification":
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(work["labels"]),
                                                                   dtype=torch.float32)
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=torch.float32)

    clock = _StepClock()

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if turnstile is not None:  # the turn that just ended completed step global_step
                turnstile.sync(party, state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            clock(state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if turnstile is not None:
                turnstile.finish(party, state.global_step)

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, seed=seed,
            learning_rate=1e-4 if work["task"] == "classification" else 6e-5, weight_decay=0.01,
            warmup_steps=max(1, int(0.1 * steps)), max_grad_norm=1.0, use_cpu=SETUP["device"] == "cpu",
            bf16=SETUP["precision"] == "bf16", fp16=SETUP["precision"] == "fp16", report_to="none",
            save_strategy="no", eval_strategy="no", logging_steps=500, disable_tqdm=True,
            dataloader_num_workers=0,
            train_sampling_strategy="group_by_length" if dynamic else "random")
        trainer = Trainer(model=model, args=args, train_dataset=dataset, callbacks=[Clock()],
                          data_collator=DataCollatorWithPadding(tokenizer) if dynamic else default_data_collator)
        started = time.perf_counter()
        try:
            metrics = trainer.train().metrics
        finally:
            if turnstile is not None:
                turnstile.finish(party, -1)
        wall = time.perf_counter() - started
    loop, loop_cpu = clock.rates(batch_size)
    return {"reported": metrics["train_samples_per_second"], "loop": loop, "loop_cpu": loop_cpu,
            "steps": max(clock.times),
            "run_wall_s": round(wall, 2), "optim": args.optim}


# ------------------------------------------------------------------------------------------ driver
def run_side(side: str, work: dict, steps: int, batch_size: int, seed: int, tag: str, cache: dict,
             turnstile: Turnstile | None = None) -> dict:
    if side == "spanlab":
        return spanlab_run(work, steps, batch_size, seed, tag, turnstile=turnstile, party=side)
    return trainer_run(work, steps, batch_size, seed, dynamic=side == "trainer_dynamic", cache=cache,
                       turnstile=turnstile, party=side)


def _preload() -> None:
    """Import everything both threads use before they start: transformers' lazy imports are not thread-safe."""
    import datasets  # noqa: F401
    import transformers
    from core import inference, models, storage, training  # noqa: F401
    from core.tasks import classification, qa  # noqa: F401
    for name in ("get_linear_schedule_with_warmup", "set_seed", "Trainer", "TrainingArguments", "TrainerCallback",
                 "DataCollatorWithPadding", "default_data_collator", "AutoTokenizer", "AutoModelForQuestionAnswering",
                 "AutoModelForSequenceClassification", "BertForQuestionAnswering", "BertForSequenceClassification"):
        getattr(transformers, name)


def run_pair(pair: tuple[str, str], work: dict, steps: int, window: tuple[int, int], samples: int, batch_size: int,
             seed: int, tag: str, cache: dict) -> dict:
    """Both sides of ``pair`` in two threads, taking turns step by step (see Turnstile); rates over the steps in
    ``window`` (inclusive), which must leave out step 1 and the last two (they overlap the other side's start-up or
    wind-down)."""
    _preload()
    import torch
    synchronize = torch.cuda.synchronize if SETUP["device"].startswith("cuda") else None
    sequential = SETUP["schedule"] == "sequential"
    turnstile = Sequential(pair, window, synchronize) if sequential else Turnstile(pair, synchronize)
    results, errors = {}, {}

    def target(side: str) -> None:
        try:
            results[side] = run_side(side, work, steps, batch_size, seed, tag, cache, turnstile)
        except BaseException as exc:  # reported after join
            errors[side] = exc
            turnstile.finish(side, -1)

    threads = [threading.Thread(target=target, args=(side,), name=side) for side in pair]
    for thread in threads:
        thread.start()
        if sequential:
            thread.join()
    for thread in threads:
        thread.join()
    if errors:
        side, exc = next(iter(errors.items()))
        raise RuntimeError(f"{side} failed: {exc!r}") from exc
    for side in pair:
        results[side]["lockstep"] = turnstile.rate(side, window[0], window[1], samples)
    return results


def trainer_feature_lengths(work: dict) -> list[int]:
    """The real (unpadded) token count of every training feature (row / QA window) of one epoch."""
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(SETUP["model_dir"])
    if work["task"] == "classification":
        return [len(ids) for ids in tokenizer(work["texts"], truncation=True, max_length=work["max_length"])["input_ids"]]
    from qa_quality import hf_prepare_train_features
    qs = work["questions"]
    return [len(ids) for ids in hf_prepare_train_features(
        [q["question"] for q in qs], [q["context"] for q in qs], [q["answer_text"] for q in qs],
        [q["answer_start"] for q in qs], tokenizer, work["max_length"], work["doc_stride"],
        pad_to_max_length=False)["input_ids"]]


def run_workload(name: str, work: dict, padded_steps: int, batch_size: int, rounds: int, seed: int,
                 pairs: list[tuple[str, str]], peak: float | None = None, warmup_epochs: int = 0) -> dict:
    from transformers import AutoConfig
    lengths = trainer_feature_lengths(work)
    n_features = len(lengths)
    model_config = AutoConfig.from_pretrained(SETUP["model_dir"])
    epoch_flops = sum(model_flops_per_feature(n, model_config) for n in lengths)
    epoch = -(-n_features // batch_size)
    # dynamic pairs: measured over one whole epoch (steps 1..E: both sides process every sample once, so neither
    # gets a cheaper slice), 2 more steps run so the window never overlaps the other side's wind-down.
    # padded pairs (Trainer's batches all have one shape): steps 2..N-2.
    # With W warm-up epochs (GPU: the first epoch meets every batch shape for the first time, and CUDA loads each
    # kernel on first use) every window moves W epochs later.
    w = warmup_epochs * epoch
    plan = {"trainer_dynamic": (w + epoch + 2, (w + 1, w + epoch), n_features),
            "trainer_padded": (w + padded_steps, (w + 2, w + padded_steps - 2), (padded_steps - 3) * batch_size)}
    print(f"\n== {name}: {work['description']}; batch size {batch_size}; (steps, measured window) per pair {plan}")
    cache: dict = {}
    runs = {pair: [] for pair in pairs}
    steps = {side: plan[side][0] for side in plan}
    for r in range(rounds):
        for pair in pairs:
            result = run_pair(pair, work, *plan[pair[1]], batch_size, seed, name, cache)
            runs[pair].append(result)
            a, b = (result[side] for side in pair)
            print(f"  round {r + 1}: {pair[0]} {a['lockstep']:.1f} vs {pair[1]} {b['lockstep']:.1f} samples/s "
                  f"{SETUP['schedule']} = {a['lockstep'] / b['lockstep']:.2f}x   (reported {a['reported']:.1f} vs "
                  f"{b['reported']:.1f})", flush=True)
    rows, summary = [], {}
    for pair, results in runs.items():
        ratios = [res[pair[0]]["lockstep"] / res[pair[1]]["lockstep"] for res in results]
        entry = {"pair": f"{pair[0]} vs {pair[1]}", "steps": steps[pair[1]], "measured steps": plan[pair[1]][1],
                 f"{pair[0]} samples/s": statistics.median(res[pair[0]]["lockstep"] for res in results),
                 "other samples/s": statistics.median(res[pair[1]]["lockstep"] for res in results),
                 "ratio (median)": statistics.median(ratios), "ratio min": min(ratios), "ratio max": max(ratios),
                 "reported ratio": statistics.median(res[pair[0]]["reported"] / res[pair[1]]["reported"]
                                                     for res in results)}
        summary[f"{pair[0]} vs {pair[1]}"] = {**entry, "runs": results}
        if pair[1] == "trainer_dynamic":  # whole epoch: every side did epoch_flops of model work
            for key, rate in (("spanlab TFLOP/s", entry[f"{pair[0]} samples/s"]),
                              ("other TFLOP/s", entry["other samples/s"])):
                entry[key] = epoch_flops * rate / n_features / 1e12
                if peak:
                    entry[key.replace("TFLOP/s", "MFU")] = entry[key] / peak
        rows.append({**entry, "spanlab side": pair[0], "other side": pair[1],
                     "spanlab samples/s": entry[f"{pair[0]} samples/s"]})
    columns = ["spanlab side", "other side", "steps", "measured steps", "spanlab samples/s", "other samples/s",
               "ratio (median)", "ratio min", "ratio max", "reported ratio", "spanlab TFLOP/s", "other TFLOP/s"]
    if peak:
        columns += ["spanlab MFU", "other MFU"]
    table = bc.print_table(rows, columns, title=f"{name}: {SETUP['schedule']} pairs, medians of {rounds} rounds")
    vs = {r["other side"]: r["ratio (median)"] for r in rows if r["spanlab side"] == "spanlab"}
    best_trainer = min(vs, key=vs.get)  # the Trainer configuration SpanLab is least far ahead of
    verdicts = {}
    for row in rows:
        if row["other side"] == best_trainer:
            ok = row["ratio (median)"] >= 1.1
            verdicts[row["spanlab side"]] = row["ratio (median)"]
            print(f"{row['spanlab side']} / {best_trainer} = {row['ratio (median)']:.2f}x: "
                  f"{'meets' if ok else 'MISSES'} the >= 1.1x target")
    return {"description": work["description"], "batch_size": batch_size, "epoch_model_tflops": epoch_flops / 1e12,
            "peak_tflops": peak, "best_trainer": best_trainer,
            "ratios_vs_best_trainer": verdicts, "summary": summary, "table": rows, "markdown": table}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps, 1 round: for checking the script works")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["sst2", "qa"], choices=["sst2", "qa"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sst2-rows", type=int, default=1024)
    parser.add_argument("--qa-questions", type=int, default=512)
    parser.add_argument("--padded-steps", type=int, default=8,
                        help="SST-2 steps for Trainer padded to max length (all batches have one shape)")
    parser.add_argument("--qa-padded-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on every side (default: torch's)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model", default="builtin-minilm",
                        help="builtin-minilm (default), spanbert-base-random (SpanBERT-base shape, random weights) "
                             "or a model folder; both sides load the same one")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer folder for spanbert-base-random (default: the built-in MiniLM's), so a machine "
                             "without the built-in package can run it")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--schedule", choices=["lockstep", "sequential"], default=None,
                        help="lockstep (default on the CPU: the sides take turns step by step, so a shared "
                             "machine's noise hits both alike) or sequential (default on a GPU: one side, then the "
                             "other, each keeping its own CPU/GPU overlap; the device is synchronised only at the "
                             "ends of the measured window)")
    parser.add_argument("--warmup-epochs", type=int, default=None,
                        help="epochs trained before the measured window (default: 1 on a GPU, 0 on the CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense peak for --precision, for MFU (default: known GPUs by name)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.padded_steps, args.qa_padded_steps, args.sst2_rows, args.qa_questions = 1, 5, 5, 256, 96

    paths = {"sst2": "sst2/train.tsv", "qa": "squad_v1.1/dev-v1.1.json"}
    home, info = bc.start_training_bench(*(paths[w] for w in args.workloads), threads=args.threads,
                                         needs_builtin=args.model == "builtin-minilm"
                                         or (args.model == "spanbert-base-random" and not args.tokenizer))

    on_gpu = args.device != "cpu"
    args.schedule = args.schedule or ("sequential" if on_gpu else "lockstep")
    args.warmup_epochs = args.warmup_epochs if args.warmup_epochs is not None else int(on_gpu)
    SETUP.update(model_dir=resolve_model(args.model, home, args.tokenizer), device=args.device,
                 precision=args.precision, schedule=args.schedule)
    peak = peak_tflops(args.precision, args.peak_tflops) if args.device != "cpu" or args.peak_tflops else None
    print(f"model {args.model} ({SETUP['model_dir']}), device {args.device}, precision {args.precision}, "
          f"peak {peak or 'unknown'} TFLOP/s, schedule {args.schedule}, warm-up epochs {args.warmup_epochs}")
    results = {"machine": info, "args": vars(args), "spanlab_home": str(home), "model_dir": SETUP["model_dir"],
               "workloads": {}}
    pairs = [("spanlab", "trainer_dynamic"), ("spanlab", "trainer_padded")]
    if "sst2" in args.workloads:
        results["workloads"]["sst2"] = run_workload("sst2", sst2_workload(args.sst2_rows, args.seed),
                                                    args.padded_steps,
                                                    args.batch_size, args.rounds, args.seed, pairs, peak,
                                                    args.warmup_epochs)
    if "qa" in args.workloads:
        results["workloads"]["qa"] = run_workload("qa", qa_workload(args.qa_questions, args.seed),
                                                  args.qa_padded_steps,
                                                  args.batch_size, args.rounds, args.seed, pairs, peak,
                                                  args.warmup_epochs)
    suffix = ("" if args.device == "cpu" else "-" + args.device.replace(":", "")) + ("-quick" if args.quick else "")
    bc.write_results("throughput" + suffix, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
