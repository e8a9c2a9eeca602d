"""A shared server's core protections: password hashes for the simple sign-in (``python -m core hash-password``),
and local model folders limited to allowed roots (SPANLAB_MODEL_ROOTS) with one answer for every folder outside
them, existing or not, on every path that reads a local model (training, the model picker, predict)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import inference, models, passwords
from core.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------ passwords

def test_password_hash_round_trip_and_salted():
    stored = passwords.hash_password("correct horse", iterations=2_000)
    assert stored.startswith("pbkdf2_sha256$2000$") and "correct horse" not in stored
    assert passwords.verify_password("correct horse", stored)
    assert not passwords.verify_password("correct horsE", stored)
    assert passwords.hash_password("correct horse", iterations=2_000) != stored  # a fresh salt each time


def test_sign_in_check_names_only_the_right_person():
    hashes = {"Alice": passwords.hash_password("alice-secret", iterations=2_000),
              "bob": passwords.hash_password("bob-secret-1", iterations=2_000)}
    assert passwords.check_sign_in("alice", "alice-secret", hashes) == "Alice"  # the name as configured
    assert passwords.check_sign_in(" Bob ", "bob-secret-1", hashes) == "bob"
    assert passwords.check_sign_in("alice", "bob-secret-1", hashes) is None  # someone else's password
    assert passwords.check_sign_in("mallory", "alice-secret", hashes) is None
    assert passwords.check_sign_in("", "", hashes) is None


@pytest.mark.parametrize("stored", ["alice-secret", "sha256$abc", "pbkdf2_sha256$10$00$" + "00" * 32,
                                    "pbkdf2_sha256$2000$$" + "00" * 32, "pbkdf2_sha256$x$00$00"])
def test_plain_text_or_weak_stored_passwords_are_refused(stored):
    with pytest.raises(passwords.PasswordSettingError, match="hash-password"):
        passwords.check_sign_in("alice", "alice-secret", {"alice": stored})


def test_short_passwords_are_refused():
    with pytest.raises(ValueError, match="at least 8"):
        passwords.hash_password("short")


def test_cli_hash_password_prints_a_secrets_line():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "core", "hash-password", "--name", "alice"], input="alice-secret\n",
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    name, _, value = proc.stdout.strip().partition(" = ")
    assert name == '"alice"'
    assert passwords.verify_password("alice-secret", json.loads(value))
    proc = subprocess.run([sys.executable, "-m", "core", "hash-password"], input="short\n", capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ model roots

@pytest.fixture
def roots(tmp_path, monkeypatch, spanlab_home, tiny_model_dir):
    """SPANLAB_MODEL_ROOTS = an 'allowed' folder holding a model; a model outside it; a missing folder outside."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = allowed / "tiny"
    inside.symlink_to(tiny_model_dir, target_is_directory=True)  # a link to a folder outside: outside
    real_inside = allowed / "copy"
    real_inside.mkdir()
    for item in tiny_model_dir.iterdir():
        (real_inside / item.name).write_bytes(item.read_bytes())
    monkeypatch.setenv("SPANLAB_MODEL_ROOTS", str(allowed))
    return {"allowed": allowed, "inside": real_inside, "link_out": inside, "outside": tiny_model_dir,
            "missing": tmp_path / "secret" / "nothing-here"}


def test_folders_outside_the_roots_get_one_answer_whether_they_exist_or_not(roots):
    answers = []
    for ref in (str(roots["outside"]), str(roots["missing"]), str(roots["link_out"]),
                str(roots["allowed"] / ".." / roots["outside"].name), "/etc", "~/.ssh"):
        with pytest.raises(models.OutsideModelRoots) as caught:
            models.resolve(ref)
        answers.append(str(caught.value).replace(ref, "REF"))
        assert models.availability(ref) == (False, "not in a model folder this server allows")
    assert len(set(answers)) == 1, answers
    assert str(roots["allowed"]) in answers[0]  # says where models may be put


def test_folders_inside_the_roots_work(roots):
    resolved = models.resolve(str(roots["inside"]))
    assert resolved.source == "local" and resolved.folder == roots["inside"].resolve()
    assert models.availability(str(roots["inside"])) == (True, "local folder")
    with pytest.raises(models.ModelUnavailable, match="does not exist"):  # inside the roots: saying so is fine
        models.resolve(str(roots["allowed"] / "missing"))


def test_hub_like_names_are_not_looked_up_on_disk_outside_the_roots(roots, monkeypatch, tmp_path):
    (tmp_path / "work" / "somemodel").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.local_folder("somemodel") is None  # read as a hub id, as if the folder were not there
    with pytest.raises(models.ModelUnavailable, match="Hugging Face Hub"):
        models.resolve("somemodel")


def test_unrestricted_without_the_setting(tiny_model_dir, monkeypatch, spanlab_home):
    monkeypatch.delenv("SPANLAB_MODEL_ROOTS", raising=False)
    assert models.resolve(str(tiny_model_dir)).source == "local"


def test_predict_on_a_folder_outside_the_roots_is_refused(roots, capsys):
    for ref in (roots["outside"], roots["missing"]):
        with pytest.raises(inference.PredictorError, match="not in a model folder this server allows"):
            inference.run_folder(str(ref))
    code = main(["predict", str(roots["outside"]), "--text", "good movie"])
    assert code == 2 and "not in a model folder this server allows" in capsys.readouterr().err


def test_training_from_a_folder_outside_the_roots_fails_before_loading(roots, capsys):
    from core import storage
    from tests.conftest import sentiment_rows
    storage.create_dataset("s", "classification", sentiment_rows(4))
    code = main(["train", "--dataset", "s", "--model", str(roots["outside"]), "--max-steps", "1", "--device", "cpu"])
    assert code != 0
    for run in storage.list_runs():  # if a run row was recorded at all, it failed with the roots message
        assert run["status"] == "failed" and "not in a model folder this server allows" in run["error"]
    assert "not in a model folder this server allows" in capsys.readouterr().out


def test_sign_in_throttle_locks_a_name_after_repeated_failures():
    now = [0.0]
    throttle = passwords.SignInThrottle(limit=3, window_s=60, lockout_s=300, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("Alice")
    assert throttle.wait_s("alice") == 0
    throttle.succeeded("alice")  # a success forgets earlier failures
    for _ in range(2):
        throttle.failed("alice")
    now[0] = 61.0  # failures older than the window do not count
    throttle.failed("alice")
    assert throttle.wait_s("alice") == 0
    throttle.failed("alice")
    throttle.failed(" ALICE ")
    assert throttle.wait_s("alice") == 300 and throttle.wait_s("bob") == 0
    now[0] += 299
    assert throttle.wait_s("alice") == pytest.approx(1)
    now[0] += 1
    assert throttle.wait_s("alice") == 0


def test_a_run_waits_for_the_warm_up_imports():
    """transformers 5 resolves its lazy names unsafely from two threads (a run started while the app's warm-up
    thread still imported failed with ImportError in the browser test): a run's imports wait for the warm-up."""
    import threading
    finished = threading.Event()
    with models.IMPORT_LOCK:  # a warm-up in progress
        waiter = threading.Thread(target=lambda: (models.wait_for_warm_up(), finished.set()))
        waiter.start()
        assert not finished.wait(0.3)  # cannot return while the warm-up holds the lock
    assert finished.wait(10)
    waiter.join()
