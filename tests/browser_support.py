"""Shared by the browser tests: a Streamlit server on a free port, headless Chromium, helpers.

Debian's Chromium is driven by Playwright (never `playwright install`). Each test module
declares thin module-scoped fixtures over `serve`, `launch` and `warm`, so each module gets its
own server and runs directory.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHARTS = ("returns", "kl", "backtrack", "cg")
FIRST_NAVIGATION_MS = 180_000
NAVIGATION_MS = 90_000

needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path) -> tuple[subprocess.Popen, str]:
    """Start the dashboard on a free port with `runs` as its runs directory, once healthy:
    (process, url)."""
    port = free_port()
    env = {
        **os.environ,
        "TRPO_RUNS_DIR": str(runs),
        "TRPO_MAX_RUNS": "3",
        "SDL_VIDEODRIVER": "dummy",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("the Streamlit server did not become healthy")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve(runs: Path) -> Iterator[tuple[str, Path]]:
    """Run the dashboard on a free port with `runs` as its runs directory: (url, runs)."""
    proc, url = start_server(runs)
    yield url, runs
    stop_server(proc)


def launch() -> Iterator[Any]:
    """Headless Debian Chromium (the test is skipped without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def warm(url: str, browser: Any) -> None:
    """A cold first run (Chromium just installed, the app's imports not yet cached) can take far
    longer than any later navigation: pay it once, with a long timeout, before the tests."""
    context = browser.new_context()
    page = context.new_page()
    page.goto("about:blank")  # Chromium's own start-up
    page.goto(url, wait_until="domcontentloaded", timeout=FIRST_NAVIGATION_MS)
    page.wait_for_selector("[data-testid=stSidebarNav]", timeout=FIRST_NAVIGATION_MS)
    context.close()


def new_tab(browser, url: str, path: str = "", height: int = 1400, before: Any = None):
    """A new tab (its own session) at 1280 x height showing the page at path; `before(page)`
    runs before the navigation (to listen to the page's websocket, say)."""
    context = browser.new_context(viewport={"width": 1280, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    if before is not None:
        before(page)
    # DOM content, not the 'load' event: a cold Chromium was seen to miss 'load' for 30 s
    page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=NAVIGATION_MS)
    page.wait_for_selector("[data-testid=stSidebarNav]", timeout=NAVIGATION_MS)
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(600)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def chart_points(page, kind: str) -> int:
    """Points plotted by a live chart: what a person sees, read from plotly's own data."""
    return page.evaluate(
        """kind => {
            const el = document.querySelector(`.st-key-live_charts [data-chart=${kind}]`);
            if (!el || !el.data || !el.data.length) return 0;
            const len = t => (t.x ? t.x.length : 0);
            if (kind === 'returns') return len(el.data[el.data.length - 1]);
            if (kind === 'cg') return el.data.filter(t => len(t) > 0).length;
            return el.data.reduce((n, t) => n + len(t), 0);
        }""",
        kind,
    )


def metric(page, label: str) -> str:
    card = page.locator("[data-testid=stMetric]", has_text=label).first
    return card.locator("[data-testid=stMetricValue]").inner_text()


def slots(page) -> str:
    return page.get_by_text("training slots in use").first.inner_text()


def run_folders(runs: Path) -> list[Path]:
    return [p for p in runs.iterdir() if (p / "config.json").exists()] if runs.exists() else []


def state_of(folder: Path) -> str:
    return json.loads((folder / "status.json").read_text())["state"]


def goto_page(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a", has_text=title).first.click()
    page.wait_for_load_state("networkidle")


def click(page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()


def set_number(page, key: str, value: str) -> None:
    box = page.locator(f".st-key-{key} input").first
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(400)


def set_text(page, key: str, value: str) -> None:
    box = page.locator(f".st-key-{key} input").first
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(400)
