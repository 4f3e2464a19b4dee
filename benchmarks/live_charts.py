"""What the Train page's live charts cost per refresh, with a 2,000-iteration run, and whether a
zoom and the hover box survive new records.

A made-up run of 2,000 records (tests/live_helpers.py, written through trpo.store) is marked
running by this process; one headless Chromium tab at 1280x720 shows it. Two 10 s windows:
idle (no new record: the panel still refreshes every second) and growing (one record appended
per second). Per window: bytes and messages the browser received (websocket frames, and the
answers of the live-charts route, GET /live/..., where the page has one), the Streamlit
server's CPU time (/proc), the browser's long tasks (> 50 ms). Before the growing window the KL
chart (the page's second plotly chart) is zoomed by a mouse drag and the mouse rests on it;
after it, is the zoom kept, and how often was the hover box shown? Apart from the browser, the
Python time of one whole run of the Train page (AppTest, in a fresh process of that checkout),
idle and with one new record per run.

    python benchmarks/live_charts.py                      # this checkout, about a minute
    python benchmarks/live_charts.py --app-dir /tmp/old   # another checkout (before/after)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import common

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live_helpers import synthetic_record, synthetic_run  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__longTasks.push(e.duration);
}).observe({type: 'longtask', buffered: true});
"""
KL = "() => document.querySelectorAll('.js-plotly-plot')[1]"
# argv: app dir, tests dir, iterations; prints {"idle_ms": ..., "new_record_ms": ...}
PAGE_RUN = """
import json, os, statistics, sys, tempfile, time
from pathlib import Path
app, tests, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [app, tests]
runs = Path(tempfile.mkdtemp()) / "runs"
os.environ["TRPO_RUNS_DIR"] = str(runs)
from live_helpers import synthetic_record, synthetic_run
from streamlit.testing.v1 import AppTest
run = synthetic_run(runs, iterations, "long")
at = AppTest.from_file(os.path.join(app, "app.py"), default_timeout=60)
for _ in range(3):
    at.run()
def timed():
    start = time.perf_counter()
    at.run()
    return 1000 * (time.perf_counter() - start)
idle = [timed() for _ in range(15)]
grown = []
for n in range(iterations + 1, iterations + 16):
    run.append(synthetic_record(n))
    grown.append(timed())
run.set_status("stopped")
assert not at.exception, at.exception
print(json.dumps({"idle_ms": statistics.median(idle), "new_record_ms": statistics.median(grown)}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app_dir: Path, runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TRPO_RUNS_DIR": str(runs), "PYTHONPATH": str(app_dir)}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.headless", "true", "--server.address", "127.0.0.1"]
    command += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(
        command, cwd=app_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the Streamlit server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def route_answer(response: Any, frames: list[tuple[float, int]]) -> None:
    """An answer of the live-charts route counts as a message received (its body's bytes)."""
    if "/live/" in response.url:
        frames.append((time.monotonic(), int(response.headers.get("content-length", 0))))


class Window:
    """Counts what the page receives and does between start() and stop()."""

    def __init__(self, page: Any, server_pid: int, frames: list[tuple[float, int]]) -> None:
        self.page, self.pid, self.frames = page, server_pid, frames

    def start(self) -> None:
        self.t0, self.cpu0 = time.monotonic(), cpu_seconds(self.pid)
        self.tasks0 = self.page.evaluate("() => window.__longTasks.length")

    def stop(self) -> dict[str, float]:
        seconds = time.monotonic() - self.t0
        sizes = [n for t, n in self.frames if t >= self.t0]
        tasks = self.page.evaluate(f"() => window.__longTasks.slice({self.tasks0})")
        return {
            "seconds": seconds,
            "kb_per_s": sum(sizes) / 1000 / seconds,
            "frames_per_s": len(sizes) / seconds,
            "server_cpu_ms_per_s": 1000 * (cpu_seconds(self.pid) - self.cpu0) / seconds,
            "long_tasks": len(tasks),
            "long_task_ms": sum(tasks),
        }


def measure(app_dir: Path, iterations: int, window_s: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="livebench-"))
    run = synthetic_run(work / "runs", iterations, "long")
    server, url = start_server(app_dir, work / "runs")
    frames: list[tuple[float, int]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.add_init_script(LONG_TASKS)
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived", lambda data: frames.append((time.monotonic(), len(data)))
                ),
            )
            page.on("response", lambda response: route_answer(response, frames))
            started = time.monotonic()
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_function(
                """() => { const charts = document.querySelectorAll('.js-plotly-plot');
                    return charts.length >= 4 && Array.from(charts).every(
                        c => c.data && c.data.some(t => t.x && t.x.length)); }""",
                timeout=120_000,
            )
            load_s = time.monotonic() - started
            page.wait_for_timeout(3000)
            window = Window(page, server.pid, frames)
            window.start()
            page.wait_for_timeout(window_s * 1000)
            idle = window.stop()

            box = page.evaluate_handle(KL).as_element().query_selector(".nsewdrag")
            area = box.bounding_box()
            y = area["y"] + area["height"] / 2
            page.mouse.move(area["x"] + area["width"] * 0.3, y)
            page.mouse.down()
            page.mouse.move(area["x"] + area["width"] * 0.6, y, steps=5)
            page.mouse.up()
            page.wait_for_timeout(300)
            zoomed = page.evaluate(f"() => ({KL})().layout.xaxis.range.slice()")
            page.mouse.move(area["x"] + area["width"] * 0.45, y)
            page.wait_for_timeout(300)

            window.start()
            hovered, samples, n = 0, 0, iterations
            next_record = time.monotonic()
            while time.monotonic() - window.t0 < window_s:
                if time.monotonic() >= next_record:
                    n += 1
                    run.append(synthetic_record(n))
                    next_record += 1.0
                page.wait_for_timeout(100)
                samples += 1
                hovered += page.evaluate(
                    f"() => ({KL})().querySelectorAll('.hoverlayer > *').length > 0"
                )
            growing = window.stop()
            page.wait_for_timeout(1500)
            kept = page.evaluate(f"() => ({KL})().layout.xaxis.range.slice()") == zoomed
            browser.close()
    finally:
        run.set_status("stopped")
        server.terminate()
        server.wait(20)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "app_dir": str(app_dir),
        "iterations": iterations,
        "load_s": load_s,
        "idle": idle,
        "growing": growing,
        "zoom_kept": kept,
        "hover_shown": hovered / max(1, samples),
    }


