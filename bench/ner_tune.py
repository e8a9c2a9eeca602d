"""Choosing the entity-span (NER) training defaults without looking at CoNLL-2003's evaluation splits.

    python bench/ner_tune.py '{"now": {}, "lr2e-4": {"learning_rate": 2e-4}}' --sizes 50 200 --seeds 1 2

For every size and seed, that many sentences are sampled from the *training pool* (eng.train), and the model is
scored (entity micro F1, seqeval) on a fixed sample of *other* eng.train sentences (``--dev``, default 1,000, seed
999), never on eng.testa or eng.testb (those are for bench/ner_quality.py only). Each variant is a JSON object of
``TrainConfig`` overrides, plus ``"_task"`` for attributes of the ner task object (e.g. ``{"_task":
{"default_lr": 1e-4}}``). Runs go through ``core.training.execute_run`` in this process with the built-in MiniLM
(a temporary ``SPANLAB_HOME``), so the fit time excludes Python start-up. Prints one line per run and a summary, and
writes bench/results/ner_tune.json (``--append`` adds to it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bc  # noqa: E402
import ner_common  # noqa: E402


def rows_of(sentences: list[dict]) -> list[dict]:
    """Sentences as SpanLab rows: text = tokens joined by spaces, their offsets, spans from the IOB2 tags."""
    from core.tasks import ner_io
    rows = []
    for sentence in sentences:
        text, offsets = ner_common.token_offsets(sentence["tokens"])
        rows.append({"text": text, "tokens": [list(o) for o in offsets],
                     "spans": ner_io.tags_to_spans(sentence["tags"], offsets)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", help='JSON: {"name": {TrainConfig overrides, "_task": {...}}, ...}')
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 200])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--dev", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args(argv)
    variants = json.loads(args.variants)
    train_path, = bc.require_data("conll2003/eng.train")
    bc.use_private_home()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    from core import inference, storage
    from core.tasks import ner
    from core.training import TrainConfig, execute_run
    defaults = {name: getattr(ner.TASK, name) for name in ("default_lr", "default_epochs", "default_max_length")}

    pool = ner_common.read_conll(train_path)
    dev = ner_common.sample_sentences(pool, args.dev, seed=999)
    held = {id(s) for s in dev}
    pool = [s for s in pool if id(s) not in held]
    storage.create_dataset("dev", "ner", rows_of(dev))
    results_path = bc.RESULTS_DIR / "ner_tune.json"
    results = json.loads(results_path.read_text())["runs"] if args.append and results_path.exists() else []
    for size in args.sizes:
        for seed in args.seeds:
            name = f"n{size}-s{seed}"
            storage.create_dataset(name, "ner", rows_of(ner_common.sample_sentences(pool, size, seed)))
            for variant, settings in variants.items():
                for attribute, value in {**defaults, **settings.get("_task", {})}.items():
                    setattr(ner.TASK, attribute, value)
                overrides = {key: value for key, value in settings.items() if not key.startswith("_")}
                cfg = TrainConfig(dataset=name, model="builtin-minilm", seed=seed, **overrides)
                run = storage.create_run(name, "ner", cfg.model, cfg.to_params())
                started = time.perf_counter()
                outcome = execute_run(run)
                fit = time.perf_counter() - started
                if outcome.get("status") != "completed":
                    raise RuntimeError(f"{name} {variant}: {outcome}")
                f1 = inference.evaluate(run, "dev")["f1"]
                info = storage.get_run(run)
                results.append({"size": size, "seed": seed, "variant": variant, "settings": settings, "f1": f1,
                                "fit_seconds": fit, "steps": info["step"], "best_step": info["metrics"].get("best_step"),
                                "stopped": info["metrics"].get("stopped")})
                print(f"n={size} seed={seed} {variant:<16} F1 {f1:.3f} fit {fit:.1f} s steps {info['step']} "
                      f"(best {info['metrics'].get('best_step')}, {info['metrics'].get('stopped')})", flush=True)
                bc.write_results("ner_tune", {"machine": bc.machine_info(), "dev_sentences": args.dev,
                                              "runs": results})

    print("\n| size | variant | seeds | pool-dev F1 (mean ± std) | fit s (mean) |")
    print("|---|---|---|---|---|")
    for size in sorted({r["size"] for r in results}):
        for variant in dict.fromkeys(r["variant"] for r in results):
            rows = [r for r in results if (r["size"], r["variant"]) == (size, variant)]
            if rows:
                f1s = [r["f1"] for r in rows]
                print(f"| {size} | {variant} | {len(rows)} | {statistics.mean(f1s):.3f} ± {statistics.pstdev(f1s):.3f} "
                      f"| {statistics.mean(r['fit_seconds'] for r in rows):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
