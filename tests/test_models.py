"""Model resolving: built-in, local folders, tokenizer fallback, fast offline failure, device choice."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import models
from tests.conftest import make_tiny_model

ROOT = Path(__file__).resolve().parent.parent


def test_builtin_minilm_is_a_real_model_folder():
    resolved = models.resolve(models.BUILTIN_ALIAS)
    assert resolved.source == "builtin"
    assert (resolved.folder / "config.json").exists() and (resolved.folder / "model.safetensors").exists()
    assert models.availability(models.BUILTIN_ALIAS)[0]


def test_builtin_minilm_loads_with_both_heads():
    folder = models.resolve(models.BUILTIN_ALIAS).folder
    tokenizer = models.load_tokenizer(folder)
    clf = models.load_model(folder, "classification", ["neg", "pos"])
    assert clf.config.id2label == {0: "neg", 1: "pos"} and clf.dtype.is_floating_point
    qa = models.load_model(folder, "qa")
    out = qa(**tokenizer("who?", "alice did", return_tensors="pt"))
    assert out.start_logits.shape == out.end_logits.shape


def test_local_folder_and_missing_folder(tmp_path, tiny_model_dir):
    assert models.resolve(str(tiny_model_dir)).source == "local"
    with pytest.raises(models.ModelUnavailable, match="no config.json"):
        models.resolve(str(tmp_path))
    with pytest.raises(models.ModelUnavailable, match="does not exist"):
        models.resolve(str(tmp_path / "nope" / "model"))


def test_spanbert_style_folder_gets_a_cased_tokenizer(tmp_path):
    """SpanBERT ships only vocab.txt: it must not be lowercased, and the fallback is reported."""
    folder = make_tiny_model(tmp_path / "spanbert-like", with_tokenizer=False)
    notes = []
    tokenizer = models.load_tokenizer(folder, notes)
    assert notes and "vocab.txt" in notes[0]
    assert tokenizer.tokenize("paris café") == ["paris", "café"]  # the vocab is really used
    assert tokenizer.tokenize("Paris")[0] != "paris"  # and not lowercased


def test_hub_id_offline_fails_fast_and_names_the_builtin(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(models.ModelUnavailable, match=models.BUILTIN_ALIAS):
        models.resolve("SpanBERT/spanbert-base-cased")
    assert time.monotonic() - started < 10


def test_unreachable_endpoint_is_detected_quickly(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert models.hub_reachable(timeout=1.0) is False
    ok, how = models.availability("someone/some-model")
    assert not ok and "download" in how


def test_device_and_precision_choice():
    assert models.choose_device("cpu", "auto") == ("cpu", "fp32")
    with pytest.raises(ValueError, match="fp16"):
        models.choose_device("cpu", "fp16")
    with pytest.raises(ValueError, match="precision"):
        models.choose_device("cpu", "int3")


def test_choosing_a_model_imports_its_architecture_code(tmp_path, tiny_model_dir):
    """prefetch (run when a model is chosen on the Train page) imports the architecture's modeling code, which
    transformers otherwise imports only when the first such model loads (1-2 s of the server's first run). A
    folder whose architecture transformers does not know is left for the load to explain."""
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text('{"model_type": "no-such-architecture"}')
    script = f"""
import sys
from core import models
models.warm_up()
print("BEFORE", "transformers.models.bert.modeling_bert" in sys.modules)
models.prefetch({str(tiny_model_dir)!r})
print("AFTER", "transformers.models.bert.modeling_bert" in sys.modules)
models.prefetch({str(odd)!r})
try:
    models.import_architecture(models.Path({str(odd)!r}))
except Exception as error:
    print("ODD", type(error).__name__)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BEFORE False" in result.stdout and "AFTER True" in result.stdout, result.stdout
    assert "ODD " in result.stdout, result.stdout