def page_run_ms(app_dir: Path, iterations: int) -> dict[str, float]:
    """Median Python time of one run of the Train page (AppTest), idle and with a new record."""
    env = {**os.environ, "PYTHONPATH": str(app_dir)}
    command = [sys.executable, "-c", PAGE_RUN, str(app_dir), str(ROOT / "tests"), str(iterations)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout to serve")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--output", default=None, help="JSON path (benchmarks/results/...)")
    args = parser.parse_args()
    result = measure(args.app_dir.resolve(), args.iterations, args.window)
    result["page_run"] = page_run_ms(args.app_dir.resolve(), args.iterations)
    rows = [
        [
            name,
            f"{w['kb_per_s']:.1f}",
            f"{w['frames_per_s']:.0f}",
            f"{w['server_cpu_ms_per_s']:.0f}",
            f"{w['long_tasks']} ({w['long_task_ms']:.0f} ms)",
        ]
        for name, w in (("idle", result["idle"]), ("one record per s", result["growing"]))
    ]
    headers = ["window", "kB/s received", "messages/s", "server CPU ms/s", "long tasks"]
    print(common.markdown_table(headers, rows))
    print(
        f"\npage load {result['load_s']:.1f} s; zoom kept: {result['zoom_kept']}; "
        f"hover box shown {100 * result['hover_shown']:.0f}% of the time; one page run "
        f"(AppTest) {result['page_run']['idle_ms']:.0f} ms idle, "
        f"{result['page_run']['new_record_ms']:.0f} ms with a new record"
    )
    common.write_results("live_charts", result, args.output)


if __name__ == "__main__":
    main()
