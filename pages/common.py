"""Shared by every page: the one training registry, run listing and cached metrics.

Nothing here runs at import time except definitions. The registry is created lazily by
`get_registry()` (st.cache_resource: one per server process). Every run trains in its own
process, so clearing Streamlit's cache or restarting the server does not stop training: the
next registry finds the runs still training in the run store.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from trpo.background import TrainingRegistry
from trpo.config import ConfigError, TRPOConfig
from trpo.envs import EnvError
from trpo.metrics_log import records_to_frame
from trpo.metrics_tail import MetricsTail, shared_tails
from trpo.run_check import Problem, metrics_problems, not_run_folders, run_problems
from trpo.store import Run, RunStore, RunStoreError

MAX_CONCURRENT_RUNS = int(os.environ.get("TRPO_MAX_RUNS", "3"))


def runs_dir() -> Path:
    """The runs directory: $TRPO_RUNS_DIR, default ./runs."""
    return Path(os.environ.get("TRPO_RUNS_DIR", "runs"))


@st.cache_resource(show_spinner=False)
def get_registry() -> TrainingRegistry:
    """The server's registry of trainer processes (defined once, here)."""
    return TrainingRegistry(runs_dir(), max_concurrent=MAX_CONCURRENT_RUNS)


def store() -> RunStore:
    return RunStore(runs_dir())


def _tail(path: str | Path) -> MetricsTail:
    """The run's log reader, shared with the live charts' route (app.py): one per run."""
    return shared_tails().get(path)


NO_METRICS = records_to_frame([])


def metrics_snapshot(run: Run) -> tuple[pd.DataFrame, int]:
    """The run's metrics and their version, a process-wide number that changes with the frame:
    the key of every cache drawn from it (0: no table, the log cannot be read; `problems` says
    why). New records are parsed incrementally; the reader notices a rewritten log (see
    trpo.store.MetricsTail). Do not modify the frame."""
    try:
        return _tail(run.path).snapshot()
    except RunStoreError:
        return NO_METRICS, 0


def metrics(run: Run) -> pd.DataFrame:
    """The run's metrics (shared: do not modify)."""
    return metrics_snapshot(run)[0]


# --- library errors and run problems, in the library's words ----------------------------------

# What the library raises for bad input or bad files; anything else is a bug.
LIBRARY_ERRORS = (RunStoreError, ConfigError, EnvError)


def error_text(exc: BaseException) -> str:
    """A library error in its own words (every problem of a ConfigError)."""
    return "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)


def problems(run: Run) -> list[Problem]:
    """Everything wrong with a run folder: its files (trpo.run_check) and its metrics log."""
    tail = _tail(run.path)
    try:
        records, error = len(tail.snapshot()[0]), None
    except RunStoreError as exc:
        records, error = 0, str(exc)
    running = run.state() == "running"
    return [*run_problems(run), *metrics_problems(records, tail.garbage, error, running)]


def show_problems(run: Run, name_the_run: bool = False) -> None:
    """One st.error (the run cannot be shown) or st.warning per problem of the run."""
    for problem in problems(run):
        text = f"**{run.id}**: {problem.text}" if name_the_run else problem.text
        (st.error if problem.level == "error" else st.warning)(text)


def warn_not_runs() -> None:
    """A warning for each folder of the runs directory that has run files but no config.json."""
    for folder in not_run_folders(runs_dir()):
        st.warning(
            f"**{folder.name}** is not listed: it holds run files but no config.json, so its "
            "settings are lost and it cannot be read as a run."
        )


def safe_config(run: Run) -> TRPOConfig | None:
    """The run's config, or None if it cannot be used (`problems` says why)."""
    try:
        return run.config()
    except (ConfigError, RunStoreError, OSError):
        return None


