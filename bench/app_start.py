"""Benchmark 5: app start — time from ``streamlit run app.py`` to the first page (Data) fully rendered in a browser,
vs a one-line hello-world Streamlit app, on the same machine in the same run.

Each repetition starts a fresh server process (``--server.fileWatcherType none --server.headless true`` on a free
port, working directory = the repository so both apps read the same ``.streamlit/config.toml``), polls
``/_stcore/health`` until the server answers, opens the page in headless Chromium (Playwright driving Debian's
``/usr/bin/chromium``; the browser itself is launched once, before timing) and waits until the page's last
section is drawn and Streamlit's status widget no longer says "Running". The two apps alternate (which goes first
alternates too) after one untimed warm-up start of each (which also creates SpanLab's database in a private
SPANLAB_HOME, so timed starts find an existing, empty database as a returning user does).

    python bench/app_start.py [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import bench_common as bc

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
HELLO_APP = 'import streamlit as st\nst.write("Hello world")\n'
# What each app shows when its first page is complete: the Data page's last section is "Your datasets".
APPS = {"spanlab": {"texts": ["Data", "Import a file", "Your datasets"]},
        "hello_world": {"texts": ["Hello world"]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"streamlit did not answer on port {port} within {timeout:.0f} s")


def start_once(browser, script: str, texts: list[str], env: dict, timeout: float) -> dict:
    """Start a server for ``script``, render its first page; returns seconds to health and to fully rendered."""
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", script, "--server.fileWatcherType", "none",
            "--server.headless", "true", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=bc.REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    context = None
    try:
        wait_healthy(port, proc, timeout)
        healthy = time.perf_counter() - started
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/", timeout=timeout * 1000)
        for text in texts:
            page.get_by_text(text, exact=True).first.wait_for(state="visible", timeout=timeout * 1000)
        page.wait_for_function(
            "() => !(document.querySelector('[data-testid=\"stStatusWidget\"]')?.innerText || '').includes('Running')",
            timeout=timeout * 1000)
        rendered = time.perf_counter() - started
        errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
        return {"healthy_s": healthy, "rendered_s": rendered, "error_elements": errors}
    finally:
        if context is not None:
            context.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="timed starts of each app")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    bc.require_module("streamlit", "pip install -r requirements.txt")
    bc.require_module("playwright", "pip install -r requirements.txt")
    if not Path(CHROMIUM).exists():
        bc.skip(f"{CHROMIUM} not found: apt-get install -y chromium")
    if not (bc.REPO_ROOT / "app.py").exists():
        bc.skip("app.py not found in the repository root")
    from playwright.sync_api import sync_playwright

    home = bc.use_private_home()
    env = dict(os.environ, SPANLAB_HOME=str(home), TOKENIZERS_PARALLELISM="false")
    info = bc.machine_info()
    bc.print_machine(info)
    hello = Path(tempfile.mkdtemp(prefix="bench-hello-")) / "hello.py"
    hello.write_text(HELLO_APP, encoding="utf-8")
    scripts = {"spanlab": "app.py", "hello_world": str(hello)}

    times = {name: [] for name in APPS}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for name in APPS:  # warm-up: OS file cache, SpanLab's database
                warm = start_once(browser, scripts[name], APPS[name]["texts"], env, args.timeout)
                print(f"  warm-up {name:<12} rendered in {warm['rendered_s']:.2f} s", flush=True)
            for rep in range(args.reps):
                order = list(APPS) if rep % 2 == 0 else list(APPS)[::-1]
                for name in order:
                    result = start_once(browser, scripts[name], APPS[name]["texts"], env, args.timeout)
                    times[name].append(result)
                    print(f"  rep {rep + 1} {name:<12} healthy {result['healthy_s']:.2f} s, rendered "
                          f"{result['rendered_s']:.2f} s" + (f" ({result['error_elements']} error elements!)"
                                                             if result["error_elements"] else ""), flush=True)
        finally:
            browser.close()

    rows = []
    for name, results in times.items():
        rendered = [r["rendered_s"] for r in results]
        rows.append({"app": name, "reps": len(results), "median s": statistics.median(rendered),
                     "min s": min(rendered), "max s": max(rendered),
                     "server ready (median) s": statistics.median(r["healthy_s"] for r in results)})
    ratio = rows[0]["median s"] / rows[1]["median s"]
    table = bc.print_table(rows, ["app", "reps", "median s", "min s", "max s", "server ready (median) s"],
                           title="streamlit run -> first page fully rendered")
    print(f"SpanLab / hello world = {ratio:.2f}x (median): {'meets' if ratio <= 2 else 'MISSES'} the <= 2x target")
    bc.write_results("app_start", {"machine": info, "args": vars(args), "chromium": CHROMIUM, "runs": times,
                                   "table": rows, "markdown": table, "ratio": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
