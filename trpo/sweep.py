"""Hyperparameter sweeps: a grid (or a random sample) of configurations times seeds, in parallel.

A sweep is defined by a `SweepSpec` (a base config, the swept knobs and their values, the seeds,
optionally a random-search budget). Every trial (one configuration, one seed) is an ORDINARY run
in the run store, tagged `{"sweep": id, "trial": id, "knobs": {...}}`, so everything that works
on runs works on trials. The sweep itself lives beside the runs:

    <runs_dir>/sweeps/<sweep_id>/sweep.json    the spec, the trial list, created time, launches
    <runs_dir>/sweeps/<sweep_id>/driver.json   the process running the sweep (while it runs)
    <runs_dir>/sweeps/<sweep_id>/STOP          a stop request (any process may write it)

(`RunStore.runs()` lists only folders that hold a config.json, so `sweeps/` is not a run.)

Backends: "local" is a process pool on this machine (one torch thread per worker); "ray" runs
each trial as a Ray task on a local or remote Ray cluster and brings the run folder back into
this machine's run store (see trpo.sweep_ray). Both can be stopped (`stop_event`, `stop_sweep`)
and resumed (`resume_sweep_id`: finished trials are skipped, the others continue from their
checkpoints). `run_sweep` never touches signal handlers, so it can run in a background thread
(e.g. of a Streamlit server); `start_sweep` does exactly that. Pool workers are spawned without
re-running the caller's main script (a Streamlit page, or a script without a main guard), so
anything they need must be importable: pass `worker_init` as a function of a module.

Results: `sweep_trials` (one row per trial, for live tables) and `sweep_results` (one row per
configuration). The final return of a run is the mean of `return_mean` over the last 10% of its
iterations (at least one iteration; iterations without a finished episode are ignored).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import math
import multiprocessing
import multiprocessing.spawn
import os
import random
import re
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import MISSING, dataclass, field, fields
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import pandas as pd

from trpo.compare import config_id
from trpo.config import ConfigError, TRPOConfig
from trpo.envs import EnvError, check_env_id
from trpo.formatting import markdown_table
from trpo.ids import fresh_folder, process_alive, utc_now
from trpo.record import IterationRecord
from trpo.store import Run, RunStore, RunStoreError, atomic_write_json, load_metrics, open_run

log = logging.getLogger("trpo.sweep")

SWEEPS_DIR = "sweeps"
SPEC_FILE = "sweep.json"
DRIVER_FILE = "driver.json"
STOP_FILE = "STOP"
BACKENDS = ("local", "ray")
MAX_TRIALS = 10_000
MAX_WORKERS = 256
FINAL_FRACTION = 0.1  # final return = mean over the last 10% of iterations
STOP_POLL_S = 0.25  # how often a trial looks for a stop request
MAX_ATTEMPTS = 3  # a trial that no pool worker could start this often fails
TRIAL_STATES = ("pending", "running", "finished", "stopped", "failed", "interrupted")

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
KNOBS: dict[str, Any] = {
    f.name: (f.default if f.default is not MISSING else f.default_factory())  # type: ignore[misc]
    for f in fields(TRPOConfig)
}

OnProgress = Callable[["TrialEvent"], None]
WorkerInit = Callable[[], None]


class SweepError(RuntimeError):
    """A sweep that cannot be found, read or launched (already running, Ray missing, ...)."""


# --- the spec ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnobRange:
    """A numeric range for random search: uniform in [low, high] (log-uniform if log)."""

    low: float
    high: float
    log: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}

    def __str__(self) -> str:
        return f"{self.low}:{self.high}" + (":log" if self.log else "")


GridValues = list[Any] | KnobRange


@dataclass(frozen=True)
class Trial:
    """One configuration with one seed. trial_id = '<config_id>-s<seed>' where config_id is a
    hash of every knob but the seed: the same configuration always gets the same id."""

    trial_id: str
    config: TRPOConfig
    knobs: dict[str, Any]  # the swept knobs' values, JSON-safe

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def config_id(self) -> str:
        return self.trial_id.rsplit("-s", 1)[0]

    def label(self) -> str:
        """'delta=0.01 alpha=0.5 seed=0' for terminals and run names."""
        parts = [f"{k}={_show(v)}" for k, v in self.knobs.items()]
        return " ".join([*parts, f"seed={self.seed}"])


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. `grid` maps knob -> list of values (or a KnobRange, random search only);
    every knob of TRPOConfig but `seed` can be swept (seeds are `seeds`). With `samples`, that
    many configurations are drawn (seeded by `sample_seed`) instead of the full product. The
    spec is validated on construction: ConfigError lists every problem."""

    base: TRPOConfig = field(default_factory=TRPOConfig)
    grid: dict[str, GridValues] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    samples: int | None = None
    sample_seed: int = 0
    name: str = ""
    _trials: list[Trial] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.base, TRPOConfig):
            raise ConfigError([f"base must be a TRPOConfig, got {type(self.base).__name__}"])
        grid = _normalise_grid(self.grid, problems)
        grid = {k: grid[k] for k in KNOBS if k in grid}  # one order, whatever the input's
        seeds = _normalise_seeds(self.seeds, problems)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "name", str(self.name or "").strip()[:100])
        samples = self.samples
        if samples is not None and (not _is_int(samples) or not 1 <= samples <= MAX_TRIALS):
            problems.append(
                f"samples must be a whole number from 1 to {MAX_TRIALS}, got {samples!r}"
            )
        if not _is_int(self.sample_seed) or self.sample_seed < 0:
            problems.append(f"sample_seed must be a whole number >= 0, got {self.sample_seed!r}")
        for knob, values in grid.items():
            if isinstance(values, KnobRange) and samples is None:
                problems.append(
                    f"{knob} is a range ({values}); ranges need random search (set samples)"
                )
        if not problems:
            problems.extend(_check_values(self.base, grid))
        if not problems:
            if samples is None:
                size = math.prod(len(v) for v in grid.values()) * len(seeds)  # type: ignore[arg-type]
            else:
                size = samples * len(seeds)
            if size > MAX_TRIALS:
                problems.append(
                    f"the sweep has {size:,} trials (configurations x seeds); the limit is "
                    f"{MAX_TRIALS:,}: use fewer values or seeds, or random search (samples)"
                )
        if problems:
            raise ConfigError(problems)
        trials, combo_problems = _build_trials(self)
        if combo_problems:
            raise ConfigError(combo_problems)
        object.__setattr__(self, "_trials", trials)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        grid = {
            k: v.to_dict() if isinstance(v, KnobRange) else [_json_value(x) for x in v]
            for k, v in self.grid.items()
        }
        return {
            "base": self.base.to_dict(),
            "grid": grid,
            "seeds": list(self.seeds),
            "samples": self.samples,
            "sample_seed": self.sample_seed,
            "name": self.name,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """Build from a mapping (as written by to_dict); unknown keys are refused."""
        if not isinstance(data, dict):
            raise ConfigError([f"a sweep spec must be a JSON object, got {type(data).__name__}"])
        known = {"base", "grid", "seeds", "samples", "sample_seed", "name"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError([f"unknown sweep spec key(s): {', '.join(unknown)}"])
        base = TRPOConfig.from_dict(data.get("base", {}))
        values = {
            k: data[k] for k in ("grid", "seeds", "samples", "sample_seed", "name") if k in data
        }
        return cls(base=base, **values)

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"sweep spec is not valid JSON: {exc}"]) from exc
        return cls.from_dict(data)

    @property
    def knob_names(self) -> list[str]:
        return list(self.grid)


