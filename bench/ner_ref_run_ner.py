#!/usr/bin/env python
"""The ``run_ner`` side of bench/ner_quality.py: Hugging Face's ``examples/pytorch/token-classification/run_ner.py``
(the version that targets transformers 5.8, ``check_min_version("5.8.0")``), reimplemented on the main venv's
transformers 5.23 ``Trainer`` and run the way a user runs the script:

    python bench/ner_ref_run_ner.py --model_name_or_path MODEL --train_file train.json --output_dir OUT --do_train \
        --bench_test_file test.jsonl --bench_output_file result.json

What is the example's, unchanged: its argument dataclasses (``HfArgumentParser`` with ``TrainingArguments``, so
every training setting is the library default unless given on the command line: learning rate 5e-5, 3 epochs,
batch 8, weight decay 0, linear schedule, no warmup, seed 42, a checkpoint every 500 steps), label list = the sorted
labels of the training file, ``AutoConfig(num_labels, finetuning_task)`` + ``AutoModelForTokenClassification``,
``tokenize_and_align_labels`` (first sub-token of each word labelled, -100 on the others and on special tokens:
``label_all_tokens`` False; truncation to the model's maximum; no padding at tokenization: ``pad_to_max_length``
False), ``DataCollatorForTokenClassification`` (padding to the longest in the batch), ``Trainer.train()``,
``save_model()``, ``save_metrics`` / ``save_state``.

What differs, and why:

* data only from local JSON files (``--train_file``); no ``--dataset_name`` (the Hub is offline here);
* no ``--do_eval`` path: it loads its metric with ``evaluate.load("seqeval")``, a Hub download (the orchestrator
  scores every side itself with seqeval);
* prediction: instead of ``--test_file`` + ``--do_predict`` (which tokenizes the test file with its gold labels
  before training and fails on a test label the training sample lacks), after the model is saved the script writes
  the time it was saved, tokenizes ``--bench_test_file`` (tokens only) as the example does, runs
  ``trainer.predict`` (batch ``per_device_eval_batch_size``, default 8) and keeps the first sub-token's argmax per
  word, the positions the example keeps (labels != -100); a word cut off by truncation gets "O". That part is timed
  separately (model already loaded) and everything goes to ``--bench_output_file`` as JSON;
* no model card / Hub push at the end.
"""
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field

import datasets
import numpy as np
from datasets import ClassLabel, Dataset, load_dataset

import transformers
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    HfArgumentParser,
    PreTrainedConfig,
    Trainer,
    TrainingArguments,
    set_seed,
)

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Path to pretrained model or model identifier"})
    config_name: str | None = field(default=None)
    tokenizer_name: str | None = field(default=None)
    cache_dir: str | None = field(default=None)
    model_revision: str = field(default="main")
    token: str = field(default=None)
    trust_remote_code: bool = field(default=False)
    ignore_mismatched_sizes: bool = field(default=False)


@dataclass
class DataTrainingArguments:
    task_name: str | None = field(default="ner")
    train_file: str | None = field(default=None, metadata={"help": "The input training data file (csv or JSON)."})
    text_column_name: str | None = field(default=None)
    label_column_name: str | None = field(default=None)
    overwrite_cache: bool = field(default=False)
    preprocessing_num_workers: int | None = field(default=None)
    max_seq_length: int = field(default=None)
    pad_to_max_length: bool = field(default=False)
    max_train_samples: int | None = field(default=None)
    label_all_tokens: bool = field(default=False)

    def __post_init__(self):
        if self.train_file is None:
            raise ValueError("Need a training file.")
        extension = self.train_file.split(".")[-1]
        assert extension in ["csv", "json"], "`train_file` should be a csv or a json file."
        self.task_name = self.task_name.lower()


@dataclass
class BenchArguments:
    bench_test_file: str | None = field(default=None, metadata={"help": "JSON lines with a 'tokens' list each"})
    bench_output_file: str | None = field(default=None, metadata={"help": "where the timings and tags go (JSON)"})


