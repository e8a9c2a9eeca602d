"""Peak memory and wall time of `python -m core import big.csv --task classification` (issue 12, finding 9).

Writes a CSV (or, with ``--format jsonl``, JSON Lines) of the given size (default 300 MB) of text + label rows of
review-like lengths (20-160 words, a few quoted fields with commas, four labels, some repeated rows) into a temporary
folder, then runs the real CLI in a subprocess with a fresh SPANLAB_HOME (SQLite) and records its peak resident
memory (the child's ru_maxrss, taken in a small wrapper process so that nothing else is counted) and its wall time.
With ``--baseline-ref REF`` the same file is also imported by the code at git REF (exported with `git archive`), to
compare before and after.

    .venv/bin/python bench/import_memory.py                      # 300 MB
    .venv/bin/python bench/import_memory.py --size-mb 30 --size-mb 300 --baseline-ref 715c1fb  # before: 30 MB only
    .venv/bin/python bench/import_memory.py --format jsonl --size-mb 30 --results-name import_memory_jsonl

Target (issue 12): under 1 GB of peak memory for a 300 MB CSV. Results: bench/results/import_memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO_ROOT, print_table, write_results  # noqa: E402

_WORDS = ("the film plot acting was really good bad great boring slow fast story music scenes characters ending "
          "director camera moving funny dull brilliant awful script performance cast dialogue pacing visual effects "
          "and but not very quite too much little more less of in on with for about at as this that it its").split()
_LABELS = ["positive", "negative", "neutral", "mixed"]
# The wrapper runs the command and reports the peak memory of that one child (ru_maxrss: KiB on Linux).
_WRAPPER = ("import json, resource, subprocess, sys, time; t = time.perf_counter(); "
            "done = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'w'), stderr=subprocess.PIPE, text=True); "
            "print(json.dumps({'rc': done.returncode, 'wall_s': time.perf_counter() - t, "
            "'peak_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 'stderr': done.stderr[-3000:]}))")


def write_rows(path: Path, size_bytes: int, seed: int = 0) -> int:
    """A CSV (header text,label) or, for a .jsonl path, JSON Lines of about ``size_bytes``; returns the number of
    data rows."""
    rng = random.Random(seed)
    rows = 0
    recent: list[str] = []
    jsonl = path.suffix == ".jsonl"
    with path.open("w", encoding="utf-8", newline="") as handle:
        header = "" if jsonl else "text,label\n"
        handle.write(header)
        written = len(header)
        block: list[str] = []
        while written < size_bytes:
            if recent and rng.random() < 0.02:  # a repeated row now and then
                line = rng.choice(recent)
            else:
                text = " ".join(rng.choices(_WORDS, k=rng.randint(20, 160)))
                if rng.random() < 0.2:
                    text = text.replace(" but ", ", but ")
                    text = text if jsonl else f'"{text}"'
                label = rng.choice(_LABELS)
                line = (json.dumps({"text": text, "label": label}) if jsonl else f"{text},{label}") + "\n"
                if len(recent) < 1000:
                    recent.append(line)
            block.append(line)
            written += len(line)
            rows += 1
            if len(block) >= 10_000:
                handle.write("".join(block))
                block = []
        handle.write("".join(block))
    return rows


def measure(python: str, repo: Path, csv_path: Path, home: Path) -> dict:
    env = {**os.environ, "SPANLAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "SPANLAB_MAX_IMPORT_MB": "4096"}
    env.pop("DATABASE_URL", None)
    out = home.with_suffix(".out.json")
    argv = [python, "-c", _WRAPPER, str(out), python, "-m", "core", "import", str(csv_path), "--task",
            "classification", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=repo, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"import failed (exit {result['rc']}): {result['stderr']}")
    imported = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return {"peak_mib": round(result["peak_kib"] / 1024, 1), "wall_s": round(result["wall_s"], 1),
            "rows_imported": imported["rows"], "warnings": len(imported["warnings"])}


def export_ref(ref: str, into: Path) -> Path:
    """The repository at git ``ref`` as a plain folder (its .venv is this checkout's)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, action="append", help="CSV size in MB (repeatable; default 300)")
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    parser.add_argument("--baseline-ref", help="also import with the code at this git ref (e.g. the commit before)")
    parser.add_argument("--baseline-max-mb", type=float, default=100,
                        help="sizes above this are imported by this checkout only (the old code needs ~13x the file)")
    parser.add_argument("--results-name", default="import_memory", help="bench/results/<name>.json")
    parser.add_argument("--python", default=str(REPO_ROOT / ".venv" / "bin" / "python"))
    args = parser.parse_args()
    sizes = args.size_mb or [300.0]
    python = args.python if Path(args.python).exists() else sys.executable
    work = Path(tempfile.mkdtemp(prefix="spanlab-import-memory-"))
    commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    sides = [("streamed (this checkout)", REPO_ROOT, commit)]
    if args.baseline_ref:
        sides.append((f"baseline {args.baseline_ref}", export_ref(args.baseline_ref, work / "baseline"),
                      args.baseline_ref))
    results = []
    try:
        for size in sizes:
            csv_path = work / f"big-{size:g}mb.{args.format}"
            t = time.perf_counter()
            rows = write_rows(csv_path, int(size * 2**20))
            print(f"wrote {csv_path.name}: {csv_path.stat().st_size / 2**20:.1f} MB, {rows:,} rows "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
            for name, repo, ref in sides:
                if repo is not REPO_ROOT and size > args.baseline_max_mb:
                    continue
                home = work / f"home-{len(results)}"
                figures = measure(python, repo, csv_path, home)
                shutil.rmtree(home, ignore_errors=True)
                results.append({"code": name, "ref": ref, "format": args.format,
                                "size_mb": round(csv_path.stat().st_size / 2**20, 1), "rows": rows, **figures,
                                "under_1_gib": figures["peak_mib"] < 1024})
                print(json.dumps(results[-1]), flush=True)
            csv_path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(results, ["code", "format", "size_mb", "rows", "peak_mib", "wall_s", "under_1_gib"],
                f"python -m core import big.{args.format} --task classification")
    write_results(args.results_name, {
        "command": f"python -m core import big.{args.format} --task classification --json",
        "cpu_count": os.cpu_count(), "results": results,
        "note": "peak = ru_maxrss of the CLI process; SQLite in a fresh SPANLAB_HOME; the machine was shared"})


if __name__ == "__main__":
    main()
