"""What the real-browser tests share: a Streamlit server on a free loopback port, and a headless Debian chromium
tab driven by Playwright (as root: no sandbox; no background networking, which this closed network refuses)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 60_000  # a wait for a state, not a speed check: generous for a loaded 2-core machine
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM} (bash "
                                                                  "scripts/test.sh installs it: apt-get install chromium)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"streamlit did not answer {url}/_stcore/health within {timeout:.0f} s:\n"
                f"{log.read_text(errors='replace')}")


@contextmanager
def streamlit_server(script: str, home: Path, log: Path, server_args: tuple[str, ...] = (), **env_extra: str):
    """``streamlit run script`` (a path relative to the repository) with its own SPANLAB_HOME, and
    ``server_args`` (more ``--option value`` pairs, e.g. ``--secrets.files``); yields its URL."""
    port = free_port()
    env = {**os.environ, "SPANLAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           **env_extra}
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false", *server_args]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def browser_context(profile: Path):
    """A persistent chromium context with its own profile."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


def new_tab(context):
    """A tab whose dialogs (an injected alert()) are dismissed and kept in ``tab.dialogs`` for the test to check."""
    tab = context.pages[0] if context.pages else context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    return tab


def drag(page, start, end) -> None:
    """Press the mouse on one element (a word), move over to another in steps, release."""
    start.scroll_into_view_if_needed()
    a, b = start.bounding_box(), end.bounding_box()
    page.mouse.move(a["x"] + 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] - 2, b["y"] + b["height"] / 2, steps=6)
    page.mouse.up()
