"""Benchmark 7: named-entity recognition on CoNLL-2003: SpanLab's NER training vs Hugging Face's ``run_ner`` recipe
vs spaCy 3.8's own NER training (issue #11).

    python bench/ner_quality.py                       # 50/100/200/500 sentences x 3 seeds + all 14,041; all sides
    python bench/ner_quality.py --quick               # 50 sentences, 1 seed, 300 test sentences, steps capped
    python bench/ner_quality.py --sides run_ner spacy --sizes 50 100 --seeds 1 --no-full --append

Data: ``conll2003/eng.train`` (14,041 sentences), ``eng.testa`` (3,250), ``eng.testb`` (3,453) under the benchmark
data folder (see shared/data/PROVENANCE.md), read by bench/ner_common.py (``-DOCSTART-`` lines dropped, IOB1 tags
converted to IOB2). Training sets: for each size and seed, ``random.Random(seed).sample`` of the training sentences
(the same sample for every side), plus all 14,041 once (``--full``). Every side is evaluated on all 3,453 eng.testb
sentences with the CoNLL tokens, and every side's output becomes one IOB2 tag per CoNLL token, scored here with
seqeval (entity-level micro precision/recall/F1, default conlleval-compatible mode) plus F1 per entity type.

Sides (each trains with its own default seed; the benchmark seed only picks the sample):

* ``spanlab``: what a user types. The sample is written as a two-column CoNLL file (``token<TAB>IOB2 tag``),
  ``python -m core import FILE --task ner --name NAME --json`` (not timed), then ``python -m core train --dataset
  NAME --model builtin-minilm --json --no-progress`` (timed: process start to exit, the model saved). Predictions:
  ``core.inference.load_predictor(run)`` in this process, then one ``predict_examples`` call over all test sentences
  given as the CoNLL tokens (text = the tokens joined by single spaces, with their offsets, as an imported CoNLL
  file is read), so its entities fall on the same tokens as the other sides'. Samples train with SpanLab's defaults
  (below 2,000 sentences every one trains, no hold-out); the full-data run gets spaCy's development split
  (eng.testa) as ``--eval-dataset`` (``--no-spanlab-full-dev``: its default 20% hold-out instead).
* ``run_ner``: bench/ner_ref_run_ner.py, the ``examples/pytorch/token-classification/run_ner.py`` recipe with every
  ``TrainingArguments`` default (lr 5e-5, 3 epochs, batch 8, no warmup, linear decay, weight decay 0, seed 42,
  checkpoint every 500 steps), first sub-token labels, dynamic padding, the built-in MiniLM with
  ``AutoModelForTokenClassification``; run as a user runs the script; timed from process start to the model saved
  (the script stamps the time); then, in the same process, ``trainer.predict`` (batch 8) over the test sentences.
* ``spacy``: bench/ner_ref_spacy.py in bench/.venv-spacy (``bash bench/setup_spacy_env.sh``; the side is skipped
  cleanly without it): ``spacy init config --lang en --pipeline ner --optimize efficiency`` (CPU), the sample as a
  DocBin of the CoNLL tokens, ``python -m spacy train`` timed from process start to exit, ``model-best`` loaded and
  ``nlp.pipe`` (default batch size) over ``Doc(words=tokens)`` of the test sentences. spaCy's training needs a dev
  set (evaluation every 200 steps, early stopping after 1,600 steps without improvement, model-best): it gets the
  CoNLL development split, all of eng.testa by default (``--dev-limit N``: a seeded sample), never eng.testb. That
  is labelled data the other sides do not get (run_ner uses no dev set; SpanLab validates on part of its own sample),
  so it favours spaCy, most at small sizes.

Figures: F1 (mean ± std over seeds), training wall time (mean ± std) and CPU time of the training process, and
prediction speed in test sentences per second with the model already loaded (each side batching as it does by
default). Ratios are SpanLab / reference. Targets: SpanLab F1 >= both references at every size; SpanLab training
time <= run_ner's at every size; SpanLab's full-data test F1 >= 0.86.

Runs go seed by seed (sizes inside, the side order rotating with the seed), full-data runs last; the JSON
(bench/results/ner_quality.json; ner_quality_quick.json for --quick or any development cap) is rewritten atomically
after every run, so an interrupted benchmark keeps what it measured, and ``--append`` adds runs to it (replacing the
same size/seed/side). ``--test-limit``, ``--dev-limit`` and ``--max-steps`` are for developing the script only.

Durations measured on 2 CPU cores (shared, so on the slow side): run_ner trains at about 33 sentences/s (3 epochs:
~50 s at 500 sentences, ~25 min for all 14,041) and predicts ~200 test sentences/s. spaCy runs until 1,600 steps
pass without a better dev score, ~0.1 s a step: 5-15 min even at 50-500 sentences (thousands of epochs of a small
sample), 20-45 min for all 14,041 (20,000 steps at most). The whole grid: roughly 3-4 hours plus SpanLab's share.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common as bc
import ner_common as nc

SIDES = ("spanlab", "run_ner", "spacy")
SPACY_PYTHON = bc.BENCH_DIR / ".venv-spacy" / "bin" / "python"
RESULTS_NAME, RESULTS_QUICK_NAME = "ner_quality", "ner_quality_quick"
RUN_NER_BATCH, RUN_NER_EPOCHS = 8, 3  # TrainingArguments defaults, for the --max-steps cap only
FULL_F1_TARGET = 0.86


# ------------------------------------------------------------------------------------------ helpers
def _env(threads: int | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return env


def _run_logged(command: list[str], log_path: Path, env: dict, what: str) -> tuple[float, float, float]:
    """Run a process with its output in ``log_path``: (wall clock at start, wall seconds, CPU seconds of it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_at, started = time.time(), time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=bc.REPO_ROOT).returncode
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{what} failed (exit {code}); end of {log_path}:\n{tail}")
    return started_at, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cli(args: list[str], env: dict, log_path: Path) -> tuple[dict, float, float]:
    """``python -m core ARGS`` (main venv, repository root): (its last stdout line as JSON, wall s, CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env,
                          cwd=bc.REPO_ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log_path.write_text(f"$ python -m core {' '.join(args)}\n{done.stdout}\n--- stderr\n{done.stderr}",
                        encoding="utf-8")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"python -m core {' '.join(args[:3])} ... failed (exit {done.returncode}):\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")
    return json.loads(lines[-1]), wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def spanlab_available(env: dict) -> str | None:
    """None when SpanLab's CLI knows ``--task ner``, else why the side is skipped."""
    done = subprocess.run([sys.executable, "-m", "core", "import", "--help"], capture_output=True, text=True,
                          env=env, cwd=bc.REPO_ROOT)
    if done.returncode != 0:
        return f"`python -m core import --help` failed: {done.stderr.strip()[-300:]}"
    if not re.search(r"\{[^}]*\bner\b[^}]*\}", done.stdout):  # argparse lists the choices as {classification,qa,...}
        return "SpanLab's CLI has no `--task ner` yet (python -m core import --help)"
    return None


