"""Items 6 and 7: from `streamlit run app.py` to the first page fully drawn in headless Chromium, as a
ratio to `python -c "import torch"`; and the server's peak resident memory once MNIST is loaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.measure import median
from mnistlab.school import stop_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("MNISTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Fully drawn: the first script run is over, no placeholder is left, and every visible Plotly
# chart has been drawn by Plotly.
RENDERED = """(page) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app ? app.dataset : {};
  if (state.testScriptState !== 'notRunning' || state.testConnectionState !== 'CONNECTED') return false;
  const current = document.querySelector('[aria-current="page"]')?.textContent || '';
  if (page && !current.includes(page)) return false;
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(c => c.offsetParent);
  if (!charts.every(c => c.querySelector('.main-svg'))) return false;
  // The first page (Start) has no figure: its title and links drawn, no placeholder left.
  return page ? true : !!document.querySelector('h1')
    && !document.querySelector('[data-testid="stSkeleton"]');
}"""
# The browser has the first script run's whole output (its figures may still be drawing).
SCRIPT_DONE = """() => {
  const state = document.querySelector('[data-testid="stApp"]')?.dataset || {};
  return state.testScriptState === 'notRunning' && state.testConnectionState === 'CONNECTED';
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> dict:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0]) / 1024
    return {"peak_mb": fields.get("VmHWM"), "now_mb": fields.get("VmRSS")}


def import_torch() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


def app_start(browser, models_dir: str, visit_pages: bool) -> dict:
    """Seconds from launching the server to the first page drawn, with the moments between (where
    the time goes); then the server's memory, after visiting every page when `visit_pages`."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
           "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "MNISTLAB_MODELS": models_dir}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        url = f"http://127.0.0.1:{port}"
        while True:  # as a person would: the browser is opened once the server answers
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
        phases = {"server_answers": time.perf_counter() - start}
        page = context.new_page()
        page.goto(url)
        phases["page_loaded"] = time.perf_counter() - start
        page.wait_for_function(SCRIPT_DONE, timeout=180_000)
        phases["script_done"] = time.perf_counter() - start
        page.wait_for_function(RENDERED, arg=None, timeout=180_000)
        seconds = time.perf_counter() - start
        memory = {"first_page": _peak_rss_mb(proc.pid)}
        if visit_pages:
            links = page.locator('[data-testid="stSidebarNavLink"] [data-testid="stMarkdownContainer"]')
            for name in links.all_inner_texts():
                links.filter(has_text=name).first.click()
                page.wait_for_function(RENDERED, arg=name.strip(), timeout=180_000)
            memory["every_page"] = _peak_rss_mb(proc.pid)
        return {"seconds": seconds, "phases": phases, "memory": memory}
    finally:
        context.close()
        stop_server(proc)


def run(reps: int, quick: bool, log=print) -> dict:
    from playwright.sync_api import sync_playwright

    torch_times, app_times, phases, memory = [], [], [], []
    with tempfile.TemporaryDirectory() as models, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for r in range(1 + reps):  # the first round warms the disk cache and is not kept
                t = import_torch()
                a = app_start(browser, models, visit_pages=r > 0)
                label = "warm-up" if r == 0 else f"rep {r}/{reps}"
                peak = a["memory"].get("every_page", a["memory"]["first_page"])["peak_mb"]
                p = a["phases"]
                log(f"  {label} import torch: {t:.2f} s, app start: {a['seconds']:.2f} s (server answers "
                    f"{p['server_answers']:.2f}, page loaded {p['page_loaded']:.2f}, script done "
                    f"{p['script_done']:.2f}), server peak RSS {peak:.0f} MB")
                if r > 0:
                    torch_times.append(t)
                    app_times.append(a["seconds"])
                    phases.append(p)
                    memory.append(a["memory"])
        finally:
            browser.close()
    ratio = median(app_times) / median(torch_times)
    peak_first = max(m["first_page"]["peak_mb"] for m in memory)
    peak_all = max(m["every_page"]["peak_mb"] for m in memory)
    return {"start": {"app_s": median(app_times), "import_torch_s": median(torch_times), "ratio": ratio,
                      "goal": 2, "app_times": app_times, "import_torch_times": torch_times,
                      "phases_s": {k: median([p[k] for p in phases]) for k in phases[0]}},
            "memory": {"peak_mb_first_page": peak_first, "peak_mb_every_page": peak_all, "goal_mb": 1500,
                       "rounds": memory}}
