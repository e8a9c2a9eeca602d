"""Choosing the few-shot recipe's settings without looking at any evaluation split.

    python bench/fewshot_tune.py '{"now": {}, "short": {"contrastive_epochs": 10, "epochs": 4}}' \
        --datasets sst2 ag_news --k 8 32 --seeds 11 12 13

For every data set, k and seed: k examples per class are sampled from the *training pool*, and the model is scored
on a fixed sample of *other* training-pool rows (``--dev-per-class``, default 200 per class, seed 999), never on
SST-2 dev or the AG News test set (those are for bench/fewshot_classification.py only). Each variant is a JSON object
of ``TrainConfig`` overrides, plus ``"_const"`` for ``core/fewshot.py`` module constants (e.g.
``{"_const": {"CONTRASTIVE_LR": 5e-5}}``). Runs go through ``core.training.execute_run`` in this process (a
temporary ``SPANLAB_HOME``), so the fit time excludes Python start-up. Prints one line per run and a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fewshot_common as common  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", help='JSON: {"name": {TrainConfig overrides, "_const": {...}}, ...}')
    parser.add_argument("--datasets", nargs="+", choices=sorted(common.DATASETS), default=["sst2"])
    parser.add_argument("--k", nargs="+", type=int, default=[8])
    parser.add_argument("--seeds", nargs="+", type=int, default=[11, 12, 13])
    parser.add_argument("--dev-per-class", type=int, default=200)
    args = parser.parse_args(argv)
    variants = json.loads(args.variants)
    try:
        data = {name: common.DATASETS[name]() for name in args.datasets}
    except common.DataMissing as exc:
        print(f"SKIPPED: {exc}")
        return 0

    os.environ["SPANLAB_HOME"] = tempfile.mkdtemp(prefix="spanlab-fewshot-tune-")
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(common.ROOT))
    from core import fewshot, inference, storage
    from core.training import TrainConfig, execute_run
    defaults = {name: getattr(fewshot, name) for name in dir(fewshot) if name.isupper()}

    results = []
    for dataset, (pool, _evaluation_split_not_used) in data.items():
        dev = common.sample_per_class(pool, args.dev_per_class, seed=999)
        held_out = {r["text"] for r in dev}
        pool = [r for r in pool if r["text"] not in held_out]
        storage.create_dataset(f"{dataset}-dev", "classification", dev)
        for k in args.k:
            for seed in args.seeds:
                name = f"{dataset}-k{k}-s{seed}"
                storage.create_dataset(name, "classification", common.sample_per_class(pool, k, seed))
                for variant, settings in variants.items():
                    for const, value in {**defaults, **settings.get("_const", {})}.items():
                        setattr(fewshot, const, value)
                    overrides = {key: value for key, value in settings.items() if not key.startswith("_")}
                    cfg = TrainConfig(dataset=name, model="builtin-minilm", seed=seed, **overrides)
                    run = storage.create_run(name, "classification", cfg.model, cfg.to_params())
                    started = time.perf_counter()
                    outcome = execute_run(run)
                    fit = time.perf_counter() - started
                    if outcome.get("status") != "completed":
                        raise RuntimeError(f"{name} {variant}: {outcome}")
                    accuracy = inference.evaluate(run, f"{dataset}-dev")["accuracy"]
                    results.append({"dataset": dataset, "k": k, "seed": seed, "variant": variant,
                                    "accuracy": accuracy, "fit_seconds": fit})
                    print(f"{dataset} k={k} seed={seed} {variant:<14} accuracy {accuracy:.3f} fit {fit:.1f} s",
                          flush=True)

    print("\n| data set | k/class | variant | seeds | pool-dev accuracy (mean ± std) | fit s (mean) |")
    print("|---|---|---|---|---|---|")
    for dataset in data:
        for k in args.k:
            for variant in variants:
                rows = [r for r in results if (r["dataset"], r["k"], r["variant"]) == (dataset, k, variant)]
                accs = [r["accuracy"] for r in rows]
                print(f"| {dataset} | {k} | {variant} | {len(rows)} | {statistics.mean(accs):.3f} ± "
                      f"{statistics.pstdev(accs):.3f} | {statistics.mean(r['fit_seconds'] for r in rows):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