def spacy_available() -> str | None:
    if not SPACY_PYTHON.exists():
        return f"{SPACY_PYTHON} is missing: run `bash bench/setup_spacy_env.sh` to benchmark spaCy"
    done = subprocess.run([str(SPACY_PYTHON), "-c", "import spacy"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"spacy does not import in {SPACY_PYTHON}: run `bash bench/setup_spacy_env.sh --force`"
    return None


# ------------------------------------------------------------------------------------------ sides
def run_spanlab(train: list[dict], test: list[dict], name: str, work: Path, env: dict,
                max_steps: int | None, dev: list[dict] | None = None) -> dict:
    conll = nc.write_two_column(work / f"{name}.conll", train)
    imported, _, _ = _cli(["import", str(conll), "--task", "ner", "--name", name, "--json"], env,
                          work / "import.log")
    if imported.get("rows") is None:
        raise RuntimeError(f"SpanLab import did not report rows: {imported}")
    command = ["train", "--dataset", name, "--model", "builtin-minilm", "--json", "--no-progress"]
    if dev is not None:  # the development split spaCy also gets: every training sentence trains
        _cli(["import", str(nc.write_two_column(work / f"{name}-dev.conll", dev)), "--task", "ner", "--name",
              f"{name}-dev", "--json"], env, work / "import-dev.log")
        command += ["--eval-dataset", f"{name}-dev"]
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    trained, wall, cpu = _cli(command, env, work / "train.log")
    if trained.get("status") != "completed":
        raise RuntimeError(f"SpanLab training did not complete: {trained}")

    from core.inference import load_predictor
    predictor = load_predictor(trained["run"])
    examples = []
    for sentence in test:  # the CoNLL tokens, as every side reads them (and as `evaluate` reads an imported file)
        text, offsets = nc.token_offsets(sentence["tokens"])
        examples.append({"text": text, "tokens": [list(o) for o in offsets]})
    texts = [example["text"] for example in examples]
    started = time.perf_counter()
    predicted = predictor.predict_examples(examples)
    predict_seconds = time.perf_counter() - started
    if len(predicted) != len(texts):
        raise RuntimeError(f"predict returned {len(predicted)} results for {len(texts)} texts")
    tags, mapping = [], {"partial_token": 0, "overlap_dropped": 0, "empty": 0}
    for s, entities in zip(test, predicted):
        row, stats = nc.entities_to_iob2(s["tokens"], entities)
        tags.append(row)
        for k, v in stats.items():
            mapping[k] += v
    metrics = trained.get("metrics") or {}
    return {"tags": tags, "train_seconds": wall, "train_cpu_seconds": cpu, "predict_seconds": predict_seconds,
            "imported_rows": imported.get("rows"), "run": trained["run"], "model_dir": trained.get("model_dir"),
            "train_samples_per_second": trained.get("train_samples_per_second"),
            "validation_metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))},
            "span_mapping": mapping}


def run_run_ner(train: list[dict], test_path: Path, work: Path, env: dict, max_steps: int | None) -> dict:
    from core import models
    train_path = nc.write_jsonl(work / "train.json", train)  # JSON lines; run_ner.py wants a .json/.csv name
    out_json = work / "result.json"
    command = [sys.executable, str(bc.BENCH_DIR / "ner_ref_run_ner.py"),
               "--model_name_or_path", str(models.builtin_folder()), "--train_file", str(train_path),
               "--output_dir", str(work / "out"), "--do_train",
               "--bench_test_file", str(test_path), "--bench_output_file", str(out_json)]
    planned = -(-len(train) // RUN_NER_BATCH) * RUN_NER_EPOCHS
    if max_steps and max_steps < planned:
        command += ["--max_steps", str(max_steps)]
    env = {**env, "HF_DATASETS_CACHE": str(work / "hf-datasets")}
    started_at, wall, cpu = _run_logged(command, work / "run_ner.log", env, "run_ner")
    result = json.loads(out_json.read_text(encoding="utf-8"))
    return {"tags": result.pop("tags"), "train_seconds": result["saved_at"] - started_at,
            "train_cpu_seconds": result["train_cpu_seconds"], "predict_seconds": result["predict_seconds"],
            "process_seconds": wall, "process_cpu_seconds": cpu, "steps": result["global_step"],
            "train_samples_per_second": result["train_metrics"].get("train_samples_per_second"),
            "labels": result["label_list"], "device": result["device"], "torch_threads": result["torch_threads"],
            "settings": result["settings"], "data_settings": result["data_settings"],
            "truncated_sentences": result.get("truncated_sentences"), "versions": result["versions"]}


def run_spacy(train: list[dict], dev_path: Path, test_path: Path, work: Path, env: dict,
              max_steps: int | None) -> dict:
    train_path = nc.write_jsonl(work / "train.jsonl", train)
    out_json = work / "result.json"
    command = [str(SPACY_PYTHON), str(bc.BENCH_DIR / "ner_ref_spacy.py"), "--train", str(train_path),
               "--dev", str(dev_path), "--test", str(test_path), "--work", str(work / "spacy"), "--out", str(out_json)]
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    _run_logged(command, work / "spacy.log", env, "the spaCy side")
    result = json.loads(out_json.read_text(encoding="utf-8"))
    keep = ("train_cpu_seconds", "predict_seconds", "convert_seconds", "dev_sentences", "dev_ents_f_best",
            "dev_ents_f_last", "epochs", "steps", "batch_size", "versions")
    return {"tags": result["tags"], "train_seconds": result["train_seconds"], **{k: result.get(k) for k in keep}}


# ------------------------------------------------------------------------------------------ summary
def summarize(runs: list[dict], sides: list[str]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if "error" not in r:
            groups.setdefault((r["size"], r["side"]), []).append(r)
    rows = []
    for (size, side), items in sorted(groups.items(), key=lambda kv: (kv[0][0], _side_rank(kv[0][1], sides))):
        f1 = bc.mean_std([r["f1"] for r in items])
        wall = bc.mean_std([r["train_seconds"] for r in items])
        types = sorted({t for r in items for t in r["per_type_f1"]})
        rows.append({"size": size, "side": side, "seeds": len(items), "f1_mean": f1[0], "f1_std": f1[1],
                     "precision_mean": bc.mean_std([r["precision"] for r in items])[0],
                     "recall_mean": bc.mean_std([r["recall"] for r in items])[0],
                     "per_type_f1_mean": {t: bc.mean_std([r["per_type_f1"].get(t, 0.0) for r in items])[0]
                                          for t in types},
                     "train_seconds_mean": wall[0], "train_seconds_std": wall[1],
                     "train_cpu_seconds_mean": bc.mean_std([r["train_cpu_seconds"] for r in items])[0],
                     "sentences_per_second_mean": bc.mean_std([r["sentences_per_second"] for r in items])[0]})
    return rows


def _side_rank(side: str, sides: list[str]) -> int:
    return SIDES.index(side) if side in SIDES else len(SIDES)


def compare(summary: list[dict]) -> list[dict]:
    """SpanLab vs each reference per size: F1 difference, ratios SpanLab / reference, and the two per-size targets."""
    by = {(r["size"], r["side"]): r for r in summary}
    out = []
    for (size, side), ours in by.items():
        if side != "spanlab":
            continue
        for ref in ("run_ner", "spacy"):
            other = by.get((size, ref))
            if not other:
                continue
            out.append({"size": size, "reference": ref, "f1_diff": ours["f1_mean"] - other["f1_mean"],
                        "f1_ratio": ours["f1_mean"] / other["f1_mean"] if other["f1_mean"] else None,
                        "train_time_ratio": ours["train_seconds_mean"] / other["train_seconds_mean"],
                        "train_cpu_ratio": ours["train_cpu_seconds_mean"] / other["train_cpu_seconds_mean"],
                        "speed_ratio": ours["sentences_per_second_mean"] / other["sentences_per_second_mean"],
                        "f1_target_met": ours["f1_mean"] >= other["f1_mean"],
                        "time_target_met": (ours["train_seconds_mean"] <= other["train_seconds_mean"]
                                            if ref == "run_ner" else None)})
    return out


def targets(summary: list[dict], comparisons: list[dict], full_size: int) -> dict:
    def verdict(values: list[bool]) -> str:
        return "n/a" if not values else ("met" if all(values) else "NOT met")
    full = [r for r in summary if r["side"] == "spanlab" and r["size"] == full_size]
    return {
        "spanlab_f1_ge_references_every_size": verdict([c["f1_target_met"] for c in comparisons]),
        "spanlab_train_time_le_run_ner": verdict([c["time_target_met"] for c in comparisons
                                                  if c["reference"] == "run_ner"]),
        f"spanlab_full_f1_ge_{FULL_F1_TARGET}": verdict([r["f1_mean"] >= FULL_F1_TARGET for r in full]),
        "full_f1": full[0]["f1_mean"] if full else None,
        "sizes_compared": sorted({c["size"] for c in comparisons}),
    }


def print_report(summary: list[dict], comparisons: list[dict], goal: dict, title: str) -> None:
    rows = []
    for r in summary:
        t = r["per_type_f1_mean"]
        rows.append({"train sentences": r["size"], "side": r["side"], "seeds": r["seeds"],
                     "F1": f"{r['f1_mean']:.3f} ± {r['f1_std']:.3f}", "P": r["precision_mean"], "R": r["recall_mean"],
                     **{k: t.get(k) for k in nc.ENTITY_TYPES},
                     "train wall s": f"{r['train_seconds_mean']:.1f} ± {r['train_seconds_std']:.1f}",
                     "train CPU s": r["train_cpu_seconds_mean"], "test sent/s": r["sentences_per_second_mean"]})
    bc.print_table(rows, ["train sentences", "side", "seeds", "F1", "P", "R", *nc.ENTITY_TYPES, "train wall s",
                          "train CPU s", "test sent/s"], title=title)
    rows = [{"train sentences": c["size"], "SpanLab vs": c["reference"], "F1 diff": f"{c['f1_diff']:+.3f}",
             "F1 ratio": "-" if c["f1_ratio"] is None else f"x{c['f1_ratio']:.2f}",
             "train time ratio": f"x{c['train_time_ratio']:.2f}", "train CPU ratio": f"x{c['train_cpu_ratio']:.2f}",
             "speed ratio": f"x{c['speed_ratio']:.2f}",
             "F1 >= ref": "met" if c["f1_target_met"] else "NOT met",
             "time <= run_ner": {True: "met", False: "NOT met", None: "-"}[c["time_target_met"]]}
            for c in comparisons]
    if rows:
        bc.print_table(rows, ["train sentences", "SpanLab vs", "F1 diff", "F1 ratio", "train time ratio",
                              "train CPU ratio", "speed ratio", "F1 >= ref", "time <= run_ner"],
                       title="SpanLab / reference (ratios > 1: SpanLab larger)")
    print("\ntargets:")
    for k, v in goal.items():
        print(f"  {k}: {v}")


def _save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ driver
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 100, 200, 500],
                        help="training sentences per sampled run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="one sample per seed and size")
    parser.add_argument("--full", action=argparse.BooleanOptionalAction, default=True,
                        help="also train each side once on all 14,041 training sentences (last)")
    parser.add_argument("--test-limit", type=int, help="development only: a seeded sample of N eng.testb sentences")
    parser.add_argument("--dev-limit", type=int, help="spaCy's dev set: a seeded sample of N eng.testa sentences "
                                                      "(default: all 3,250)")
    parser.add_argument("--max-steps", type=int, help="development only: cap every side's optimizer steps")
    parser.add_argument("--quick", action="store_true", help="50 sentences, first seed, no full run, 300 test and "
                                                             "300 dev sentences, at most 200 steps")
    parser.add_argument("--append", action="store_true", help="keep the runs already in the results file (other "
                                                              "sizes, seeds or sides) and add these")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/ner_quality.json; "
                                                 "ner_quality_quick.json with --quick or a development cap)")
    parser.add_argument("--threads", type=int, help="torch / BLAS threads for every side (default: libraries')")
    parser.add_argument("--spanlab-full-dev", action=argparse.BooleanOptionalAction, default=True,
                        help="the full-data SpanLab run gets spaCy's development split as --eval-dataset (so every "
                             "training sentence trains, and early stopping watches eng.testa); off: its default "
                             "20%% hold-out")
    parser.add_argument("--keep-work", action="store_true", help="keep the working folder (models, logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds, args.full = [50], args.seeds[:1], False
        args.test_limit = args.test_limit or 300
        args.dev_limit = args.dev_limit or 300
        args.max_steps = args.max_steps or 200
    development = bool(args.quick or args.test_limit or args.max_steps)
    out_path = args.out or bc.RESULTS_DIR / f"{RESULTS_QUICK_NAME if development else RESULTS_NAME}.json"

    train_path, dev_path, test_path = bc.require_data(*nc.CONLL_FILES)
    bc.require_module("seqeval", "pip install -r requirements.txt")
    home, info = bc.start_training_bench(*nc.CONLL_FILES, threads=args.threads)
    info["seqeval"] = _version("seqeval")
    env = _env(args.threads)

    sides = list(dict.fromkeys(args.sides))
    skipped = {}
    for side, check in (("spanlab", lambda: spanlab_available(env)), ("spacy", spacy_available)):
        if side in sides:
            reason = check()
            if reason:
                print(f"SKIPPED ({side} side only): {reason}")
                skipped[side] = reason
                sides.remove(side)
    if not sides:
        bc.skip("no side can run: " + "; ".join(skipped.values()))

    pool = nc.read_conll(train_path)
    test = nc.read_conll(test_path)
    dev = nc.read_conll(dev_path)
    if args.test_limit:
        test = nc.sample_sentences(test, args.test_limit, seed=0)
    if args.dev_limit:
        dev = nc.sample_sentences(dev, args.dev_limit, seed=0)
    gold = [s["tags"] for s in test]
    full_size = len(pool)
    print(f"CoNLL-2003: {len(pool)} training sentences, test {len(test)} eng.testb sentences "
          f"({sum(len(s['tokens']) for s in test)} tokens), spaCy dev {len(dev)} eng.testa sentences; "
          f"sides {sides}; SPANLAB_HOME {home}")

    settings = {"test_file": "eng.testb", "test_sentences": len(test), "test_limit": args.test_limit,
                "dev_file": "eng.testa", "dev_sentences": len(dev), "dev_limit": args.dev_limit,
                "max_steps": args.max_steps, "train_pool": full_size, "threads": args.threads,
                "spanlab_full_dev": args.spanlab_full_dev,
                "scoring": "seqeval entity-level micro P/R/F1, default (conlleval-compatible) mode, IOB2 tags of the "
                           "CoNLL tokens",
                "train_time": "process start to model saved (run_ner: saved_at stamped by the script; spaCy and "
                              "SpanLab: process exit)",
                "prediction_speed": "test sentences / second, model already loaded, each side's default batching"}
    runs: list[dict] = []
    if any(size >= full_size for size in args.sizes):
        print(f"note: sizes >= {full_size} are the full-data run: use --full (it runs once, not once per seed)")
    grid = [(size, seed) for seed in args.seeds for size in args.sizes if size < full_size]
    if args.full:
        grid.append((full_size, 0))
    redo = {(size, seed, side) for size, seed in grid for side in sides}
    if args.append and out_path.exists():
        previous = json.loads(out_path.read_text(encoding="utf-8"))
        old = previous.get("settings", {})
        for key in ("test_sentences", "test_limit", "dev_sentences", "max_steps"):
            if old.get(key) != settings[key]:
                raise SystemExit(f"--append: {out_path} has {key}={old.get(key)!r}, this run {settings[key]!r}; "
                                 "use the same settings or another --out")
        runs = [r for r in previous.get("runs", []) if (r["size"], r["seed"], r["side"]) not in redo]

    def write(final: bool) -> dict:
        summary = summarize(runs, sides)
        comparisons = compare(summary)
        payload = {"benchmark": "ner_quality", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": final,
                   "development": development, "machine": info, "spanlab_commit": _commit(), "settings": settings,
                   "skipped_sides": skipped, "summary": summary, "comparisons": comparisons,
                   "targets": targets(summary, comparisons, full_size), "runs": runs}
        _save(out_path, payload)
        return payload

    jobs = []
    for size, seed in grid:
        order = sides[seed % len(sides):] + sides[:seed % len(sides)]
        jobs += [(size, seed, side) for side in order]
    work_root = Path(tempfile.mkdtemp(prefix="spanlab-bench-ner-"))
    test_jsonl = nc.write_jsonl(work_root / "test.jsonl", test, with_tags=False)
    dev_jsonl = nc.write_jsonl(work_root / "dev.jsonl", dev)
    bench_started = time.perf_counter()
    try:
        for i, (size, seed, side) in enumerate(jobs, 1):
            train = nc.sample_sentences(pool, size, seed)
            label = f"size {size}" + (f" seed {seed}" if size < full_size else " (all)")
            print(f"[{i}/{len(jobs)}] {label} {side} ... ({time.perf_counter() - bench_started:.0f} s so far)",
                  flush=True)
            work = work_root / f"{size}-s{seed}-{side}"
            work.mkdir()
            record = {"size": size, "seed": seed, "side": side, "train_sentences": len(train),
                      "train_entities": sum(t.startswith("B-") for s in train for t in s["tags"]),
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            try:
                if side == "spanlab":
                    full_dev = dev if size >= full_size and args.spanlab_full_dev else None
                    out = run_spanlab(train, test, f"conll-{size}-s{seed}", work, env, args.max_steps, full_dev)
                elif side == "run_ner":
                    out = run_run_ner(train, test_jsonl, work, env, args.max_steps)
                else:
                    out = run_spacy(train, dev_jsonl, test_jsonl, work, env, args.max_steps)
            except Exception as exc:  # one failed run is recorded; the others still run
                record["error"] = str(exc)[-4000:]
                print(f"   FAILED: {str(exc)[-1500:]}", flush=True)
            else:
                tags = out.pop("tags")
                record.update(nc.score(gold, tags))
                record.update(out)
                record["test_sentences"] = len(test)
                record["sentences_per_second"] = len(test) / out["predict_seconds"]
                record["sample_predictions"] = tags[:5]
                print(f"   F1 {record['f1']:.3f} (P {record['precision']:.3f} R {record['recall']:.3f})  "
                      f"train {out['train_seconds']:.1f} s (CPU {out['train_cpu_seconds']:.1f} s)  "
                      f"predict {record['sentences_per_second']:.0f} sent/s", flush=True)
            runs.append(record)
            write(final=False)
            if not args.keep_work:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if not args.keep_work:
            shutil.rmtree(work_root, ignore_errors=True)
        else:
            print(f"working folder kept: {work_root}")
    payload = write(final=True)
    print_report(payload["summary"], payload["comparisons"], payload["targets"],
                 title=f"CoNLL-2003 NER: test {len(test)} eng.testb sentences"
                       + (" (development run)" if development else ""))
    failed = [r for r in runs if "error" in r]
    if failed:
        print(f"{len(failed)} run(s) failed: " + ", ".join(f"{r['size']}/{r['seed']}/{r['side']}" for r in failed))
    print(f"results written to {out_path}")
    return 0


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:
        return None


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=bc.REPO_ROOT)
    return done.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