def main():
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments, BenchArguments))
    model_args, data_args, training_args, bench_args = parser.parse_args_into_dataclasses()

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank: {training_args.local_process_index}, device: {training_args.device}, "
        f"n_gpu: {training_args.n_gpu}, "
        + f"distributed training: {training_args.parallel_mode.value == 'distributed'}, "
        f"16-bits training: {training_args.fp16}"
    )
    logger.info(f"Training/evaluation parameters {training_args}")

    set_seed(training_args.seed)

    data_files = {"train": data_args.train_file}
    extension = data_args.train_file.split(".")[-1]
    raw_datasets = load_dataset(extension, data_files=data_files, cache_dir=model_args.cache_dir)

    column_names = raw_datasets["train"].column_names
    features = raw_datasets["train"].features
    if data_args.text_column_name is not None:
        text_column_name = data_args.text_column_name
    elif "tokens" in column_names:
        text_column_name = "tokens"
    else:
        text_column_name = column_names[0]
    if data_args.label_column_name is not None:
        label_column_name = data_args.label_column_name
    elif f"{data_args.task_name}_tags" in column_names:
        label_column_name = f"{data_args.task_name}_tags"
    else:
        label_column_name = column_names[1]

    def get_label_list(labels):
        unique_labels = set()
        for label in labels:
            unique_labels = unique_labels | set(label)
        label_list = list(unique_labels)
        label_list.sort()
        return label_list

    labels_are_int = isinstance(features[label_column_name].feature, ClassLabel)
    if labels_are_int:
        label_list = features[label_column_name].feature.names
        label_to_id = {i: i for i in range(len(label_list))}
    else:
        label_list = get_label_list(raw_datasets["train"][label_column_name])
        label_to_id = {l: i for i, l in enumerate(label_list)}
    num_labels = len(label_list)

    config = AutoConfig.from_pretrained(
        model_args.config_name if model_args.config_name else model_args.model_name_or_path,
        num_labels=num_labels,
        finetuning_task=data_args.task_name,
        cache_dir=model_args.cache_dir,
        revision=model_args.model_revision,
        token=model_args.token,
        trust_remote_code=model_args.trust_remote_code,
    )
    tokenizer_name_or_path = model_args.tokenizer_name if model_args.tokenizer_name else model_args.model_name_or_path
    tokenizer_kwargs = {}
    if config.model_type in {"bloom", "gpt2", "roberta", "deberta"}:
        tokenizer_kwargs["add_prefix_space"] = True
    tokenizer = AutoTokenizer.from_pretrained(
        tokenizer_name_or_path,
        cache_dir=model_args.cache_dir,
        use_fast=True,
        revision=model_args.model_revision,
        token=model_args.token,
        trust_remote_code=model_args.trust_remote_code,
        **tokenizer_kwargs,
    )
    model = AutoModelForTokenClassification.from_pretrained(
        model_args.model_name_or_path,
        config=config,
        cache_dir=model_args.cache_dir,
        revision=model_args.model_revision,
        token=model_args.token,
        trust_remote_code=model_args.trust_remote_code,
        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
    )
    if not (hasattr(tokenizer, "_tokenizer") or getattr(tokenizer, "is_fast", False)):
        raise TypeError("This example script only works for models that have a fast tokenizer.")

    if model.config.label2id != PreTrainedConfig(num_labels=num_labels).label2id:
        if sorted(model.config.label2id.keys()) == sorted(label_list):
            if labels_are_int:
                label_to_id = {i: int(model.config.label2id[l]) for i, l in enumerate(label_list)}
                label_list = [model.config.id2label[i] for i in range(num_labels)]
            else:
                label_list = [model.config.id2label[i] for i in range(num_labels)]
                label_to_id = {l: i for i, l in enumerate(label_list)}
        else:
            logger.warning("Your model seems to have been trained with labels, but they don't match the dataset: "
                           "Ignoring the model labels as a result.")
    model.config.label2id = {l: i for i, l in enumerate(label_list)}
    model.config.id2label = dict(enumerate(label_list))

    b_to_i_label = []
    for idx, label in enumerate(label_list):
        if label.startswith("B-") and label.replace("B-", "I-") in label_list:
            b_to_i_label.append(label_list.index(label.replace("B-", "I-")))
        else:
            b_to_i_label.append(idx)

    padding = "max_length" if data_args.pad_to_max_length else False

    def tokenize_and_align_labels(examples):
        tokenized_inputs = tokenizer(
            examples[text_column_name],
            padding=padding,
            truncation=True,
            max_length=data_args.max_seq_length,
            is_split_into_words=True,
        )
        labels = []
        for i, label in enumerate(examples[label_column_name]):
            word_ids = tokenized_inputs.word_ids(batch_index=i)
            previous_word_idx = None
            label_ids = []
            for word_idx in word_ids:
                if word_idx is None:
                    label_ids.append(-100)
                elif word_idx != previous_word_idx:
                    label_ids.append(label_to_id[label[word_idx]])
                else:
                    if data_args.label_all_tokens:
                        label_ids.append(b_to_i_label[label_to_id[label[word_idx]]])
                    else:
                        label_ids.append(-100)
                previous_word_idx = word_idx
            labels.append(label_ids)
        tokenized_inputs["labels"] = labels
        return tokenized_inputs

    if not training_args.do_train:
        raise ValueError("the benchmark runs this script with --do_train")
    train_dataset = raw_datasets["train"]
    if data_args.max_train_samples is not None:
        train_dataset = train_dataset.select(range(min(len(train_dataset), data_args.max_train_samples)))
    with training_args.main_process_first(desc="train dataset map pre-processing"):
        train_dataset = train_dataset.map(
            tokenize_and_align_labels,
            batched=True,
            num_proc=data_args.preprocessing_num_workers,
            load_from_cache_file=not data_args.overwrite_cache,
            desc="Running tokenizer on train dataset",
        )

    data_collator = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8 if training_args.fp16 else None)

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        data_collator=data_collator,
    )

    checkpoint = training_args.resume_from_checkpoint
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = train_result.metrics
    trainer.save_model()  # Saves the tokenizer too for easy upload
    max_train_samples = data_args.max_train_samples if data_args.max_train_samples is not None else len(train_dataset)
    metrics["train_samples"] = min(max_train_samples, len(train_dataset))
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    saved_at = time.time()  # the orchestrator times the process from its start to here
    times = os.times()
    train_cpu_seconds = times.user + times.system

    result = {"saved_at": saved_at, "train_cpu_seconds": train_cpu_seconds, "train_metrics": metrics,
              "global_step": trainer.state.global_step, "label_list": label_list,
              "device": str(training_args.device), "torch_threads": _torch_threads(),
              "settings": {k: _plain(getattr(training_args, k)) for k in (
                  "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
                  "per_device_eval_batch_size", "weight_decay", "lr_scheduler_type", "warmup_steps", "seed",
                  "save_strategy", "save_steps", "optim")},
              "data_settings": {"label_all_tokens": data_args.label_all_tokens,
                                "pad_to_max_length": data_args.pad_to_max_length,
                                "max_seq_length": data_args.max_seq_length},
              "versions": {"transformers": transformers.__version__, "datasets": datasets.__version__,
                           "torch": _torch_version()}}

    if bench_args.bench_test_file:
        sentences = []
        with open(bench_args.bench_test_file, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    sentences.append(json.loads(line)["tokens"])
        started = time.perf_counter()
        tokenized = tokenizer(sentences, padding=padding, truncation=True, max_length=data_args.max_seq_length,
                              is_split_into_words=True)
        word_ids = [tokenized.word_ids(batch_index=i) for i in range(len(sentences))]
        predict_dataset = Dataset.from_dict({k: tokenized[k] for k in tokenized.keys()})
        logits = trainer.predict(predict_dataset, metric_key_prefix="predict").predictions
        predictions = np.argmax(logits, axis=2)
        tags = []
        for i, words in enumerate(sentences):
            row = ["O"] * len(words)
            previous = None
            for position, word_idx in enumerate(word_ids[i]):
                if word_idx is not None and word_idx != previous:
                    row[word_idx] = label_list[int(predictions[i][position])]
                previous = word_idx
            tags.append(row)
        result["predict_seconds"] = time.perf_counter() - started
        result["test_sentences"] = len(sentences)
        result["tags"] = tags
        result["truncated_sentences"] = sum(1 for i, words in enumerate(sentences)
                                            if max((w for w in word_ids[i] if w is not None), default=-1)
                                            < len(words) - 1)

    if bench_args.bench_output_file:
        tmp = bench_args.bench_output_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f, default=str)
        os.replace(tmp, bench_args.bench_output_file)


def _plain(value):
    return getattr(value, "value", value)


def _torch_threads():
    import torch
    return torch.get_num_threads()


def _torch_version():
    import torch
    return torch.__version__


if __name__ == "__main__":
    main()