def trials(spec: SweepSpec) -> list[Trial]:
    """Every trial of the spec, in a fixed order (seed by seed, then configuration by
    configuration); the same spec always gives the same trials."""
    return list(spec._trials)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _normalise_grid(grid: Any, problems: list[str]) -> dict[str, GridValues]:
    if not isinstance(grid, dict):
        problems.append(f"grid must map knob names to lists of values, got {type(grid).__name__}")
        return {}
    out: dict[str, GridValues] = {}
    for knob, values in grid.items():
        if knob == "seed":
            problems.append("seed is not a knob to sweep: list the seeds in seeds")
            continue
        if knob not in KNOBS:
            close = get_close_matches(str(knob), list(KNOBS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"unknown knob {knob!r}{hint}")
            continue
        if isinstance(values, dict) and set(values) <= {"low", "high", "log"}:
            values = KnobRange(values.get("low"), values.get("high"), bool(values.get("log")))
        if isinstance(values, KnobRange):
            out[knob] = values
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            problems.append(f"{knob}: give a list of values, got {values!r}")
            continue
        items = list(values)
        if knob == "hidden_sizes":
            items = [tuple(v) if isinstance(v, (list, tuple)) else v for v in items]
        if not items:
            problems.append(f"{knob}: the list of values is empty")
            continue
        seen: list[Any] = []
        for item in items:
            if any(item == s and type(item) is type(s) for s in seen):
                problems.append(f"{knob}: the value {_show(item)} is listed twice")
            seen.append(item)
        out[knob] = items
    return out


def _normalise_seeds(seeds: Any, problems: list[str]) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        problems.append(f"seeds must be a list of whole numbers, got {seeds!r}")
        return []
    out = list(seeds)
    if not out:
        problems.append("seeds is empty: give at least one seed")
    bad = [s for s in out if not _is_int(s) or not 0 <= s <= 2**32 - 1]
    if bad:
        problems.append(f"seeds must be whole numbers from 0 to 2**32-1, got {bad}")
    elif len(set(out)) != len(out):
        problems.append(f"seeds lists a seed twice: {out}")
    return out


def _check_values(base: TRPOConfig, grid: dict[str, GridValues]) -> list[str]:
    """Each value alone on the base config (ranges: both ends), so a bad value is named."""
    problems: list[str] = []
    for knob, values in grid.items():
        if isinstance(values, KnobRange):
            problems.extend(_check_range(base, knob, values))
            continue
        for value in values:
            try:
                base.replace(**{knob: value})
            except (ConfigError, TypeError) as exc:
                reasons = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
                problems.extend(f"{knob}={_show(value)}: {r}" for r in reasons)
    return problems


def _check_range(base: TRPOConfig, knob: str, r: KnobRange) -> list[str]:
    default = KNOBS[knob]
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return [f"{knob} is not numeric: give a list of values, not a range"]
    ends = (r.low, r.high)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ends):
        return [f"{knob}: a range needs two numbers, got {r.low!r} and {r.high!r}"]
    if not all(math.isfinite(v) for v in ends):
        return [f"{knob}: range ends must be finite, got {r}"]
    if _is_int(default) and not all(float(v).is_integer() for v in ends):
        return [f"{knob} takes whole numbers: range {r} must have whole-number ends"]
    if not r.low < r.high:
        return [f"{knob}: range low must be below high, got {r}"]
    if r.log and r.low <= 0:
        return [f"{knob}: a log range needs low > 0, got {r}"]
    problems: list[str] = []
    for end in ends:
        value = int(end) if _is_int(default) else float(end)
        try:
            base.replace(**{knob: value})
        except ConfigError as exc:
            problems.extend(f"{knob}={value} (range end): {p}" for p in exc.problems)
    return problems


def _draw(rng: random.Random, knob: str, r: KnobRange) -> Any:
    if _is_int(KNOBS[knob]):
        low, high = int(r.low), int(r.high)
        if r.log:
            return round(math.exp(rng.uniform(math.log(low), math.log(high))))
        return rng.randint(low, high)
    if r.log:
        value = math.exp(rng.uniform(math.log(r.low), math.log(r.high)))
    else:
        value = rng.uniform(r.low, r.high)
    return float(f"{value:.4g}")  # readable values (the caller clips them into the range)