def run_label(run: Run, config: TRPOConfig | None = None) -> str:
    """'name · env · δ/α/K · seed · started' for pickers: two runs with the same name and
    knobs still read differently (the start time is the run id's head, unique with its tail)."""
    config = config or safe_config(run)
    name = run.meta().get("name") or run.id
    if config is None:
        return f"{name} (unreadable config)"
    started = run.id[:15] if run.meta().get("name") else ""
    label = (
        f"{name} · {config.env_id} · δ={config.delta:g} α={config.alpha:g} "
        f"K={config.max_backtracks} · seed {config.seed}"
    )
    return f"{label} · {started}" if started else label


def linked_run_id(ids: list[str]) -> str | None:
    """The run named by the page's link (`?run=<run id>`), if it exists; a warning says so when
    the link names a run that is not in the runs directory."""
    wanted = st.query_params.get("run")
    if wanted and wanted not in ids:
        st.warning(
            f"The link names run `{wanted}`, which is not in `{runs_dir()}` (deleted, or a link "
            "from another machine): showing another run instead."
        )
    return wanted if wanted in ids else None


def pick_run(key: str, label: str = "Run") -> Run | None:
    """A run selector over the store (newest first). It starts at the run the link names
    (`?run=ID`), else the run chosen on another page, else the newest; the choice is written
    back to the link, so the URL always names the run on display. The chosen run's problems
    are shown below it."""
    warn_not_runs()
    runs = store().runs()
    if not runs:
        st.info("No runs yet: start one on the Train page or with `python -m trpo train`.")
        return None
    ids = [r.id for r in runs]
    state = st.session_state
    if state.get(key) not in ids:
        remembered = state.get("selected_run")
        state[key] = linked_run_id(ids) or (remembered if remembered in ids else ids[0])
    chosen = st.selectbox(label, ids, key=key, format_func=lambda i: run_label(runs[ids.index(i)]))
    state["selected_run"] = chosen
    st.query_params["run"] = chosen
    run = runs[ids.index(chosen)]
    show_problems(run)
    return run


# --- helpers added for the Runs page ---------------------------------------------------------


class DeleteRefused(RuntimeError):
    """A run that must not be deleted, with the reason."""


def delete_run(run: Run) -> None:
    """Delete a run folder through the run store (a direct child of the runs directory holding
    config.json, not training in another process), and never a run this server's registry is
    training. Raises DeleteRefused with the reason."""
    handle = get_registry().get(run.id)
    if handle is not None and handle.alive:
        raise DeleteRefused(f"{run.id} is training in this dashboard: stop it first")
    try:
        store().delete(run)
    except RunStoreError as exc:
        raise DeleteRefused(str(exc)) from exc


class SweepLaunches:
    """Sweeps this server started (process-wide): one launch per spec while it runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.handles: dict[str, Any] = {}  # sweep id -> trpo.sweep.SweepHandle
        self.specs: dict[str, str] = {}  # sweep id -> the spec's JSON

    def start(self, spec: Any, **kwargs: Any) -> Any:
        from trpo.sweep import start_sweep

        key = spec.to_json()
        with self._lock:
            for sweep_id, handle in self.handles.items():
                if handle.thread.is_alive() and self.specs.get(sweep_id) == key:
                    return handle
            handle = start_sweep(spec, runs_dir(), **kwargs)
            self.handles[handle.sweep_id] = handle
            self.specs[handle.sweep_id] = key
            return handle

    def resume(self, sweep_id: str, **kwargs: Any) -> Any:
        from trpo.sweep import start_sweep

        with self._lock:
            handle = self.handles.get(sweep_id)
            if handle is not None and handle.thread.is_alive():
                return handle
            handle = start_sweep(None, runs_dir(), resume_sweep_id=sweep_id, **kwargs)
            self.handles[sweep_id] = handle
            return handle

    def stop_all(self) -> None:
        from trpo.sweep import stop_sweep

        with self._lock:
            handles = list(self.handles.values())
        for handle in handles:
            if handle.thread.is_alive():
                stop_sweep(handle.runs_dir, handle.sweep_id)
        for handle in handles:
            handle.thread.join(30)


@st.cache_resource(show_spinner=False, on_release=lambda launches: launches.stop_all())
def get_sweep_launches() -> SweepLaunches:
    """The process-wide record of sweeps started from the dashboard."""
    return SweepLaunches()
