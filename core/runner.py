"""The job runner: a queue of training runs executed one at a time in a background thread.

One runner per process (the web app keeps it in ``st.cache_resource``; the CLI makes its own). The thread only
talks to the database, never to a UI: pages poll the run's row and metric points. On creation the runner
marks runs that a dead process left ``running`` or ``queued`` as ``interrupted``.
"""
from __future__ import annotations

import queue
import threading

from core import storage
from core.training import TrainConfig, check_for_model, execute_run


class JobRunner:
    def __init__(self, recover: bool = True):
        if recover:
            storage.mark_interrupted(only_dead=True)
        self._queue: queue.Queue[int] = queue.Queue()
        self._cancel: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.active_run: int | None = None

    def submit(self, cfg: TrainConfig, created_by: str | None = None) -> int:
        """Record a queued run (started by ``created_by``) and schedule it; returns the run id at once."""
        info = storage.get_dataset(cfg.dataset)
        check_for_model(cfg)
        run_id = storage.create_run(cfg.dataset, info["task"], cfg.model, cfg.to_params(),
                                    eval_dataset=cfg.eval_dataset, created_by=created_by)
        with self._lock:
            self._cancel[run_id] = threading.Event()
            self._queue.put(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="spanlab-trainer", daemon=True)
                self._thread.start()
        return run_id

    def cancel(self, run_id: int, by: str | None = None) -> bool:
        """Ask a queued or running run to stop (a running one stops within one optimizer step); ``by`` (who asked)
        is recorded on the run. A run another process trains (a CLI ``train``, another app) is asked through the
        database and stops at its worker's next heartbeat. False when the run is not queued or running."""
        with self._lock:
            event = self._cancel.get(run_id)
        if event is None:
            return storage.request_cancel(run_id, by)
        storage.record_cancel(run_id, by)
        event.set()
        return True

    def is_busy(self) -> bool:
        return self.active_run is not None or not self._queue.empty()

    def wait(self, run_id: int, timeout: float | None = None) -> dict:
        """Block until the run has finished (tests, scripts). Returns its row."""
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = storage.get_run(run_id)
            if run["status"] not in ("queued", "running"):
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']} after {timeout} s")
            time.sleep(0.2)

    def _work(self) -> None:
        while True:
            try:
                run_id = self._queue.get(timeout=1.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            event = self._cancel[run_id]
            try:
                if event.is_set():
                    storage.update_run(run_id, status="cancelled", error="cancelled before it started")
                    continue
                self.active_run = run_id
                execute_run(run_id, event)
            except Exception as exc:  # bookkeeping failure: never leave the run "running"
                try:
                    storage.update_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
                except Exception:
                    pass
            finally:
                self.active_run = None
                with self._lock:
                    self._cancel.pop(run_id, None)
