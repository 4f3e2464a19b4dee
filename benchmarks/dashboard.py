"""Dashboard responsiveness: training throughput with tabs open, record-to-chart latency,
browser CPU, and a 2,000-iteration run (issue 10).

Everything uses the one-click demo: the CartPole-v1 preset with the geometry probe
(`python -m trpo train --preset CartPole-v1 --probe-geometry` is its CLI equivalent).

1. Throughput. Three conditions, alternated for `--rounds` rounds (CLI, 1 tab, N tabs, CLI, ...):
   the demo trained from the CLI alone; started from the dashboard with one tab open; and with
   `--tabs` tabs open (each tab presses "One-click demo": the first press starts the run, the
   others attach to it, as when several people watch one run). A rate is the trainer's own
   env_steps / wall_time_s of the run's last record. Goal: each dashboard median >= 90% of the
   CLI median. Before the press every tab already shows the previous (finished) run, so plotly.js
   is in the page: the start-up cost of a fresh tab is the page load measured in 4.
2. Latency, in the same rounds: the time from a record line appearing in metrics.jsonl (the file
   polled every 5 ms) until the KL chart of each tab holds that iteration's point. The chart's
   data is read in the page every `--poll` seconds per tab (plotly's `.data` on
   `.st-key-live_charts [data-chart=kl]`): its layout's uirevision names the run, and the largest
   x over its two traces (accepted steps' KL, rejected-step markers) is the newest record's
   env_steps, since the downsampling keeps every trace's last point (a demo run of 98 iterations
   is not even downsampled). Goals with N tabs: median <= 0.5 s, max <= 1.5 s over all tabs.
   The probing runs throughout both dashboard conditions, so its cost (this process and
   Playwright's driver, a few per cent of a core) counts against the dashboard, not the CLI.
3. Browser CPU: user + system CPU time (/proc/<pid>/stat utime + stime) of the whole Chromium
   process tree (the browser process Playwright launched and all its descendants, found through
   the ppid links of /proc/*/stat; sampled every 0.5 s so that a process ending in the window
   still counts), over a `--cpu-window` window, per minute: one tab watching a live run (a CLI
   run of the demo config with a large step budget, stopped afterwards) and one tab idle on a
   finished run (the tab of the last one-tab round, once its run has finished).
4. A long run: a run folder with `--long-iterations` iterations (records of the demo run),
   marked running by this process, to which one record is appended per second: page load time
   (navigation until all four charts hold data) and the same latency in one tab.

The browser: Debian's Chromium (/usr/bin/chromium; never `playwright install`) driven by
Playwright for Python, headless, with the flags of CHROMIUM_ARGS (--no-sandbox --disable-gpu
--disable-dev-shm-usage --disable-quic --no-first-run --disable-background-networking
--disable-component-update --disable-sync), one browser context (its own Streamlit session) per
tab, viewport 1280x720. The server: `streamlit run app.py` headless on 127.0.0.1 with the file
watcher off. Browser, server, trainer and this script share the machine's cores.

    python benchmarks/dashboard.py                   # about 5 minutes (8 on a loaded machine)
    python benchmarks/dashboard.py --rounds 1 --cpu-window 5 --long-iterations 300 \\
        --long-seconds 5 --output /tmp/dashboard.json           # smoke test, about 2 minutes
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import common

ROOT = Path(__file__).resolve().parent.parent
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
VIEWPORT = {"width": 1280, "height": 720}
DEMO = ["--preset", "CartPole-v1", "--probe-geometry"]
TICKS = os.sysconf("SC_CLK_TCK")
GOAL_RATIO = 0.9
GOAL_MEDIAN_S = 0.5
GOAL_MAX_S = 1.5

# The KL chart as [uirevision ("<run id>|<x axis>"), largest x over its traces], or null.
KL_STATE = """() => {
    const gd = document.querySelector('.st-key-live_charts [data-chart=kl]');
    if (!gd || !gd.data || !gd.layout) return null;
    let x = null;
    for (const t of gd.data) {
        const xs = t.x || [];
        const last = xs.length ? xs[xs.length - 1] : null;
        if (last !== null && (x === null || last > x)) x = last;
    }
    return [String(gd.layout.uirevision || ''), x];
}"""
CHARTS_DRAWN = """() => ['returns', 'kl', 'backtrack', 'cg'].every(k => {
    const el = document.querySelector(`.st-key-live_charts [data-chart=${k}]`);
    return el && el.data && el.data.length > 0 && el.layout &&
        String(el.layout.uirevision || '').startsWith(%s);
})"""


# --- server, runs --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(runs: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TRPO_RUNS_DIR": str(runs),
        "PYTHONPATH": str(ROOT),
        "SDL_VIDEODRIVER": "dummy",
    }


def start_server(runs: Path) -> tuple[subprocess.Popen, str]:
    """The dashboard on a free port with `runs` as its runs directory, once healthy."""
    port = free_port()
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
        env=child_env(runs),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the Streamlit server did not start")


def cli_train(runs: Path, *extra: str, wait: bool = True) -> subprocess.Popen:
    """`python -m trpo train` with the demo config (plus `extra`) into `runs`."""
    command = [sys.executable, "-m", "trpo", "train", *DEMO, "--quiet", "--runs-dir", str(runs)]
    proc = subprocess.Popen(
        [*command, *extra],
        cwd=ROOT,
        env=child_env(runs),
        stdout=subprocess.DEVNULL,
        stderr=None if wait else subprocess.DEVNULL,  # a stopped run says so on stderr
    )
    if wait and proc.wait() != 0:
        raise SystemExit(f"the CLI training failed (exit {proc.returncode})")
    return proc


def run_folders(runs: Path) -> set[Path]:
    return {p for p in runs.iterdir() if (p / "config.json").exists()} if runs.exists() else set()


def wait_for_new_run(runs: Path, before: set[Path], timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = run_folders(runs) - before
        if new:
            return new.pop()
        time.sleep(0.01)
    raise SystemExit("no new run folder appeared")


def state_of(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "status.json").read_text())["state"]
    except (OSError, json.JSONDecodeError, KeyError):
        return "unknown"


def records(run_dir: Path) -> list[dict]:
    rows = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def steps_per_second(run_dir: Path) -> float:
    """The trainer's own rate: env_steps / wall_time_s of the run's last record."""
    last = records(run_dir)[-1]
    return last["env_steps"] / last["wall_time_s"]


# --- latency -------------------------------------------------------------------------------


class LineWatcher(threading.Thread):
    """Notes when each line of a metrics file appears (polled every 5 ms): line -> time."""

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


class ChartWatcher:
    """Per tab, when the KL chart of one run grew: (time, largest x) each time it did.

    Playwright's sync API belongs to one thread, so the tabs are read in turn from the caller's
    loop (`poll`), each once per `interval`."""

    def __init__(self, pages: list[Any], run_id: str) -> None:
        self.pages, self.prefix = pages, f"{run_id}|"
        self.samples: list[list[tuple[float, float]]] = [[] for _ in pages]

    def poll(self) -> None:
        for page, samples in zip(self.pages, self.samples, strict=True):
            state = page.evaluate(KL_STATE)
            now = time.monotonic()
            if not state or not state[0].startswith(self.prefix) or state[1] is None:
                continue
            if not samples or state[1] > samples[-1][1]:
                samples.append((now, float(state[1])))

    def largest_x(self) -> list[float]:
        return [s[-1][1] if s else float("-inf") for s in self.samples]

    def watch(self, until: Any, interval: float) -> None:
        """Poll every `interval` seconds until `until()` is true."""
        while not until():
            start = time.monotonic()
            self.poll()
            time.sleep(max(0.0, interval - (time.monotonic() - start)))


def latencies(
    appeared: dict[int, float], steps: dict[int, float], samples: list[tuple[float, float]]
) -> tuple[list[float], int]:
    """Seconds from line i appearing to the first sample whose largest x reaches line i's
    env_steps, for every line in `steps`; and how many lines the chart never showed."""
    times = [t for t, _ in samples]
    xs = [x for _, x in samples]
    out, missing = [], 0
    for i, x in sorted(steps.items()):
        k = bisect.bisect_left(xs, x)
        if k == len(xs) or i not in appeared:
            missing += 1
            continue
        out.append(times[k] - appeared[i])
    return out, missing


# --- browser CPU -----------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, str, int]]:
    """pid -> (ppid, command name, utime + stime in clock ticks), from /proc/*/stat."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        head, _, tail = text.rpartition(")")
        fields = tail.split()  # fields[0] is stat's field 3 (state)
        table[int(entry.name)] = (
            int(fields[1]),
            head.partition("(")[2],
            int(fields[11]) + int(fields[12]),
        )
    return table


def descendants(table: dict[int, tuple[int, str, int]], pid: int) -> list[int]:
    """Every process below pid (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for child, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(child)
    found, stack = [], list(children.get(pid, []))
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(children.get(p, []))
    return found


def browser_tree(table: dict[int, tuple[int, str, int]], ancestor: int) -> set[int]:
    """The Chromium processes started under `ancestor` (this process; Playwright's driver sits
    in between): each browser process whose parent is not Chromium, and all its descendants.

    Chromium's crash reporters (chrome_crashpad_handler) detach to init and are not counted:
    they sleep unless a process crashes."""

    def chromium(pid: int) -> bool:
        return pid in table and "chrom" in table[pid][1].lower()

    roots = [p for p in descendants(table, ancestor) if chromium(p) and not chromium(table[p][0])]
    return {q for root in roots for q in [root, *descendants(table, root)]}


def probe_cpu_s() -> float:
    """CPU seconds so far of what measures: this process (its file and chart polling) and
    Playwright's driver (node, a child of this process whose thread name is node-MainThread,
    relaying every page.evaluate)."""
    table = process_table()
    pids = [os.getpid()] + [
        p for p in descendants(table, os.getpid()) if table[p][1].startswith("node")
    ]
    return sum(table[p][2] for p in pids) / TICKS


class CpuMeter(threading.Thread):
    """CPU seconds of the Chromium tree between start() and finish(), sampled every 0.5 s: a
    process alive at the start counts from its ticks then, a new one from zero, one that ends
    with its last sampled ticks."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop, self.base, self.last = threading.Event(), {}, {}
        table = process_table()
        for pid in browser_tree(table, os.getpid()):
            self.base[pid] = self.last[pid] = table[pid][2]
        self.started = time.monotonic()

    def sample(self) -> None:
        table = process_table()
        for pid in browser_tree(table, os.getpid()):
            self.base.setdefault(pid, 0)
            self.last[pid] = table[pid][2]

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    def finish(self) -> dict[str, float]:
        self.stop.set()
        self.join()
        self.sample()
        seconds = time.monotonic() - self.started
        cpu = sum(self.last[p] - self.base[p] for p in self.last) / TICKS
        return {
            "window_s": seconds,
            "cpu_s": cpu,
            "cpu_s_per_min": 60 * cpu / seconds,
            "processes": len(self.last),
        }


def cpu_window(seconds: float) -> dict[str, float]:
    meter = CpuMeter()
    meter.start()
    time.sleep(seconds)
    return meter.finish()


# --- browser tabs ----------------------------------------------------------------------------


def open_tab(browser: Any, url: str) -> Any:
    """A new tab with its own context (its own Streamlit session) at 1280x720, showing Train."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_selector(".st-key-demo button", timeout=120_000)
    return page


def wait_drawn(page: Any, run_id: str = "", timeout: float = 60) -> None:
    """Until the four live charts hold data (of run_id, if given)."""
    page.wait_for_function(CHARTS_DRAWN % json.dumps(run_id), timeout=timeout * 1000)


def close(pages: list[Any]) -> None:
    for page in pages:
        page.context.close()


# --- the measurements ----------------------------------------------------------------------


def dashboard_round(
    browser: Any, url: str, runs: Path, tabs: int, poll: float, idle_window: float
) -> dict[str, Any]:
    """One dashboard round: `tabs` tabs on the previous run, each presses the demo button;
    the run's rate, every tab's latencies, and (idle_window > 0) the browser CPU of the tab(s)
    idle on the finished run."""
    pages = [open_tab(browser, url) for _ in range(tabs)]
    for page in pages:
        wait_drawn(page)  # the newest (finished) run: plotly.js is in the page
    before = run_folders(runs)
    for page in pages:
        page.locator(".st-key-demo button").click()
    run_dir = wait_for_new_run(runs, before)
    watcher = LineWatcher(run_dir / "metrics.jsonl")
    watcher.start()
    charts = ChartWatcher(pages, run_dir.name)
    ended: list[float] = []
    probe_start, wall_start = probe_cpu_s(), time.monotonic()

    def done() -> bool:
        if not ended:
            if state_of(run_dir) in ("unknown", "running"):
                return False
            ended.append(time.monotonic())
        final = records(run_dir)[-1]["env_steps"]
        all_shown = min(charts.largest_x()) >= final
        return all_shown or time.monotonic() > ended[0] + 20

    charts.watch(done, poll)
    watcher.stop.set()
    probe = probe_cpu_s() - probe_start
    probe_share = probe / (time.monotonic() - wall_start)
    rows = records(run_dir)
    steps = {i: float(row["env_steps"]) for i, row in enumerate(rows, start=1)}
    per_tab = [latencies(watcher.appeared, steps, s) for s in charts.samples]
    result: dict[str, Any] = {
        "condition": f"{tabs} tab" + ("s" if tabs > 1 else ""),
        "tabs": tabs,
        "run": run_dir.name,
        "state": state_of(run_dir),
        "iterations": len(rows),
        "steps_per_s": steps_per_second(run_dir),
        "latency_s": [values for values, _ in per_tab],
        "not_shown": [missing for _, missing in per_tab],
        "probe_cpu_s": probe,
        "probe_cpu_share": probe_share,  # of one core, while the run trained
    }
    if idle_window > 0:
        time.sleep(5)  # the page's one rerun after the run ended; then 5 s refreshes
        result["idle_cpu"] = cpu_window(idle_window)
    close(pages)
    return result


def live_cpu(browser: Any, url: str, runs: Path, window: float) -> dict[str, Any]:
    """Browser CPU with one tab watching a live run: a CLI run of the demo config with a budget
    it will not reach, shown by a tab (the newest running run), stopped (SIGTERM) afterwards."""
    before = run_folders(runs)
    proc = cli_train(runs, "--total-steps", "50000000", "--name", "cpu window", wait=False)
    try:
        run_dir = wait_for_new_run(runs, before)
        while not (run_dir / "metrics.jsonl").exists() or len(records(run_dir)) < 3:
            time.sleep(0.1)
        page = open_tab(browser, url)
        wait_drawn(page, run_dir.name)
        time.sleep(3)  # past the first full draw
        start = len(records(run_dir))
        cpu = cpu_window(window)
        cpu["records_in_window"] = len(records(run_dir)) - start
        cpu["run"] = run_dir.name
        close([page])
    finally:
        if proc.poll() is None:  # stops after its current iteration, as a stopped run
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return cpu


def long_run(
    browser: Any,
    url: str,
    runs: Path,
    template_dir: Path,
    iterations: int,
    seconds: float,
    poll: float,
) -> dict[str, Any]:
    """A run of `iterations` records (accepted steps of a demo run, repeated), marked running by
    this process and grown by one record per second for `seconds`: the page load until the four
    charts hold data, and the record-to-chart latency in that tab."""
    template = [
        r
        for r in records(template_dir)
        if r.get("step_accepted") is True and isinstance(r.get("kl"), float) and r["kl"] > 0
    ]
    step = records(template_dir)[0]["env_steps"]
    run_dir = runs / "29990101-000000-CartPole-v1-long00"  # the newest name: shown first
    run_dir.mkdir()
    for name in ("config.json", "meta.json"):
        shutil.copy(template_dir / name, run_dir / name)

    def record(i: int) -> str:
        row = dict(template[i % len(template)], iteration=i, env_steps=i * step)
        return json.dumps(row) + "\n"

    with open(run_dir / "metrics.jsonl", "w") as handle:
        handle.writelines(record(i) for i in range(1, iterations + 1))
    (run_dir / "status.json").write_text(
        json.dumps({"state": "running", "pid": os.getpid(), "error": None})
    )
    try:
        start = time.monotonic()
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        wait_drawn(page, run_dir.name, timeout=120)
        load_s = time.monotonic() - start
        watcher = LineWatcher(run_dir / "metrics.jsonl")
        watcher.start()
        while len(watcher.appeared) < iterations:  # the lines already there
            time.sleep(0.01)
        charts = ChartWatcher([page], run_dir.name)
        appended = 0
        stop_at = time.monotonic() + seconds

        def writer() -> None:
            nonlocal appended
            while time.monotonic() < stop_at:
                with open(run_dir / "metrics.jsonl", "a") as handle:
                    handle.write(record(iterations + appended + 1))
                appended += 1
                time.sleep(1.0)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        final = lambda: (iterations + appended) * step  # noqa: E731
        charts.watch(
            lambda: (
                time.monotonic() > stop_at + 5
                or (not thread.is_alive() and charts.largest_x()[0] >= final())
            ),
            poll,
        )
        thread.join()
        watcher.stop.set()
        steps = {i: float(i * step) for i in range(iterations + 1, iterations + appended + 1)}
        values, missing = latencies(watcher.appeared, steps, charts.samples[0])
        close([page])
    finally:
        (run_dir / "status.json").write_text(
            json.dumps({"state": "finished", "pid": os.getpid(), "error": None})
        )
    return {"iterations": iterations, "load_s": load_s, "latency_s": values, "not_shown": missing}


# --- report --------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return (
        f"median {statistics.median(values):.2f} s, p90 {p90:.2f} s, max {values[-1]:.2f} s "
        f"({len(values)} points)"
    )


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in a fresh runs directory served by one dashboard server."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="dashbench-"))
    runs = work / "runs"
    runs.mkdir()
    rounds: list[dict[str, Any]] = []
    server, url = start_server(runs)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            close([open_tab(browser, url)])  # Chromium's and the server's first page: untimed
            for r in range(1, args.rounds + 1):
                before = run_folders(runs)
                cli_train(runs)
                cli_dir = (run_folders(runs) - before).pop()
                rate = steps_per_second(cli_dir)
                rounds.append(
                    {"condition": "CLI", "round": r, "run": cli_dir.name, "steps_per_s": rate}
                )
                common.log(f"round {r}: CLI {rate:,.0f} steps/s")
                for tabs in (1, args.tabs):
                    idle = args.cpu_window if tabs == 1 and r == args.rounds else 0.0
                    result = dashboard_round(browser, url, runs, tabs, args.poll, idle)
                    rounds.append({**result, "round": r})
                    common.log(
                        f"round {r}: {result['condition']} {result['steps_per_s']:,.0f} steps/s, "
                        f"latency {spread([v for t in result['latency_s'] for v in t])}"
                    )
            idle_cpu = next(x["idle_cpu"] for x in rounds if "idle_cpu" in x)
            live = live_cpu(browser, url, runs, args.cpu_window)
            common.log(
                f"browser CPU: live {live['cpu_s_per_min']:.1f} s/min, "
                f"idle {idle_cpu['cpu_s_per_min']:.1f} s/min"
            )
            template = runs / next(x["run"] for x in rounds if x["condition"] != "CLI")
            long = long_run(
                browser, url, runs, template, args.long_iterations, args.long_seconds, args.poll
            )
            common.log(f"long run: load {long['load_s']:.2f} s, {spread(long['latency_s'])}")
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    shutil.rmtree(work, ignore_errors=True)
    return {"rounds": rounds, "live": live, "idle": idle_cpu, "long": long}


def report(args: argparse.Namespace, measured: dict[str, Any]) -> tuple[list[list[str]], dict]:
    """The table's rows (measure, value, goal, met?) and the JSON's figures and goals."""
    rounds, live, idle, long = (measured[k] for k in ("rounds", "live", "idle", "long"))
    multi = f"{args.tabs} tabs"
    conditions = ("1 tab", multi)

    def rates(condition: str) -> list[float]:
        return [x["steps_per_s"] for x in rounds if x["condition"] == condition]

    def pooled(condition: str, key: str = "latency_s") -> list[float]:
        return [v for x in rounds if x["condition"] == condition for t in x[key] for v in t]

    def per_round(condition: str) -> str:
        return ", ".join(f"{v:,.0f}" for v in rates(condition))

    cli = common.median(rates("CLI"))
    ratio = {c: common.median(rates(c)) / cli for c in conditions}
    latency = pooled(multi)
    not_shown = sum(sum(x["not_shown"]) for x in rounds if x["condition"] == multi)
    lat_median = common.median(latency)
    lat_max = max(latency, default=float("nan"))
    long_ok = (
        bool(long["latency_s"])
        and common.median(long["latency_s"]) <= GOAL_MEDIAN_S
        and max(long["latency_s"]) <= GOAL_MAX_S
        and not long["not_shown"]
    )
    goals = {
        "throughput, 1 tab >= 90% of CLI": ratio["1 tab"] >= GOAL_RATIO,
        f"throughput, {multi} >= 90% of CLI": ratio[multi] >= GOAL_RATIO,
        f"latency, {multi}, median <= {GOAL_MEDIAN_S} s": lat_median <= GOAL_MEDIAN_S,
        f"latency, {multi}, max <= {GOAL_MAX_S} s": lat_max <= GOAL_MAX_S and not not_shown,
        f"latency, {args.long_iterations}-iteration run": long_ok,
    }
    probe = {
        c: common.median([x["probe_cpu_share"] for x in rounds if x["condition"] == c])
        for c in conditions
    }
    rows = [
        ["throughput, CLI alone", f"{cli:,.0f} steps/s (rounds: {per_round('CLI')})", "", ""],
        *[
            [
                f"throughput, dashboard + {c}",
                f"{common.median(rates(c)):,.0f} steps/s = {100 * ratio[c]:.0f}% of CLI "
                f"(rounds: {per_round(c)})",
                ">= 90% of CLI",
                met(ratio[c] >= GOAL_RATIO),
            ]
            for c in conditions
        ],
        [
            "measuring cost in the dashboard rounds (this script + Playwright driver)",
            ", ".join(f"{100 * probe[c]:.0f}% of a core ({c})" for c in conditions),
            "",
            "",
        ],
        [
            f"record -> KL chart latency, {multi}, median",
            f"{lat_median:.2f} s ({len(latency)} points)",
            f"<= {GOAL_MEDIAN_S} s",
            met(lat_median <= GOAL_MEDIAN_S),
        ],
        [
            f"record -> KL chart latency, {multi}, max",
            f"{lat_max:.2f} s" + (f" ({not_shown} points never shown)" if not_shown else ""),
            f"<= {GOAL_MAX_S} s",
            met(lat_max <= GOAL_MAX_S and not not_shown),
        ],
        ["record -> KL chart latency, 1 tab", spread(pooled("1 tab")), "", ""],
        [
            "browser CPU, 1 tab watching a live run",
            f"{live['cpu_s_per_min']:.1f} s per min ({live['records_in_window']} records "
            f"in {live['window_s']:.0f} s)",
            "",
            "",
        ],
        [
            "browser CPU, 1 tab idle on a finished run",
            f"{idle['cpu_s_per_min']:.1f} s per min",
            "",
            "",
        ],
        [f"page load, {args.long_iterations}-iteration run", f"{long['load_s']:.2f} s", "", ""],
        [
            f"record -> KL chart latency, {args.long_iterations}-iteration run, 1 tab",
            spread(long["latency_s"]),
            f"median <= {GOAL_MEDIAN_S} s, max <= {GOAL_MAX_S} s",
            met(long_ok),
        ],
    ]
    figures = {
        "cli_steps_per_s": cli,
        "dashboard_steps_per_s": {c: common.median(rates(c)) for c in conditions},
        "ratio_to_cli": ratio,
        "latency_multi_tab_median_s": lat_median,
        "latency_multi_tab_max_s": lat_max,
        "latency_points_not_shown": not_shown,
        "measuring_cpu_share": probe,
        "browser_cpu_live": live,
        "browser_cpu_idle": idle,
        "long_run": long,
        "goals": goals,
        "rounds": rounds,
    }
    return rows, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three conditions")
    parser.add_argument("--tabs", type=int, default=3, help="tabs of the multi-tab condition")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between chart reads")
    parser.add_argument("--cpu-window", type=float, default=30.0, help="seconds per CPU window")
    parser.add_argument("--long-iterations", type=int, default=2000)
    parser.add_argument("--long-seconds", type=float, default=20.0, help="growing, 1 record/s")
    parser.add_argument("--output", default=None, help="JSON path (default benchmarks/results/)")
    args = parser.parse_args()
    if args.rounds < 1 or args.tabs < 2 or args.cpu_window <= 0:
        parser.error("--rounds must be >= 1, --tabs >= 2 and --cpu-window > 0")
    load_before = list(os.getloadavg())
    rows, figures = report(args, measure(args))
    print(common.markdown_table(["measure", "value", "goal", "met?"], rows))
    settings = {
        "rounds": args.rounds,
        "tabs": args.tabs,
        "poll_s": args.poll,
        "cpu_window_s": args.cpu_window,
        "long_iterations": args.long_iterations,
        "long_seconds": args.long_seconds,
        "browser": f"{CHROMIUM} (Playwright, headless)",
        "chromium_args": CHROMIUM_ARGS,
        "viewport": VIEWPORT,
        "load_average_before": load_before,
    }
    path = common.write_results("dashboard", {"settings": settings, **figures}, args.output)
    common.log(f"wrote {path}")


if __name__ == "__main__":
    main()
