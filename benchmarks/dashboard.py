"""Dashboard responsiveness: throughput with a tab open, chart latency, a 2,000-iteration run.

1. Throughput: the one-click demo (CartPole-v1 preset, geometry probe on) trained from the CLI,
   then launched from the dashboard with one headless Chromium tab watching it. Both figures are
   the trainer's own env steps / training wall time (from the run's records).
2. Latency: while the dashboard run trains, the time from a record being appended to
   metrics.jsonl until the KL chart in the browser holds that iteration's point.
3. A long run: a run folder with 2,000 iterations (records copied from the demo run), marked
   running, to which a record is appended every second: page load time until the four charts
   are drawn, and the same latency as above.

    python benchmarks/dashboard.py            # about 2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import common

ROOT = Path(__file__).resolve().parent.parent

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TRPO_RUNS_DIR": str(runs), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the Streamlit server did not start")


def records(run_dir: Path) -> list[dict]:
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def steps_per_second(run_dir: Path) -> float:
    last = records(run_dir)[-1]
    return last["env_steps"] / last["wall_time_s"]


def shown_iterations(page) -> int:
    """The iteration count the live panel shows (its metric is redrawn with the charts)."""
    text = page.evaluate(
        """() => {
            for (const card of document.querySelectorAll('[data-testid=stMetric]')) {
                if (card.innerText.startsWith('Iteration')) {
                    return card.querySelector('[data-testid=stMetricValue]').innerText;
                }
            }
            return '';
        }"""
    )
    head = text.split("/")[0].replace(",", "").strip()
    return int(head) if head.isdigit() else 0


class LineWatcher(threading.Thread):
    """Notes when each line of a metrics file appears (polled every 5 ms)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.appeared, self.stop = path, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                n = self.path.read_bytes().count(b"\n")
            except FileNotFoundError:
                n = 0
            now = time.monotonic()
            for i in range(len(self.appeared) + 1, n + 1):
                self.appeared[i] = now
            time.sleep(0.005)


def latencies(page, watcher: LineWatcher, until, start_after: int = 0) -> list[float]:
    """Seconds from line i appearing to the panel showing iteration i (for i > start_after),
    polled every 50 ms."""
    shown: dict[int, float] = {}
    while not until():
        n = shown_iterations(page)
        now = time.monotonic()
        for i in range(max(shown, default=start_after) + 1, n + 1):
            shown[i] = now
        time.sleep(0.05)
    return [
        shown[i] - watcher.appeared[i]
        for i in shown
        if i > start_after and i in watcher.appeared and shown[i] >= watcher.appeared[i]
    ]


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return f"median {statistics.median(values):.2f} s, p90 {p90:.2f} s, max {values[-1]:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long-iterations", type=int, default=2000)
    parser.add_argument("--output", default=None, help="JSON path (benchmarks/results/...)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="dashbench-"))
    # 1. the demo from the CLI
    cli_runs = work / "cli"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "trpo",
            "train",
            "--preset",
            "CartPole-v1",
            "--probe-geometry",
            "--quiet",
            "--runs-dir",
            str(cli_runs),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cli_run = next(p for p in cli_runs.iterdir() if (p / "config.json").exists())
    cli_rate = steps_per_second(cli_run)
    print(f"CLI: {cli_rate:,.0f} steps/s", file=sys.stderr)

    runs = work / "dash"
    server, url = start_server(runs)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(url)
            page.wait_for_selector(".st-key-demo button", timeout=60_000)
            page.locator(".st-key-demo button").click()
            while not runs.exists() or not any(runs.iterdir()):
                time.sleep(0.01)
            dash_run = next(runs.iterdir())
            while not (dash_run / "status.json").exists():
                time.sleep(0.01)
            watcher = LineWatcher(dash_run / "metrics.jsonl")
            watcher.start()

            def finished() -> bool:
                try:
                    status = json.loads((dash_run / "status.json").read_text())
                except (OSError, json.JSONDecodeError):
                    return False
                return status["state"] != "running" and shown_iterations(page) >= len(
                    watcher.appeared
                )

            demo_latency = latencies(page, watcher, finished)
            watcher.stop.set()
            dash_rate = steps_per_second(dash_run)
            print(f"dashboard: {dash_rate:,.0f} steps/s", file=sys.stderr)

            # 3. a 2,000-iteration run, still "running" (this process's pid), growing every 1 s
            template = records(dash_run)
            long_dir = runs / "20000101-000000-CartPole-v1-long00"
            long_dir.mkdir()
            for name in ("config.json", "meta.json"):
                shutil.copy(dash_run / name, long_dir / name)
            (long_dir / "status.json").write_text(
                json.dumps({"state": "running", "pid": os.getpid(), "error": None})
            )
            step = template[0]["env_steps"]

            def record(i: int) -> str:
                row = dict(template[i % len(template)], iteration=i, env_steps=i * step)
                return json.dumps(row) + "\n"

            with open(long_dir / "metrics.jsonl", "w") as handle:
                handle.writelines(record(i) for i in range(1, args.long_iterations + 1))
            # make it the newest run so the Train page shows it
            os.utime(long_dir / "metrics.jsonl")
            (runs / long_dir.name).rename(runs / "29990101-000000-CartPole-v1-long00")
            long_dir = runs / "29990101-000000-CartPole-v1-long00"
            page2 = browser.new_page(viewport={"width": 1280, "height": 1400})
            start = time.monotonic()
            page2.goto(url)
            page2.wait_for_function(
                """() => ['returns','kl','backtrack','cg'].every(k => {
                    const el = document.querySelector(`.st-key-live_charts [data-chart=${k}]`);
                    return el && el.data && el.data.length > 0; })""",
                timeout=120_000,
            )
            load_seconds = time.monotonic() - start
            watcher = LineWatcher(long_dir / "metrics.jsonl")
            watcher.start()
            time.sleep(0.2)
            appended = 0
            stop_at = time.monotonic() + 20

            def writer() -> None:
                nonlocal appended
                while time.monotonic() < stop_at:
                    with open(long_dir / "metrics.jsonl", "a") as handle:
                        handle.write(record(args.long_iterations + appended + 1))
                    appended += 1
                    time.sleep(1.0)

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            long_latency = latencies(
                page2,
                watcher,
                lambda: time.monotonic() > stop_at + 3,
                start_after=args.long_iterations,
            )
            watcher.stop.set()
            browser.close()
    finally:
        server.terminate()
        server.wait(20)

    ratio = dash_rate / cli_rate
    rows = [
        ["throughput, CLI (demo config)", f"{cli_rate:,.0f} steps/s", ""],
        [
            "throughput, dashboard + 1 tab",
            f"{dash_rate:,.0f} steps/s",
            f"{100 * ratio:.0f}% of CLI (goal >= 90%)",
        ],
        ["record -> chart latency, live run", summary(demo_latency), "goal <= 1.5 s"],
        [f"page load with {args.long_iterations} iterations", f"{load_seconds:.2f} s", ""],
        [
            f"record -> chart latency, {args.long_iterations}-iteration run",
            summary(long_latency),
            "goal <= 1.5 s",
        ],
    ]
    print(common.markdown_table(["measure", "value", "note"], rows))
    common.write_results(
        "dashboard",
        {
            "cli_steps_per_s": cli_rate,
            "dashboard_steps_per_s": dash_rate,
            "ratio": ratio,
            "latency_live_s": demo_latency,
            "long_run_load_s": load_seconds,
            "latency_long_s": long_latency,
        },
        args.output,
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
