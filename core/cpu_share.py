"""Sharing the CPU between a training run and a person waiting for a prediction in the same process.

The web app trains in a background thread of its server process; a Demo answer asked meanwhile competes with every
optimizer step for the same cores (both use all of torch's threads), and on a small machine the answer took many
times longer. So while a single prediction runs on the CPU (``prediction()``, entered by core.inference for what a
person waits for: one text, one question), the training loop pauses between optimizer steps
(``pause_for_predictions()``), at most ``MAX_PAUSE_S`` at a time, and goes on as soon as the answer is out. Batch
predictions (label suggestions for a whole dataset, ``predict --file``) do not pause training. Only threads of one
process are coordinated: a CLI ``train`` in another process is not. Set ``ENABLED = False`` to switch it off
(bench/demo_latency.py measures both).
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)

ENABLED = True
MAX_PAUSE_S = 30.0  # a prediction longer than this lets training take a step between waits

_changed = threading.Condition()
_running = 0  # predictions in progress


@contextmanager
def prediction():
    """Mark a prediction someone waits for as running (training threads pause between steps meanwhile)."""
    global _running
    with _changed:
        _running += 1
    try:
        yield
    finally:
        with _changed:
            _running -= 1
            _changed.notify_all()


def predictions_running() -> int:
    return _running


def pause_for_predictions(max_wait: float = MAX_PAUSE_S) -> float:
    """For a training loop on the CPU, between optimizer steps: wait while a prediction runs (at most
    ``max_wait`` seconds); returns the seconds waited (0 when none ran)."""
    if not ENABLED or not _running:
        return 0.0
    started = time.monotonic()
    with _changed:
        _changed.wait_for(lambda: not _running or not ENABLED, timeout=max_wait)
    waited = time.monotonic() - started
    log.debug("training paused %.2f s for a prediction", waited)
    return waited