def _configurations(spec: SweepSpec) -> list[dict[str, Any]]:
    names = list(spec.grid)
    if spec.samples is None:
        lists = [spec.grid[n] for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]
    rng = random.Random(spec.sample_seed)
    if all(isinstance(spec.grid[n], list) for n in names):
        lists = [spec.grid[n] for n in names]
        sizes = [len(v) for v in lists]
        total = math.prod(sizes)
        picks = rng.sample(range(total), min(spec.samples, total))
        out = []
        for index in picks:
            combo: dict[str, Any] = {}
            for name, values, size in zip(
                reversed(names), reversed(lists), reversed(sizes), strict=True
            ):
                index, digit = divmod(index, size)
                combo[name] = values[digit]  # type: ignore[index]
            out.append({n: combo[n] for n in names})
        return out
    out, seen = [], set()
    for _ in range(50 * spec.samples):
        if len(out) == spec.samples:
            break
        combo = {}
        for name in names:
            values = spec.grid[name]
            if isinstance(values, KnobRange):
                drawn = _draw(rng, name, values)
                combo[name] = min(max(drawn, type(drawn)(values.low)), type(drawn)(values.high))
            else:
                combo[name] = values[rng.randrange(len(values))]
        key = json.dumps({k: _json_value(v) for k, v in combo.items()}, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(combo)
    return out


def _build_trials(spec: SweepSpec) -> tuple[list[Trial], list[str]]:
    problems: list[str] = []
    configs: list[tuple[dict[str, Any], TRPOConfig]] = []
    for combo in _configurations(spec):
        try:
            configs.append((combo, spec.base.replace(**combo)))
        except ConfigError as exc:
            label = " ".join(f"{k}={_show(v)}" for k, v in combo.items())
            problems.extend(f"{label}: {p}" for p in exc.problems)
            if len(problems) >= 10:
                problems.append("(more combinations fail the same way)")
                break
    if problems:
        return [], problems
    out = []
    for seed in spec.seeds:
        for combo, config in configs:
            seeded = config.replace(seed=seed)
            knobs = {k: _json_value(v) for k, v in combo.items()}
            out.append(Trial(f"{config_id(config)}-s{seed}", seeded, knobs))
    return out, []


# --- the sweep folder ----------------------------------------------------------------------


@dataclass(frozen=True)
class SweepInfo:
    """A stored sweep: its id, folder, spec and launch history."""

    sweep_id: str
    path: Path
    spec: SweepSpec
    created: str
    launches: list[dict[str, Any]]
    stored_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def trials(self) -> list[Trial]:
        """The spec's trials, with the ids written at creation (the runs are tagged with
        those, even if a later version of the library would hash the configs differently)."""
        out = trials(self.spec)
        if len(self.stored_ids) == len(out):
            out = [Trial(i, t.config, t.knobs) for i, t in zip(self.stored_ids, out, strict=True)]
        return out


def sweeps_root(runs_dir: str | os.PathLike[str]) -> Path:
    return Path(runs_dir) / SWEEPS_DIR


def sweep_path(runs_dir: str | os.PathLike[str], sweep_id: str) -> Path:
    """The folder of sweep_id (an id is a plain name: no path separators, no '..')."""
    if not isinstance(sweep_id, str) or not _ID_PATTERN.match(sweep_id) or ".." in sweep_id:
        raise SweepError(f"{sweep_id!r} is not a sweep id")
    return sweeps_root(runs_dir) / sweep_id


def _write_info(path: Path, data: dict[str, Any]) -> None:
    try:
        atomic_write_json(path / SPEC_FILE, data)
    except OSError as exc:
        raise SweepError(f"cannot write {path / SPEC_FILE}: {exc}") from exc


def _read_text(path: Path) -> str:
    try:
        return (path / SPEC_FILE).read_bytes().decode()
    except FileNotFoundError as exc:
        raise SweepError(f"no sweep at {path}") from exc
    except OSError as exc:
        raise SweepError(f"cannot read {path / SPEC_FILE}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SweepError(f"cannot read {path / SPEC_FILE}: not UTF-8 text ({exc})") from exc


def _parse_info(path: Path, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SweepError(f"cannot read {path / SPEC_FILE}: {exc}") from exc
    if not isinstance(data, dict):
        raise SweepError(f"{path / SPEC_FILE} is not a sweep description")
    return data


def _read_info(path: Path) -> dict[str, Any]:
    return _parse_info(path, _read_text(path))


def create_sweep(spec: SweepSpec, runs_dir: str | os.PathLike[str], backend: str = "local") -> str:
    """Check the env ids (and that Ray is there for backend 'ray'), then make the sweep folder
    with sweep.json (spec, trial list, created time); return its id. Nothing runs yet: pass the
    id to run_sweep(None, ..., resume_sweep_id=id) or start_sweep."""
    _check_launch(spec, backend)
    root = sweeps_root(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {root}: {exc}") from exc
    try:
        sweep_id = fresh_folder(root, spec.name or spec.base.env_id).name
    except OSError as exc:
        raise SweepError(f"cannot create a sweep folder in {root}: {exc}") from exc
    _write_info(
        root / sweep_id,
        {
            "id": sweep_id,
            "created": utc_now(),
            "spec": spec.to_dict(),
            "trials": [
                {"trial": t.trial_id, "seed": t.seed, "knobs": t.knobs} for t in trials(spec)
            ],
            "launches": [],
        },
    )
    return sweep_id


def load_sweep(runs_dir: str | os.PathLike[str], sweep_id: str) -> SweepInfo:
    """The stored sweep, or SweepError. Dashboards poll, so the parse is cached, keyed on the
    file's content (a rewrite with the same size and mtime is still seen)."""
    path = sweep_path(runs_dir, sweep_id)
    return _load_sweep(str(path), _read_text(path))


@functools.lru_cache(maxsize=32)
def _load_sweep(folder: str, text: str) -> SweepInfo:
    path = Path(folder)
    sweep_id = path.name
    data = _parse_info(path, text)
    try:
        spec = SweepSpec.from_dict(data.get("spec"))  # type: ignore[arg-type]
    except ConfigError as exc:
        raise SweepError(f"{path / SPEC_FILE} holds an invalid spec: {exc}") from exc
    launches = data.get("launches") if isinstance(data.get("launches"), list) else []
    stored = data.get("trials")
    ids: list[str] = []
    if isinstance(stored, list) and all(isinstance(t, dict) for t in stored):
        ids = [str(t.get("trial")) for t in stored]
    return SweepInfo(sweep_id, path, spec, str(data.get("created", "")), launches, ids)


def list_sweeps(runs_dir: str | os.PathLike[str]) -> list[SweepInfo]:
    """Every readable sweep in runs_dir, newest first (see unreadable_sweeps for the others)."""
    found, unreadable = _scan_sweeps(runs_dir)
    for sweep_id, reason in unreadable.items():
        log.warning("skipping sweep %s: %s", sweep_id, reason)
    return found


def unreadable_sweeps(runs_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Sweep id -> why its sweep.json cannot be read, for every sweep list_sweeps skips."""
    return _scan_sweeps(runs_dir)[1]


def _scan_sweeps(runs_dir: str | os.PathLike[str]) -> tuple[list[SweepInfo], dict[str, str]]:
    root = sweeps_root(runs_dir)
    if not root.is_dir():
        return [], {}
    found, unreadable = [], {}
    for path in root.iterdir():
        if (path / SPEC_FILE).is_file():
            try:
                found.append(load_sweep(runs_dir, path.name))
            except SweepError as exc:
                unreadable[path.name] = str(exc)
    return sorted(found, key=lambda s: s.sweep_id, reverse=True), unreadable


def stop_sweep(runs_dir: str | os.PathLike[str], sweep_id: str) -> None:
    """Ask a running sweep (in this or any process on this machine) to stop: its trials end
    'stopped' after their current iteration and pending trials are not started."""
    path = sweep_path(runs_dir, sweep_id)
    if not (path / SPEC_FILE).is_file():
        raise SweepError(f"no sweep {sweep_id!r} in {runs_dir}")
    (path / STOP_FILE).write_text(utc_now() + "\n")


def sweep_runs(runs_dir: str | os.PathLike[str], sweep_id: str) -> dict[str, Run]:
    """trial id -> its run in the store (runs tagged with this sweep)."""
    out: dict[str, Run] = {}
    for run in sorted(RunStore(runs_dir).runs(), key=lambda r: r.id):  # newest last wins
        tags = run.meta().get("tags")
        if isinstance(tags, dict) and tags.get("sweep") == sweep_id:
            trial_id = tags.get("trial")
            if isinstance(trial_id, str):
                out[trial_id] = run
    return out


def _driver_alive(path: Path) -> dict[str, Any] | None:
    """The driver.json of a sweep whose driver process is alive on this machine, else None."""
    try:
        data = json.loads((path / DRIVER_FILE).read_bytes())
    except (OSError, ValueError):  # missing, unreadable, not JSON or not UTF-8
        return None
    if not isinstance(data, dict) or data.get("host") != socket.gethostname():
        return None
    pid = data.get("pid")
    if not _is_int(pid):
        return None
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return data if str(path.resolve()) in _ACTIVE else None
    return data if process_alive(pid) else None


def sweep_state(runs_dir: str | os.PathLike[str], sweep_id: str) -> str:
    """'running' (a driver is at work), 'finished' (every trial finished), 'pending' (nothing
    ran yet), 'failed' (all trials ended, some failed) or 'stopped' (can be resumed)."""
    info = load_sweep(runs_dir, sweep_id)
    if _driver_alive(info.path):
        return "running"
    runs = sweep_runs(runs_dir, sweep_id)
    states = [runs[t.trial_id].state() if t.trial_id in runs else "pending" for t in info.trials]
    if all(s == "finished" for s in states):
        return "finished"
    if all(s == "pending" for s in states):
        return "pending"
    if all(s in ("finished", "failed") for s in states):
        return "failed"
    return "stopped"


# The sweeps this process is driving (so a second launch in the same process is refused too).
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def _driver_lock(path: Path, backend: str, workers: int | None) -> Any:
    key = str(path.resolve())
    with _ACTIVE_LOCK:
        if key in _ACTIVE:
            raise SweepError(f"sweep {path.name} is already running in this process")
        _ACTIVE.add(key)
    try:
        other = _driver_alive(path)
        if other is not None and other.get("pid") != os.getpid():
            raise SweepError(f"sweep {path.name} is already running (process {other.get('pid')})")
        atomic_write_json(
            path / DRIVER_FILE,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": utc_now(),
                "backend": backend,
                "workers": workers,
            },
        )
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                (path / DRIVER_FILE).unlink()
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(key)


# --- running -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialEvent:
    """Passed to on_progress: a trial started ('started') or ended ('ended')."""

    kind: str
    trial: Trial
    run_dir: str
    state: str  # running / finished / stopped / failed
    error: str | None
    done: int  # trials ended so far, finished trials skipped by a resume included
    total: int


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: str
    run_dir: str | None
    state: str  # finished / stopped / failed / pending (never started)
    error: str | None = None
    skipped: bool = False  # finished before this launch (resume)


@dataclass
class SweepResult:
    """What one launch of a sweep did."""

    sweep_id: str
    sweep_dir: Path
    backend: str
    workers: int
    outcomes: dict[str, TrialOutcome]
    stopped: bool
    wall_time_s: float

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.state for o in self.outcomes.values()))

    @property
    def all_finished(self) -> bool:
        return all(o.state == "finished" for o in self.outcomes.values())


@dataclass
class _Job:
    trial: Trial
    run: Run | None
    attempts: int = 0


class _Driver:
    """The bookkeeping both backends share: run folders, stop requests, events, outcomes."""

    def __init__(
        self,
        runs_dir: Path,
        info: SweepInfo,
        stop_event: threading.Event | None,
        on_progress: OnProgress | None,
        total: int,
    ) -> None:
        self.store = RunStore(runs_dir)
        self.info = info
        self.stop_event = stop_event
        self.on_progress = on_progress
        self.total = total
        self.done = 0
        self.outcomes: dict[str, TrialOutcome] = {}
        self.stopping = False

    @property
    def stop_path(self) -> Path:
        return self.info.path / STOP_FILE

    def stop_requested(self) -> bool:
        """True once a stop was asked (event or STOP file); the STOP file is then written so
        that the workers see it."""
        if not self.stopping:
            if self.stop_event is not None and self.stop_event.is_set():
                with contextlib.suppress(OSError):
                    self.stop_path.write_text(utc_now() + "\n")
                self.stopping = True
            elif self.stop_path.exists():
                self.stopping = True
        return self.stopping

    def start(self, job: _Job) -> Run:
        """The trial's run folder (created on first start), marked running by this process."""
        trial = job.trial
        if job.run is None:
            tags = {
                "sweep": self.info.sweep_id,
                "trial": trial.trial_id,
                "config_id": trial.config_id,
                "seed": trial.seed,
                "knobs": trial.knobs,
            }
            name = f"{self.info.name or self.info.sweep_id} {trial.label()}"
            job.run = self.store.create(trial.config, name=name, tags=tags)
        else:
            job.run.set_status("running", iteration=job.run.status().get("iteration"))
        self._emit("started", job, "running", None)
        return job.run

    def finish(self, job: _Job, state: str, error: str | None) -> None:
        self.done += 1
        run_dir = str(job.run.path) if job.run is not None else None
        self.outcomes[job.trial.trial_id] = TrialOutcome(job.trial.trial_id, run_dir, state, error)
        self._emit("ended", job, state, error)

    def _emit(self, kind: str, job: _Job, state: str, error: str | None) -> None:
        if self.on_progress is None:
            return
        run_dir = str(job.run.path) if job.run is not None else ""
        event = TrialEvent(kind, job.trial, run_dir, state, error, self.done, self.total)
        try:
            self.on_progress(event)
        except Exception:
            log.exception("on_progress raised (ignored)")


def run_sweep(
    spec: SweepSpec | None,
    runs_dir: str | os.PathLike[str],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    stop_event: threading.Event | None = None,
    on_progress: OnProgress | None = None,
    resume_sweep_id: str | None = None,
    worker_init: WorkerInit | None = None,
) -> SweepResult:
    """Run a sweep to the end (or until stopped) and return what happened; blocks, callable
    from any thread.

    spec: a new sweep (its folder is created), or None with resume_sweep_id to continue a
    stored one: finished trials are skipped, stopped/failed/interrupted ones continue from
    their checkpoints, never-started ones start. workers: parallel trials (default: the core
    count; for Ray, the cluster's CPUs). stop_event: set it to stop every trial after its
    current iteration (stop_sweep does the same from anywhere). worker_init: a picklable,
    importable function run in every worker (and here) before training, e.g. to register
    extra Gymnasium envs. Bad specs, values or env ids raise ConfigError before anything runs.
    """
    started = time.monotonic()
    _check_backend(backend)
    if workers is not None and (not _is_int(workers) or not 1 <= workers <= MAX_WORKERS):
        raise ConfigError(
            [f"workers must be a whole number from 1 to {MAX_WORKERS}, got {workers!r}"]
        )
    if ray_address is not None and backend != "ray":
        raise ConfigError(["ray_address is only used with backend 'ray'"])
    if worker_init is not None:
        worker_init()
    runs_dir = Path(runs_dir)
    if resume_sweep_id is not None:
        info = load_sweep(runs_dir, resume_sweep_id)
        if spec is not None and spec.to_dict() != info.spec.to_dict():
            raise ConfigError([f"the spec differs from the one stored for {resume_sweep_id}"])
        spec = info.spec
        _check_launch(spec, backend)
    elif spec is None:
        raise ConfigError(["give a sweep spec, or resume_sweep_id to continue a stored sweep"])
    else:
        info = load_sweep(runs_dir, create_sweep(spec, runs_dir, backend))

    all_trials = info.trials
    with _driver_lock(info.path, backend, workers):
        with contextlib.suppress(FileNotFoundError):
            (info.path / STOP_FILE).unlink()
        launch = {"started": utc_now(), "backend": backend, "workers": workers, "pid": os.getpid()}
        _record_launch(info.path, launch)
        driver = _Driver(runs_dir, info, stop_event, on_progress, len(all_trials))
        existing = sweep_runs(runs_dir, info.sweep_id)
        jobs: list[_Job] = []
        for trial in all_trials:
            run = existing.get(trial.trial_id)
            if run is not None and run.state() == "finished":
                driver.outcomes[trial.trial_id] = TrialOutcome(
                    trial.trial_id, str(run.path), "finished", skipped=True
                )
                driver.done += 1
            else:
                jobs.append(_Job(trial, run))
        used = 0
        try:
            if jobs and backend == "local":
                used = min(workers or os.cpu_count() or 1, len(jobs))
                _run_local(driver, jobs, used, worker_init)
            elif jobs:
                used = _ray_backend().run_ray(driver, jobs, workers, ray_address, worker_init)
        finally:
            for job in jobs:  # never started (stopped before their turn)
                if job.trial.trial_id not in driver.outcomes:
                    run_dir = str(job.run.path) if job.run is not None else None
                    state = job.run.state() if job.run is not None else "pending"
                    driver.outcomes[job.trial.trial_id] = TrialOutcome(
                        job.trial.trial_id, run_dir, state
                    )
            result = SweepResult(
                info.sweep_id,
                info.path,
                backend,
                used,
                {t.trial_id: driver.outcomes[t.trial_id] for t in all_trials},
                driver.stopping,
                time.monotonic() - started,
            )
            launch.update(
                ended=utc_now(), workers=used, outcome=result.counts, stopped=result.stopped
            )
            with contextlib.suppress(SweepError):
                _record_launch(info.path, launch)
    return result


def _ray_backend() -> Any:
    try:
        from trpo import sweep_ray
    except ImportError as exc:
        raise SweepError(
            f"the ray backend needs Ray ({exc}); install it with: pip install 'ray[tune]'"
        ) from exc
    return sweep_ray


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError([f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}"])


def _check_launch(spec: SweepSpec, backend: str) -> None:
    """Before anything is created: a known backend (Ray importable) and registered env ids."""
    _check_backend(backend)
    if backend == "ray":
        _ray_backend()
    problems = []
    for env_id in sorted({t.config.env_id for t in trials(spec)}):
        try:
            check_env_id(env_id)
        except EnvError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)


def _record_launch(path: Path, launch: dict[str, Any]) -> None:
    data = _read_info(path)
    launches = data.get("launches") if isinstance(data.get("launches"), list) else []
    launches = [entry for entry in launches if entry.get("started") != launch["started"]]
    data["launches"] = [*launches, dict(launch)]
    _write_info(path, data)


def train_trial(
    run_dir: str,
    should_stop: Callable[[], bool],
    on_record: Callable[[IterationRecord], None] | None = None,
    poll_s: float = STOP_POLL_S,
) -> tuple[str, str | None]:
    """Train one trial's run folder (resume from its checkpoint, or from scratch) until done or
    should_stop() says so (polled by a watcher thread). Returns (state, error); an exception
    is returned as ('failed', message) and the run is marked failed."""
    from trpo.session import TrainingSession, use_torch_threads

    run = open_run(run_dir)
    run.set_status("running", iteration=run.status().get("iteration"))  # claimed by this pid
    stop, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(poll_s):
            try:
                if should_stop():
                    stop.set()
                    return
            except Exception:  # a stop check that fails (e.g. a lost Ray actor): keep going
                log.debug("stop check failed", exc_info=True)

    watcher = threading.Thread(target=watch, name="trpo-sweep-stop", daemon=True)
    watcher.start()
    try:
        try:
            session = TrainingSession.resume(run_dir)
        except Exception as exc:
            error = f"could not start: {type(exc).__name__}: {exc}"
            run.set_status("failed", error=error, iteration=0)
            return "failed", error
        use_torch_threads(session.config)  # a worker process: the trial's thread count
        try:
            return session.run(stop, on_record), None
        except Exception as exc:
            return "failed", str(run.status().get("error") or f"{type(exc).__name__}: {exc}")
    finally:
        done.set()


# --- the local backend: a process pool ------------------------------------------------------

_CURRENT_RUN: str | None = None  # in a pool worker: the run folder being trained


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned pool worker that does not re-run the parent's __main__ (see below)."""


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


# A spawned child normally re-executes the parent's main script (as __mp_main__) so that
# functions defined there can be unpickled. Our workers only need trpo, and re-running the
# main script can be harmful: in a Streamlit server, sys.modules["__main__"] is the page script
# that ran last, and each worker would run that page (launching sweeps of its own). So for
# _WorkerProcess children only, the preparation data leaves the main module out; every other
# process of the program is spawned exactly as before.
_original_preparation_data = multiprocessing.spawn.get_preparation_data


def _preparation_data(name: str) -> dict[str, Any]:
    data = _original_preparation_data(name)
    if str(name).startswith(_WorkerProcess.__name__ + "-"):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


if not getattr(multiprocessing.spawn.get_preparation_data, "_trpo_sweep", False):
    _preparation_data._trpo_sweep = True  # type: ignore[attr-defined]
    multiprocessing.spawn.get_preparation_data = _preparation_data


def _on_sigterm(signum: int, frame: Any) -> None:
    """A pool worker told to end (the pool terminates all workers when one dies): leave the
    trial 'stopped' so that it is resumed, then exit at once."""
    if _CURRENT_RUN is not None:
        with contextlib.suppress(Exception):
            Run(_CURRENT_RUN).set_status("stopped", error="the worker process was terminated")
    os._exit(143)


def _watch_parent(parent: int) -> None:
    """An idle worker whose driver died (killed) would wait for work forever: end it. A
    worker in a trial stops the trial first (its stop check sees the parent gone)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent and _CURRENT_RUN is None:
            os._exit(0)


def _pool_init(worker_init: WorkerInit | None) -> None:
    # Ctrl-C reaches the whole process group: only the driver reacts (it stops the trials).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(
        target=_watch_parent, args=(os.getppid(),), name="trpo-sweep-parent", daemon=True
    ).start()
    import torch

    torch.set_num_threads(1)
    if worker_init is not None:
        worker_init()


def _pool_trial(run_dir: str, stop_path: str) -> tuple[str, str | None]:
    global _CURRENT_RUN
    _CURRENT_RUN = run_dir
    parent = os.getppid()

    def should_stop() -> bool:  # a stop request, or the driver is gone (killed)
        return os.path.exists(stop_path) or os.getppid() != parent

    try:
        outcome = train_trial(run_dir, should_stop)
    finally:
        _CURRENT_RUN = None
    if os.getppid() != parent:  # nobody will collect the outcome
        os._exit(0)
    return outcome


def _run_local(
    driver: _Driver, jobs: list[_Job], workers: int, worker_init: WorkerInit | None
) -> None:
    """At most `workers` trials in flight, so a trial's folder is created when it starts. A
    worker that dies breaks the whole pool: its trial fails, the trials of the other workers
    (terminated by the pool) are resumed in a fresh pool."""
    context = _WorkerContext()
    queue = deque(jobs)
    in_flight: dict[Future[tuple[str, str | None]], _Job] = {}
    pool: ProcessPoolExecutor | None = None
    try:
        while queue or in_flight:
            lost: list[_Job] = []  # trials caught in a broken pool
            if not driver.stop_requested():
                while queue and len(in_flight) < workers:
                    if pool is None:
                        pool = ProcessPoolExecutor(
                            workers, context, initializer=_pool_init, initargs=(worker_init,)
                        )
                    job = queue.popleft()
                    run = driver.start(job)
                    try:
                        future = pool.submit(_pool_trial, str(run.path), str(driver.stop_path))
                    except BrokenProcessPool:  # a worker died since the last wait
                        lost.append(job)
                        break
                    in_flight[future] = job
            if not in_flight and not lost:
                break
            if in_flight:
                done, _ = wait(list(in_flight), timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
            else:
                done = set()
            for future in done:
                job = in_flight.pop(future)
                try:
                    state, error = future.result()
                except BrokenProcessPool:
                    lost.append(job)
                    continue
                except Exception as exc:  # e.g. a result that could not be sent back
                    state, error = "failed", f"{type(exc).__name__}: {exc}"
                    with contextlib.suppress(OSError):
                        job.run.set_status("failed", error=error)  # type: ignore[union-attr]
                driver.finish(job, state, error)
            if lost:
                assert pool is not None
                pool.shutdown(wait=True)  # the pool has terminated and joined every worker
                pool = None
                lost.extend(in_flight.values())
                in_flight.clear()
                _sort_lost(driver, lost, queue)
    finally:
        if pool is not None:
            if in_flight:  # leaving early (an exception): stop the trials, keep them resumable
                with contextlib.suppress(OSError):
                    driver.stop_path.write_text(utc_now() + "\n")
            pool.shutdown(wait=True, cancel_futures=True)


def _sort_lost(driver: _Driver, lost: list[_Job], queue: deque[_Job]) -> None:
    """After the pool broke: which trial's worker died (failed), which were only caught in
    the breakage (run again)."""
    requeue = []
    for job in lost:
        run = job.run
        assert run is not None
        status = run.status()
        state = status.get("state")
        if state in ("finished", "failed"):
            driver.finish(job, state, status.get("error"))
            continue
        # terminated by the pool while training ('stopped' by _on_sigterm), or never started
        # (still marked running by this process): not this trial's fault
        unstarted = state == "running" and status.get("pid") == os.getpid()
        innocent = state == "stopped" or unstarted
        if unstarted:
            job.attempts += 1  # bounded: a worker that cannot even start fails its trials
        if innocent and driver.stop_requested():
            run.set_status("stopped", iteration=status.get("iteration"))
            driver.finish(job, "stopped", None)
        elif innocent and job.attempts < MAX_ATTEMPTS:
            requeue.append(job)
        else:
            error = (
                "the worker process died while training this trial"
                if not innocent
                else f"no worker process could start this trial ({job.attempts} attempts)"
            )
            with contextlib.suppress(OSError):
                run.set_status("failed", error=error, iteration=status.get("iteration"))
            driver.finish(job, "failed", error)
    queue.extendleft(reversed(requeue))


# --- background launch -----------------------------------------------------------------------


@dataclass
class SweepHandle:
    """A sweep running in a background thread of this process."""

    sweep_id: str
    runs_dir: Path
    thread: threading.Thread
    stop_event: threading.Event
    result: SweepResult | None = None
    error: str | None = None

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 0.0) -> bool:
        """Ask every trial to stop; wait up to timeout seconds. True if the sweep has ended."""
        self.stop_event.set()
        if timeout > 0:
            self.thread.join(timeout)
        return not self.alive


def start_sweep(
    spec: SweepSpec | None,
    runs_dir: str | os.PathLike[str],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    resume_sweep_id: str | None = None,
    on_progress: OnProgress | None = None,
    worker_init: WorkerInit | None = None,
) -> SweepHandle:
    """run_sweep in a daemon thread. The spec, env ids and backend are checked and the sweep
    folder is created before this returns (ConfigError / SweepError here, not in the thread),
    so handle.sweep_id can be shown at once; progress is then read from the store."""
    _check_backend(backend)
    if worker_init is not None:
        worker_init()
    if resume_sweep_id is None:
        if spec is None:
            raise ConfigError(["give a sweep spec, or resume_sweep_id to continue a stored sweep"])
        resume_sweep_id = create_sweep(spec, runs_dir, backend)
    else:
        info = load_sweep(runs_dir, resume_sweep_id)
        _check_launch(info.spec, backend)
        if _driver_alive(info.path):
            raise SweepError(f"sweep {resume_sweep_id} is already running")
    stop = threading.Event()
    handle = SweepHandle(resume_sweep_id, Path(runs_dir), threading.Thread(), stop)

    def target() -> None:
        try:
            handle.result = run_sweep(
                None,
                runs_dir,
                workers=workers,
                backend=backend,
                ray_address=ray_address,
                stop_event=stop,
                on_progress=on_progress,
                resume_sweep_id=handle.sweep_id,
                worker_init=worker_init,
            )
        except BaseException as exc:
            handle.error = f"{type(exc).__name__}: {exc}"
            log.exception("sweep %s failed", handle.sweep_id)

    handle.thread = threading.Thread(
        target=target, name=f"trpo-sweep-{resume_sweep_id}", daemon=True
    )
    handle.thread.start()
    return handle


# --- results ---------------------------------------------------------------------------------


def final_return(frame: pd.DataFrame, fraction: float = FINAL_FRACTION) -> float:
    """Mean return_mean over the last `fraction` of the iterations (at least one); NaN if
    none of those iterations finished an episode."""
    if frame.empty:
        return float("nan")
    tail = max(1, math.ceil(fraction * len(frame)))
    values = frame["return_mean"].iloc[-tail:].dropna()
    return float(values.mean()) if len(values) else float("nan")


def sweep_trials(runs_dir: str | os.PathLike[str], sweep_id: str) -> pd.DataFrame:
    """One row per trial (pending ones included), in trial order: trial, config_id, seed, the
    swept knobs, status, iterations, env_steps, total_steps, progress (0-1), current_return
    (the latest return_mean), final_return, best_return, error, run_id, run_dir."""
    info = load_sweep(runs_dir, sweep_id)
    runs = sweep_runs(runs_dir, sweep_id)
    knob_names = info.spec.knob_names
    rows = []
    for trial in info.trials:
        row: dict[str, Any] = {
            "trial": trial.trial_id,
            "config_id": trial.config_id,
            "seed": trial.seed,
        }
        for name in knob_names:
            value = getattr(trial.config, name)
            row[name] = _show(value) if isinstance(value, tuple) else value
        row.update(
            status="pending",
            iterations=0,
            env_steps=0,
            total_steps=trial.config.total_steps,
            progress=0.0,
            current_return=float("nan"),
            final_return=float("nan"),
            best_return=float("nan"),
            error=None,
            run_id=None,
            run_dir=None,
        )
        run = runs.get(trial.trial_id)
        if run is not None:
            try:
                frame = load_metrics(run.path)
            except RunStoreError:
                frame = pd.DataFrame(columns=["iteration", "env_steps", "return_mean"])
            returns = frame["return_mean"].dropna() if len(frame) else pd.Series(dtype=float)
            steps = int(frame["env_steps"].iloc[-1]) if len(frame) else 0
            row.update(
                status=run.state(),
                iterations=int(frame["iteration"].iloc[-1]) if len(frame) else 0,
                env_steps=steps,
                progress=min(1.0, steps / trial.config.total_steps),
                current_return=float(returns.iloc[-1]) if len(returns) else float("nan"),
                final_return=final_return(frame),
                best_return=float(returns.max()) if len(returns) else float("nan"),
                error=run.status().get("error"),
                run_id=run.id,
                run_dir=str(run.path),
            )
        rows.append(row)
    columns = [
        "trial",
        "config_id",
        "seed",
        *knob_names,
        "status",
        "iterations",
        "env_steps",
        "total_steps",
        "progress",
        "current_return",
        "final_return",
        "best_return",
        "error",
        "run_id",
        "run_dir",
    ]
    return pd.DataFrame(rows, columns=columns)


def sweep_results(
    runs_dir: str | os.PathLike[str], sweep_id: str, include_unfinished: bool = False
) -> pd.DataFrame:
    """One row per configuration, best first: config_id, the swept knobs, n_trials, n_seeds
    (seeds counted in the statistics: finished trials, or every trial with a final return if
    include_unfinished), final_return_mean / _std (sample std, NaN for one seed) / _min / _max
    across those seeds, best_return (highest iteration return_mean of any seed) and the trial
    counts per status (n_finished, n_running, n_stopped, n_failed, n_interrupted, n_pending)."""
    table = sweep_trials(runs_dir, sweep_id)
    knob_names = load_sweep(runs_dir, sweep_id).spec.knob_names
    rows = []
    for cid, group in table.groupby("config_id", sort=False):
        counted = group if include_unfinished else group[group["status"] == "finished"]
        finals = counted["final_return"].dropna()
        row: dict[str, Any] = {"config_id": cid}
        for name in knob_names:
            row[name] = group[name].iloc[0]
        row.update(
            n_trials=len(group),
            n_seeds=len(finals),
            final_return_mean=float(finals.mean()) if len(finals) else float("nan"),
            final_return_std=float(finals.std(ddof=1)) if len(finals) > 1 else float("nan"),
            final_return_min=float(finals.min()) if len(finals) else float("nan"),
            final_return_max=float(finals.max()) if len(finals) else float("nan"),
            best_return=float(group["best_return"].max()),
        )
        counts = Counter(group["status"])
        for state in ("finished", "running", "stopped", "failed", "interrupted", "pending"):
            row[f"n_{state}"] = counts.get(state, 0)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("final_return_mean", ascending=False, na_position="last")
    return frame.reset_index(drop=True)


def format_table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 2) -> str:
    """A markdown table of frame (floats with `digits` decimals, NaN as '-')."""
    columns = list(frame.columns) if columns is None else columns

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float):
            return f"{value:.{digits}f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"
        return str(value)

    body = [[cell(v) for v in row] for row in frame[columns].itertuples(index=False)]
    return markdown_table(columns, body)


def format_results(frame: pd.DataFrame, knob_names: list[str]) -> str:
    """The results table for terminals: knobs, seeds, final return mean/std/min/max, counts."""
    if frame.empty:
        return "(no configurations)"
    columns = [
        *knob_names,
        "n_seeds",
        "final_return_mean",
        "final_return_std",
        "final_return_min",
        "final_return_max",
        "n_finished",
        "n_failed",
    ]
    extra = [
        c
        for c in ("n_stopped", "n_interrupted", "n_pending", "n_running")
        if c in frame and frame[c].sum() > 0
    ]
    return format_table(frame, [*columns, *extra])
