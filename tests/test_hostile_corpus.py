"""Every file of the hostile-input corpus (tests/hostile_corpus.py), imported for every task through the CLI: exit 0
or 2, never a traceback, and on failure no dataset left behind. A few go through a real subprocess with a timeout,
which also proves that nothing hangs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import main
from tests.hostile_corpus import CASES, build

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("classification", "qa", "ner")


def test_corpus_is_large_enough():
    assert len(CASES) >= 80


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    build(folder)
    return folder


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One database for the whole corpus (a fresh one per file would spend the time on migrations)."""
    from core import storage
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("SPANLAB_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    storage.dispose_engines()
    yield
    storage.dispose_engines()
    monkeypatch.undo()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_imports_or_is_refused(corpus, shared_home, capsys, name, task):
    from core import storage
    before = storage.list_datasets()
    dataset = f"{task}-{len(before)}"
    code = main(["import", str(corpus / name), "--task", task, "--name", dataset])
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err[-2000:])
    assert "Traceback" not in out + err
    after = storage.list_datasets()
    if code == 2:
        assert err.startswith("error: "), err[:500]
        assert after == before  # nothing half-imported
    else:
        assert sorted(d["name"] for d in after) == sorted([d["name"] for d in before] + [dataset])
        made = next(d for d in after if d["name"] == dataset)
        assert made["rows"] >= 1 and made["task"] == task


@pytest.mark.parametrize("name", ["gzip-bomb.csv", "deep-array.json", "nul-late.csv", "huge-field.csv",
                                  "random-bytes.csv", "conll-broken-tags.conll"])
def test_hostile_files_through_a_real_process(corpus, tmp_path, name):
    env = {**os.environ, "SPANLAB_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    for task in TASKS:
        result = subprocess.run([sys.executable, "-m", "core", "import", str(corpus / name), "--task", task],
                                cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode in (0, 2), result.stderr[-2000:]
        assert "Traceback" not in result.stderr + result.stdout
