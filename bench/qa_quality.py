"""Benchmark 2: extractive QA quality of SpanLab's QA training vs the Hugging Face ``run_qa`` recipe.

Data: SQuAD v1.1 dev, split by article (seeded): the questions of some articles train (about
``--train-questions``), a seeded sample of the questions of the other articles evaluates, so no context is seen on
both sides. Both sides use the built-in MiniLM backbone and the same training questions (first gold answer), and are
scored on the same evaluation questions with the official SQuAD EM/F1 (max over all gold answers).

* SpanLab: the app's default recipe, unchanged: the training questions become a stored QA dataset and
  ``core.training.execute_run`` trains with every setting left automatic (it holds out 20% of the training
  contexts for validation/early stopping, so it trains on fewer questions than the reference); answers come from
  ``core.inference.QAPredictor``.
* Reference: ``examples/pytorch/question-answering/run_qa.py`` reimplemented faithfully with ``Trainer``
  (transformers 5 still has Trainer; the example's ``prepare_train_features`` / ``prepare_validation_features``
  and ``utils_qa.postprocess_qa_predictions`` are copied below), with the hyperparameters of its README
  (batch 12, learning rate 3e-5, 2 epochs, max length 384, doc stride 128, padding to max length).

Same budget: with ``--max-steps S`` (a CPU-sized run), SpanLab's run is capped at S optimizer steps (its schedule
is laid out over them) and the reference gets the same number of training samples (``ceil(S * 16 / 12)`` steps of
12, its linear schedule laid out over them): both see the same amount of data; the reference, padding every feature
to 384 tokens, spends more wall time on it. Without ``--max-steps`` both run their full recipes (SpanLab: every
setting automatic; run_qa: 2 epochs). Both wall times are reported.

    python bench/qa_quality.py [--quick] [--train-questions 1000] [--eval-questions 500] [--max-steps 64]
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time

import numpy as np

import bench_common as bc

RUN_QA = {"per_device_train_batch_size": 12, "learning_rate": 3e-5, "num_train_epochs": 2.0, "max_seq_length": 384,
          "doc_stride": 128, "n_best_size": 20, "max_answer_length": 30, "pad_to_max_length": True}


# ------------------------------------------------------------------------------------------ run_qa recipe
def _tokenize_windows(questions, contexts, tokenizer, max_seq_length, doc_stride, pad_to_max_length):
    """The tokenizer call both run_qa.py feature functions make: question + context windows with a stride."""
    pad_on_right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in questions]
    return tokenizer(
        questions if pad_on_right else contexts,
        contexts if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_seq_length, stride=doc_stride, return_overflowing_tokens=True,
        return_offsets_mapping=True, padding="max_length" if pad_to_max_length else False)


def hf_prepare_train_features(questions, contexts, answer_texts, answer_starts, tokenizer, max_seq_length=384,
                              doc_stride=128, pad_to_max_length=True) -> dict:
    """run_qa.py ``prepare_train_features`` (SQuAD v1: one gold answer per training question)."""
    pad_on_right = tokenizer.padding_side == "right"
    tokenized = _tokenize_windows(questions, contexts, tokenizer, max_seq_length, doc_stride, pad_to_max_length)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    offset_mapping = tokenized.pop("offset_mapping")
    start_positions, end_positions = [], []
    for i, offsets in enumerate(offset_mapping):
        input_ids = tokenized["input_ids"][i]
        if tokenizer.cls_token_id in input_ids:
            cls_index = input_ids.index(tokenizer.cls_token_id)
        elif tokenizer.bos_token_id in input_ids:
            cls_index = input_ids.index(tokenizer.bos_token_id)
        else:
            cls_index = 0
        sequence_ids = tokenized.sequence_ids(i)
        sample_index = sample_mapping[i]
        start_char = answer_starts[sample_index]
        end_char = start_char + len(answer_texts[sample_index])
        token_start_index = 0
        while sequence_ids[token_start_index] != (1 if pad_on_right else 0):
            token_start_index += 1
        token_end_index = len(input_ids) - 1
        while sequence_ids[token_end_index] != (1 if pad_on_right else 0):
            token_end_index -= 1
        if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
            start_positions.append(cls_index)
            end_positions.append(cls_index)
        else:
            while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                token_start_index += 1
            start_positions.append(token_start_index - 1)
            while offsets[token_end_index][1] >= end_char:
                token_end_index -= 1
            end_positions.append(token_end_index + 1)
    out = {k: tokenized[k] for k in tokenized.keys()}
    out["start_positions"], out["end_positions"] = start_positions, end_positions
    return out


def hf_prepare_validation_features(ids, questions, contexts, tokenizer, max_seq_length=384, doc_stride=128,
                                   pad_to_max_length=True) -> dict:
    """run_qa.py ``prepare_validation_features``: example_id per feature, offsets of non-context tokens = None."""
    pad_on_right = tokenizer.padding_side == "right"
    tokenized = _tokenize_windows(questions, contexts, tokenizer, max_seq_length, doc_stride, pad_to_max_length)
    sample_mapping = tokenized.pop("overflow_to_sample_mapping")
    out = {k: tokenized[k] for k in tokenized.keys()}
    out["example_id"] = []
    context_index = 1 if pad_on_right else 0
    for i in range(len(out["input_ids"])):
        sequence_ids = tokenized.sequence_ids(i)
        out["example_id"].append(ids[sample_mapping[i]])
        out["offset_mapping"][i] = [(o if sequence_ids[k] == context_index else None)
                                    for k, o in enumerate(out["offset_mapping"][i])]
    return out


def hf_postprocess_qa_predictions(examples: list[dict], features: dict, all_start_logits, all_end_logits,
                                  n_best_size=20, max_answer_length=30) -> dict[str, str]:
    """utils_qa.py ``postprocess_qa_predictions`` for SQuAD v1 (version_2_with_negative=False): id -> answer text."""
    example_id_to_index = {e["id"]: i for i, e in enumerate(examples)}
    features_per_example = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        features_per_example[example_id_to_index[example_id]].append(i)
    all_predictions = collections.OrderedDict()
    for example_index, example in enumerate(examples):
        prelim_predictions = []
        for feature_index in features_per_example[example_index]:
            start_logits = all_start_logits[feature_index]
            end_logits = all_end_logits[feature_index]
            offset_mapping = features["offset_mapping"][feature_index]
            start_indexes = np.argsort(start_logits)[-1: -n_best_size - 1: -1].tolist()
            end_indexes = np.argsort(end_logits)[-1: -n_best_size - 1: -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    if (start_index >= len(offset_mapping) or end_index >= len(offset_mapping)
                            or offset_mapping[start_index] is None or len(offset_mapping[start_index]) < 2
                            or offset_mapping[end_index] is None or len(offset_mapping[end_index]) < 2):
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    prelim_predictions.append({
                        "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                        "score": start_logits[start_index] + end_logits[end_index]})
        predictions = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]
        context = example["context"]
        for pred in predictions:
            offsets = pred.pop("offsets")
            pred["text"] = context[offsets[0]: offsets[1]]
        if len(predictions) == 0 or (len(predictions) == 1 and predictions[0]["text"] == ""):
            predictions.insert(0, {"text": "empty", "score": 0.0})
        all_predictions[example["id"]] = predictions[0]["text"]
    return all_predictions


def run_reference(train: list[dict], evaluation: list[dict], seed: int, max_steps: int | None) -> dict:
    """The run_qa recipe with Trainer: train on ``train``, predict ``evaluation``; returns predictions and timings."""
    import torch
    from datasets import Dataset
    from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments,
                              default_data_collator, set_seed)
    from core import models

    started = time.perf_counter()
    folder = models.builtin_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    max_len = min(RUN_QA["max_seq_length"], tokenizer.model_max_length)
    set_seed(seed)
    models.quiet()
    model = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=torch.float32)
    train_features = hf_prepare_train_features(
        [q["question"] for q in train], [q["context"] for q in train], [q["answer_text"] for q in train],
        [q["answer_start"] for q in train], tokenizer, max_len, RUN_QA["doc_stride"], RUN_QA["pad_to_max_length"])
    with tempfile.TemporaryDirectory(prefix="bench-run-qa-") as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=RUN_QA["per_device_train_batch_size"],
            per_device_eval_batch_size=64, learning_rate=RUN_QA["learning_rate"],
            num_train_epochs=RUN_QA["num_train_epochs"], max_steps=max_steps or -1, seed=seed, use_cpu=True,
            report_to="none", save_strategy="no", eval_strategy="no", logging_steps=500, disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict(train_features),
                          data_collator=default_data_collator, processing_class=tokenizer)
        train_metrics = trainer.train().metrics
        train_seconds = time.perf_counter() - started
        predict_started = time.perf_counter()
        eval_features = hf_prepare_validation_features(
            [q["id"] for q in evaluation], [q["question"] for q in evaluation], [q["context"] for q in evaluation],
            tokenizer, max_len, RUN_QA["doc_stride"], RUN_QA["pad_to_max_length"])
        model_inputs = Dataset.from_dict({k: v for k, v in eval_features.items()
                                          if k not in ("offset_mapping", "example_id")})
        start_logits, end_logits = trainer.predict(model_inputs).predictions
    answers = hf_postprocess_qa_predictions(evaluation, eval_features, start_logits, end_logits,
                                            RUN_QA["n_best_size"], RUN_QA["max_answer_length"])
    return {"predictions": [answers[q["id"]] for q in evaluation], "train_seconds": train_seconds,
            "predict_seconds": time.perf_counter() - predict_started,
            "train_features": len(train_features["input_ids"]), "steps": trainer.state.global_step,
            "train_samples_per_second": train_metrics.get("train_samples_per_second"),
            "settings": {**RUN_QA, "max_steps": max_steps}}


# ------------------------------------------------------------------------------------------ SpanLab side
def run_spanlab(train: list[dict], evaluation: list[dict], seed: int, max_steps: int | None) -> dict:
    from core import inference, models, storage
    from core.training import TrainConfig, execute_run

    started = time.perf_counter()
    rows = [{"context": q["context"], "question": q["question"], "answer_text": q["answer_text"],
             "answer_start": q["answer_start"], "qid": q["id"]} for q in train]
    storage.create_dataset("squad-train", "qa", rows)
    cfg = TrainConfig(dataset="squad-train", model=models.BUILTIN_ALIAS, seed=seed, max_steps=max_steps)
    run_id = storage.create_run(cfg.dataset, "qa", cfg.model, cfg.to_params())
    outcome = execute_run(run_id)
    if outcome.get("status") != "completed":
        raise RuntimeError(f"SpanLab QA training failed: {outcome.get('error')}")
    train_seconds = time.perf_counter() - started
    run = storage.get_run(run_id)
    predict_started = time.perf_counter()
    predictor = inference.load_predictor(run_id, precision="fp32")  # scored as `python -m core evaluate` scores
    answers = predictor.predict_batch([q["question"] for q in evaluation], [q["context"] for q in evaluation])
    params = run["params"]
    return {"predictions": [a[0]["answer"] if a else "" for a in answers], "train_seconds": train_seconds,
            "predict_seconds": time.perf_counter() - predict_started, "steps": run["step"],
            "planned_samples": run["total_steps"] * cfg.batch_size,
            "train_samples_per_second": run.get("train_samples_per_second"),
            "validation_f1": run["metrics"].get("f1"), "best_step": run["metrics"].get("best_step"),
            "stopped": run["metrics"].get("stopped"), "device": run.get("device"), "model_dir": run["artifact_dir"],
            "settings": {k: params.get(k) for k in ("learning_rate", "epochs", "batch_size", "max_length",
                                                     "doc_stride", "warmup_ratio", "weight_decay", "n_train",
                                                     "n_validation", "max_steps")}}


# ------------------------------------------------------------------------------------------ driver
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and a step cap, to check the script")
    parser.add_argument("--train-questions", type=int, default=1000)
    parser.add_argument("--eval-questions", type=int, default=500)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="cap SpanLab's steps; the reference gets the same number of training samples")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_questions, args.eval_questions, args.max_steps = 200, 100, args.max_steps or 20

    home, info = bc.start_training_bench("squad_v1.1/dev-v1.1.json", threads=args.threads)

    from core.tasks.qa import squad_metrics
    train_articles, eval_articles = bc.split_squad_by_article(bc.load_squad_articles(), args.train_questions,
                                                              args.seed)
    train = bc.squad_questions(train_articles)
    evaluation = bc.sample_rows(bc.squad_questions(eval_articles), args.eval_questions, args.seed)
    print(f"train: {len(train)} questions from {len(train_articles)} articles; evaluation: {len(evaluation)} "
          f"questions from {len({q['title'] for q in evaluation})} other articles")

    references = [q["answers"] for q in evaluation]
    results = {}
    for side, runner in (("spanlab", run_spanlab), ("hf_run_qa", run_reference)):
        print(f"-- {side} ...", flush=True)
        steps = args.max_steps
        if side == "hf_run_qa" and args.max_steps:  # the same number of training samples as SpanLab's run
            steps = -(-results["spanlab"]["planned_samples"] // RUN_QA["per_device_train_batch_size"])
        out = runner(train, evaluation, args.seed, steps)
        out.update(squad_metrics(out["predictions"], references))
        results[side] = out
        print(f"   EM {out['exact_match']:.1f}  F1 {out['f1']:.1f}  train {out['train_seconds']:.0f} s  "
              f"predict {out['predict_seconds']:.0f} s  ({out['steps']} steps)", flush=True)

    rows = [{"side": side, "EM": r["exact_match"], "F1": r["f1"], "train wall s": r["train_seconds"],
             "predict wall s": r["predict_seconds"], "steps": r["steps"]} for side, r in results.items()]
    bc.print_table(rows, ["side", "EM", "F1", "train wall s", "predict wall s", "steps"],
                   title=f"SQuAD v1.1 dev split by article: {len(train)} train / {len(evaluation)} eval questions")
    delta = results["spanlab"]["f1"] - results["hf_run_qa"]["f1"]
    print(f"SpanLab model folder (for bench/qa_latency.py --model-dir): {results['spanlab']['model_dir']}")
    print(f"F1 SpanLab - run_qa = {delta:+.1f}: {'meets' if delta >= 0 else 'MISSES'} the F1 >= reference target")
    agree = np.mean([a == b for a, b in zip(results["spanlab"]["predictions"], results["hf_run_qa"]["predictions"])])
    for r in results.values():
        r["sample_predictions"] = r.pop("predictions")[:20]
    bc.write_results("qa_quality" + ("-quick" if args.quick else ""), {
        "machine": info, "args": vars(args), "spanlab_home": str(home),
        "split": {"train_questions": len(train), "train_articles": [a["title"] for a in train_articles],
                  "eval_questions": len(evaluation)},
        "results": results, "f1_delta": delta, "answer_agreement": float(agree), "table": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
