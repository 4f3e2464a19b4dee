"""Small helpers shared by the benchmark scripts: threads, timing, tables, result files.

The scripts import this module as `common` (they are run as `python benchmarks/<name>.py`, which
puts this folder first on sys.path; spawned worker processes inherit that path).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

# Classic-control ids (everything else is treated as MuJoCo-sized for default step counts).
CLASSIC = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# --- threads -------------------------------------------------------------------------------
def set_thread_env(threads: int) -> None:
    """OMP/MKL/OpenBLAS thread counts for processes started after this call (spawned workers
    read them before importing numpy or torch)."""
    for name in _THREAD_VARS:
        os.environ[name] = str(threads)


def limit_threads(threads: int) -> None:
    """Use `threads` threads for torch in this process (and BLAS in later child processes)."""
    set_thread_env(threads)
    import torch

    torch.set_num_threads(threads)


def warm_up_torch() -> None:
    """Pay torch's one-time lazy costs outside any timed region.

    Creating the first Adam imports torch._dynamo (about 2 s on this machine); both trainers we
    compare create one, so we create a throwaway one first and neither pays it while timed.
    """
    import torch

    param = torch.zeros(4, requires_grad=True)
    optimizers = [torch.optim.Adam([param], lr=1e-3, eps=1e-5)]
    with contextlib.suppress(Exception):  # the fused kernel too, in case a trainer uses it
        optimizers.append(torch.optim.Adam([param], lr=1e-3, eps=1e-5, fused=True))
    for optimizer in optimizers:
        optimizer.zero_grad()
        param.sum().backward()
        optimizer.step()


def quiet_mujoco_log() -> None:
    """Stop MuJoCo appending to MUJOCO_LOG.TXT in the working directory (sb3's envs are made
    without trpo.envs, which does this for ours). No-op without mujoco."""
    try:
        import mujoco
    except ImportError:
        return
    config = mujoco.MjLogConfig.get()
    config.logto_file = False
    config.set()


# --- timing --------------------------------------------------------------------------------
class Stopwatch:
    """`with Stopwatch() as sw: ...` then sw.seconds (perf_counter wall time)."""

    def __init__(self) -> None:
        self.start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(fn(), wall seconds)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(statistics.fmean(finite)) if finite else math.nan


# --- processes -----------------------------------------------------------------------------
def run_in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Call fn(*args) in a brand-new spawned interpreter and return its (picklable) result.

    fn must be a module-level function. Exceptions in the child are re-raised here.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def process_pool(workers: int, fresh: bool = False) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes (one fresh interpreter each, reused for jobs);
    fresh=True gives every job a brand-new interpreter (a worker exits after one job)."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        max_tasks_per_child=1 if fresh else None,
    )


# --- formatting ----------------------------------------------------------------------------
def parse_list(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_ints(text: str) -> list[int]:
    return [int(item) for item in parse_list(text)]


def parse_seeds(text: str) -> list[int]:
    """Seeds from the command line: a single number N means N seeds 0..N-1; a comma-separated
    list means exactly those seeds ('0,1,2'; '7,' is seed 7 alone)."""
    text = str(text).strip()
    if "," not in text:
        count = int(text)
        if count < 1:
            raise ValueError(f"the number of seeds must be at least 1, got {count}")
        return list(range(count))
    seeds = parse_ints(text)
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be whole numbers >= 0, got {text!r}")
    return seeds


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: floats with `digits` decimals and thousands separators, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int | Sequence[int] = 1
) -> str:
    """A GitHub markdown table; cells are formatted with fmt() unless already strings.

    digits: decimals of float cells, one number for all columns or one per column. Columns whose
    cells are all numbers are right-aligned.
    """
    places = [digits] * len(headers) if isinstance(digits, int) else list(digits)
    cells = [
        [c if isinstance(c, str) else fmt(c, places[i]) for i, c in enumerate(row)] for row in rows
    ]
    numeric = [
        bool(rows) and all(isinstance(row[i], (int, float)) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]
    from trpo.formatting import markdown_table as table

    return table(headers, cells, numeric)


def check_presets(parser: Any, env_ids: Sequence[str], total_steps: int | None = None) -> None:
    """parser.error unless every env has a preset that is valid with total_steps (if given)."""
    from trpo.config import ConfigError
    from trpo.presets import PRESETS, preset

    if not env_ids:
        parser.error("no environment given")
    missing = [e for e in env_ids if e not in PRESETS]
    if missing:
        parser.error(f"no preset for {', '.join(missing)}; presets: {', '.join(PRESETS)}")
    if total_steps is not None:
        for env_id in env_ids:
            try:
                preset(env_id, total_steps=total_steps)
            except ConfigError as exc:
                parser.error(f"{env_id} with {total_steps} steps: {exc}")


def log(message: str) -> None:
    """Progress to stderr, so stdout holds only the result tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- results -------------------------------------------------------------------------------
def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: host, CPU count, load, library versions."""
    load: list[float] | None = None
    with contextlib.suppress(OSError):
        load = list(os.getloadavg())
    info: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    packages = (
        "torch",
        "numpy",
        "gymnasium",
        "mujoco",
        "stable_baselines3",
        "sb3_contrib",
        "trpo-workbench",
    )
    info["versions"] = {name: _version(name) for name in packages}
    return info


def write_results(
    name: str, data: dict[str, Any], path: str | os.PathLike[str] | None = None
) -> Path:
    """Write {"machine": ..., **data} as JSON to benchmarks/results/<name>.json (or `path`).

    Non-finite floats become null. Written to a temp file and renamed, so a reader never sees
    half a file. Returns the path written.
    """
    target = Path(path) if path is not None else RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    from trpo.record import json_safe

    payload = json_safe({"benchmark": name, "machine": machine_info(), **data})
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, target)
    return target
