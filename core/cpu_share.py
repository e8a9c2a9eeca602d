"""Sharing the CPU between a training run and a person waiting for a prediction on the same machine.

The web app trains in a background thread of its server process, and a CLI ``train`` may run beside it; a Demo answer
asked meanwhile competes with every optimizer step for the same cores (both use all of torch's threads), and on a
small machine the answer took many times longer. So while a single prediction runs on the CPU (``prediction()``,
entered by core.inference for what a person waits for: one text, one question), training loops on this machine pause
between optimizer steps (``pause_for_predictions()``), at most ``MAX_PAUSE_S`` at a time, and go on as soon as the
answer is out. Threads of the predicting process wait on a condition; other processes (a CLI run, a second server)
see a flag file that the predicting process keeps in ``$SPANLAB_HOME/predicting/`` (named host-pid) while it
predicts: a directory scan per step, microseconds. A flag whose process is gone is removed, and one older than
``MAX_PAUSE_S`` is ignored. Batch predictions (label suggestions for a whole dataset, ``predict --file``) do not pause
training. Set ``ENABLED = False`` to switch it off (bench/demo_latency.py measures both).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from core import config

log = logging.getLogger(__name__)

ENABLED = True
MAX_PAUSE_S = 30.0  # a prediction longer than this lets training take a step between waits
FLAG_POLL_S = 0.02  # how often a paused run looks again at another process's flag
HOST = socket.gethostname()

_changed = threading.Condition()
_running = 0  # predictions in progress


@contextmanager
def prediction():
    """Mark a prediction someone waits for as running: training loops on this machine pause between steps meanwhile
    (this process's threads on a condition; other processes see this process's flag file, up while any runs)."""
    global _running
    with _changed:
        _running += 1
        if _running == 1:
            _set_flag(True)
    try:
        yield
    finally:
        with _changed:
            _running -= 1
            if _running == 0:
                _set_flag(False)
            _changed.notify_all()


def predictions_running() -> int:
    return _running


def pause_for_predictions(max_wait: float = MAX_PAUSE_S) -> float:
    """For a training loop on the CPU, between optimizer steps: wait while a prediction runs in this process or in
    another one on this machine (at most ``max_wait`` seconds); returns the seconds waited (0 when none ran)."""
    if not ENABLED or not (_running or others_predicting()):
        return 0.0
    started = time.monotonic()
    with _changed:
        _changed.wait_for(lambda: not _running or not ENABLED, timeout=max_wait)
    while ENABLED and others_predicting() and time.monotonic() - started < max_wait:
        time.sleep(FLAG_POLL_S)
    waited = time.monotonic() - started
    log.debug("training paused %.2f s for a prediction", waited)
    return waited


def flag_folder() -> Path:
    return config.home() / "predicting"


def others_predicting() -> bool:
    """Whether another live process on this machine has a prediction running (its flag, not older than
    MAX_PAUSE_S). Flags of processes that are gone are removed."""
    from core.runs_store import _process_alive  # the check dead run workers are found with
    try:
        entries = list(os.scandir(flag_folder()))
    except Exception:  # noqa: BLE001 - no flag yet, or a home that cannot be read: nothing to wait for
        return False
    now = time.time()
    for entry in entries:
        host, _, pid = entry.name.rpartition("-")
        if host != HOST or not pid.isdigit() or int(pid) == os.getpid():
            continue
        if not _process_alive(int(pid)):
            _remove(Path(entry.path))
            continue
        try:
            if now - entry.stat().st_mtime < MAX_PAUSE_S:
                return True
        except OSError:  # lowered meanwhile
            continue
    return False


def _set_flag(up: bool) -> None:
    """Raise (touch) or lower this process's flag; a home that cannot be written only costs the other processes
    their pause."""
    if up and not ENABLED:
        return
    path = flag_folder() / f"{HOST}-{os.getpid()}"
    try:
        if up:
            path.parent.mkdir(exist_ok=True)
            path.touch()
        else:
            _remove(path)
    except Exception as error:  # noqa: BLE001 - a prediction never fails over this
        log.debug("prediction flag %s not %s: %s", path, "raised" if up else "lowered", error)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        log.debug("prediction flag %s not removed: %s", path, error)

