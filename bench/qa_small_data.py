"""Benchmark: does QA learn a few dozen questions through the default path? (issue 13, finding 6)

An analyst labels a few dozen questions and trains with every setting automatic (only the dataset and the model are
given). The least such a run must do is answer the questions it was taught. This script takes ``--questions`` SQuAD
v1.1 dev questions (whole paragraphs, from seeded articles), stores them as a QA dataset, trains the built-in MiniLM
with ``TrainConfig(dataset=..., model=...)`` plus any ``--set name=value`` overrides, and scores the saved model
(``core.inference.evaluate``, the CLI's ``evaluate``) on those same training questions. For information only it also
scores ``--other`` questions of other articles (never used to choose a default).

    python bench/qa_small_data.py [--file data/samples/company_faq_qa.csv | --questions 48] [--seed 0] [--set learning_rate=6e-5 ...] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import bench_common as bc


def pick_questions(articles: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(training paragraphs with ``n`` questions in all, then other paragraphs' questions) as SQuAD paragraphs:
    the first paragraphs of seeded articles, whole, cut at ``n`` questions."""
    order = list(articles)
    random.Random(seed).shuffle(order)
    chosen, count, rest = [], 0, []
    for article in order:
        paragraph = article["paragraphs"][0]
        if count < n:
            qas = paragraph["qas"][:n - count]
            chosen.append({"context": paragraph["context"], "qas": qas})
            count += len(qas)
        else:
            rest.append({"context": paragraph["context"], "qas": paragraph["qas"]})
    return chosen, rest


def store(name: str, paragraphs: list[dict], folder: Path) -> int:
    """Write a SQuAD file and import it as the CLI does (core.importing + storage); returns the question count."""
    from core import importing, storage
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": name, "paragraphs": paragraphs}]}),
                    encoding="utf-8")
    result = importing.load_file(path, "qa", filename=path.name)
    assert result.ok, result.problems[:3]
    storage.create_dataset(name, "qa", result.rows)
    return len(result.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", help="train on this QA file (CSV/JSONL/SQuAD JSON) instead of SQuAD questions")
    parser.add_argument("--questions", type=int, default=48)
    parser.add_argument("--other", type=int, default=100, help="questions of other articles scored for information")
    parser.add_argument("--seed", type=int, default=0, help="which articles (the run's own seed stays the default)")
    parser.add_argument("--model", default="builtin-minilm")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a TrainConfig override")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="results name under bench/results/")
    args = parser.parse_args()
    _, info = bc.start_training_bench(*([] if args.file else ["squad_v1.1/dev-v1.1.json"]), threads=args.threads)

    from core import importing, inference, storage
    from core.training import TrainConfig, execute_run
    if args.file:
        result = importing.load_file(Path(args.file), "qa", filename=Path(args.file).name)
        storage.create_dataset("taught", "qa", result.rows)
        contexts = {row["context"] for row in result.rows}
        train, rest = [{"qas": [None] * len(result.rows), "contexts": len(contexts)}], []
    else:
        train, rest = pick_questions(bc.load_squad_articles(), args.questions, args.seed)
    other, count = [], 0
    for paragraph in rest:
        if count >= args.other:
            break
        other.append({"context": paragraph["context"], "qas": paragraph["qas"][:args.other - count]})
        count += len(other[-1]["qas"])
    folder = Path(tempfile.mkdtemp(prefix="qa-small-"))
    n_train = len(train[0]["qas"]) if args.file else store("taught", train, folder)
    n_other = store("other", other, folder) if other else 0

    overrides = dict(item.split("=", 1) for item in args.set)
    cfg = TrainConfig(dataset="taught", model=args.model, **overrides)
    run_id = storage.create_run("taught", "qa", cfg.model, cfg.to_params())
    started = time.perf_counter()
    outcome = execute_run(run_id)
    wall = time.perf_counter() - started
    run = storage.get_run(run_id)
    if run["status"] != "completed":
        raise SystemExit(f"run {run_id} {run['status']}: {run.get('error')}")
    params, metrics = run["params"], run["metrics"]
    taught = inference.evaluate(run_id, "taught")
    unseen = inference.evaluate(run_id, "other") if n_other else {}
    row = {"questions": n_train, "paragraphs": train[0]["contexts"] if args.file else len(train), "overrides": overrides or "-",
           "n_train": params.get("n_train"), "n_validation": params.get("n_validation"),
           "lr": params.get("learning_rate"), "epochs": params.get("epochs"), "steps": metrics.get("steps_run"),
           "stopped": metrics.get("stopped"), "taught EM": taught["exact_match"], "taught F1": taught["f1"],
           "other F1": unseen.get("f1"), "wall s": wall}
    bc.print_table([row], list(row))
    bc.write_results(args.out or f"qa_small_data_{args.questions}q", {
        "machine": info, "args": vars(args), "result": row, "outcome_status": outcome.get("status"),
        "notes": params.get("notes"), "taught": taught, "other": unseen})


if __name__ == "__main__":
    main()
