"""The reference of bench/cli_throughput.py: what a user of Hugging Face ``Trainer`` runs to fine-tune a classifier,
at Trainer's best on this data (``DataCollatorWithPadding`` + ``train_sampling_strategy="group_by_length"``).

    python bench/ref_trainer_classification.py --model DIR --train rows.jsonl --out DIR --epochs 1 --batch-size 16

``rows.jsonl``: one ``{"text", "label"}`` per line. Tokenises (max length 128, no padding), trains, saves the model
(``trainer.save_model``) and prints one JSON line: Trainer's ``train_samples_per_second`` (samples / the wall time of
``train()``), its ``train_runtime``, and ``saved_at`` (time.time() once the model is saved).
"""
from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    rows = [json.loads(line) for line in open(args.train, encoding="utf-8") if line.strip()]
    labels = sorted({row["label"] for row in rows})
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    encoded = tokenizer([row["text"] for row in rows], truncation=True, max_length=128)
    dataset = Dataset.from_dict({**{key: encoded[key] for key in encoded.keys()},
                                 "labels": [labels.index(row["label"]) for row in rows]})
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), dtype=torch.float32)
    training_args = TrainingArguments(
        output_dir=args.out, per_device_train_batch_size=args.batch_size, num_train_epochs=args.epochs,
        learning_rate=1e-4, weight_decay=0.01, warmup_steps=0.1, seed=args.seed, use_cpu=not torch.cuda.is_available(),
        report_to="none", save_strategy="no", eval_strategy="no", logging_steps=10, disable_tqdm=True,
        train_sampling_strategy="group_by_length")
    trainer = Trainer(model=model, args=training_args, train_dataset=dataset,
                      data_collator=DataCollatorWithPadding(tokenizer))
    metrics = trainer.train().metrics
    trainer.save_model(args.out)
    tokenizer.save_pretrained(args.out)
    print(json.dumps({"train_samples_per_second": metrics["train_samples_per_second"],
                      "train_runtime": metrics["train_runtime"], "samples": len(rows) * args.epochs,
                      "saved_at": time.time()}))


if __name__ == "__main__":
    main()
