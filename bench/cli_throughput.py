"""Benchmark 3b: training speed as users meet it: ``python -m core train`` as a user types it vs the equivalent
Hugging Face ``Trainer`` script, end to end (issue #14).

    python bench/cli_throughput.py [--rounds 5] [--rows 1024]

Data: ``--rows`` SST-2 training sentences (seeded sample), imported once as a SpanLab dataset. Both sides train the
built-in MiniLM for one epoch at batch 16 on the same rows: SpanLab's own 80 % training split of them (it holds out
a stratified 20 % for validation, seed 42), which the reference gets as its training file.

* ``spanlab``: ``python -m core train --dataset D --model builtin-minilm --few-shot off --epochs 1 --batch-size 16
  --json --no-progress`` (its defaults otherwise: word embeddings fixed, validation passes on the held-out 20 %).
* ``trainer``: bench/ref_trainer_classification.py, ``Trainer`` at its best configuration on this data
  (``DataCollatorWithPadding`` + ``train_sampling_strategy="group_by_length"``), no evaluation, the model saved.

Figures per side and round: the loop rate each tool reports (``train_samples_per_second``: samples over the training
loop's seconds, both defined as Trainer defines it; SpanLab leaves its validation passes out, which the reference does
not run) and the wall time from the command's start to its exit, the model saved. Rounds alternate the order of the
sides. Ratios are SpanLab / Trainer for the rate (higher is better) and for the wall time (lower is better).
Targets: loop rate >= 1.1x, wall time <= 0.9x.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_common as bc


def timed(command: list[str], env: dict) -> tuple[dict, float]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=bc.REPO_ROOT)
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return json.loads(lines[-1]), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1024)
    args = parser.parse_args(argv)
    rows = bc.sample_rows(bc.load_sst2("train"), args.rows, seed=1)
    home = bc.use_private_home()
    info = bc.machine_info()
    bc.print_machine(info)
    from core import models, storage
    from core.tasks.classification import split_train_validation
    labelled = [{"text": text, "label": ["negative", "positive"][label]} for text, label in rows]
    storage.create_dataset("sst2", "classification", labelled)
    train, _ = split_train_validation(storage.load_examples("sst2"), 0.2, 42)  # SpanLab's own training split
    work = Path(tempfile.mkdtemp(prefix="spanlab-cli-throughput-"))
    train_file = work / "train.jsonl"
    train_file.write_text("".join(json.dumps({"text": e["text"], "label": e["label"]}) + "\n" for e in train),
                          encoding="utf-8")
    env = {**os.environ, "SPANLAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    commands = {
        "spanlab": [sys.executable, "-m", "core", "train", "--dataset", "sst2", "--model", "builtin-minilm",
                    "--few-shot", "off", "--epochs", "1", "--batch-size", "16", "--json", "--no-progress"],
        "trainer": [sys.executable, str(bc.BENCH_DIR / "ref_trainer_classification.py"), "--model",
                    str(models.builtin_folder()), "--train", str(train_file), "--out", str(work / "trainer-out"),
                    "--epochs", "1", "--batch-size", "16"],
    }
    runs = []
    for round_number in range(1, args.rounds + 1):
        for side in (("spanlab", "trainer") if round_number % 2 else ("trainer", "spanlab")):
            out, wall = timed(commands[side], env)
            rate = out["train_samples_per_second"]
            runs.append({"round": round_number, "side": side, "rate": rate, "wall_s": wall,
                         **({"train_seconds": out["metrics"].get("train_seconds"),
                             "eval_seconds": out["metrics"].get("eval_seconds"),
                             "run_wall_seconds": out["metrics"].get("wall_seconds")} if side == "spanlab" else
                            {"train_runtime": out["train_runtime"]})})
            print(f"round {round_number} {side:<8} {rate:6.1f} samples/s (loop)  {wall:6.1f} s to the saved model",
                  flush=True)
    table, ratios = [], {"rate": [], "wall": []}
    for round_number in range(1, args.rounds + 1):
        mine = next(r for r in runs if r["round"] == round_number and r["side"] == "spanlab")
        ref = next(r for r in runs if r["round"] == round_number and r["side"] == "trainer")
        ratios["rate"].append(mine["rate"] / ref["rate"])
        ratios["wall"].append(mine["wall_s"] / ref["wall_s"])
        table.append({"round": round_number, "SpanLab samples/s": mine["rate"], "Trainer samples/s": ref["rate"],
                      "rate ratio": ratios["rate"][-1], "SpanLab wall s": mine["wall_s"],
                      "Trainer wall s": ref["wall_s"], "wall ratio": ratios["wall"][-1]})
    bc.print_table(table, list(table[0]), title=f"python -m core train vs Trainer script, {len(train)} sentences, "
                                                 "1 epoch, batch 16")
    summary = {"rate_ratio_median": statistics.median(ratios["rate"]), "rate_ratio_range": [min(ratios["rate"]),
               max(ratios["rate"])], "wall_ratio_median": statistics.median(ratios["wall"]),
               "wall_ratio_range": [min(ratios["wall"]), max(ratios["wall"])]}
    summary["rate_target_met"] = summary["rate_ratio_median"] >= 1.1
    summary["wall_target_met"] = summary["wall_ratio_median"] <= 0.9
    print(f"loop rate ratio median {summary['rate_ratio_median']:.2f}x (target >= 1.1x: "
          f"{'met' if summary['rate_target_met'] else 'NOT met'}); wall time ratio median "
          f"{summary['wall_ratio_median']:.2f}x (target <= 0.9x: {'met' if summary['wall_target_met'] else 'NOT met'})")
    bc.write_results("cli_throughput", {"machine": info, "rows": args.rows, "train_rows": len(train),
                                        "summary": summary, "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
