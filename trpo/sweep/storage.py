"""The sweeps folder: one folder per sweep beside the runs, and everything read or written there.

    <runs_dir>/sweeps/<sweep_id>/sweep.json    the spec, created time, launches
    <runs_dir>/sweeps/<sweep_id>/study.db      the Optuna study (SQLite; unless the spec names
                                               another storage), named after the sweep id
    <runs_dir>/sweeps/<sweep_id>/driver.json   the process running the sweep (while it runs)
    <runs_dir>/sweeps/<sweep_id>/STOP          a stop request (any process may write it)

(`RunStore.runs()` lists only folders that hold a config.json, so `sweeps/` is not a run.) The
trials' runs are ordinary runs in the run store, found by their tags (`sweep_runs`). Reading a
sweep (its state, its tables) needs the run store only, never the study.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trpo.config import ConfigError
from trpo.ids import fresh_folder, process_alive, utc_now
from trpo.store import PRUNED, Run, RunStore, atomic_write_json
from trpo.sweep.backend import check_launch
from trpo.sweep.search import check_storage, create_study, shown_url, storage_url
from trpo.sweep.spec import SweepError, SweepSpec, Trial, is_int, trials

log = logging.getLogger("trpo.sweep")

SWEEPS_DIR = "sweeps"
SPEC_FILE = "sweep.json"
DRIVER_FILE = "driver.json"
STOP_FILE = "STOP"

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")


@dataclass(frozen=True)
class SweepInfo:
    """A stored sweep: its id, folder, spec and launch history."""

    sweep_id: str
    path: Path
    spec: SweepSpec
    created: str
    launches: list[dict[str, Any]]
    #: (knobs as sorted JSON, seed) -> trial id, as written by sweeps made before Optuna chose
    #: the trials (their runs are tagged with those ids, however configs are hashed today)
    legacy_ids: dict[tuple[str, int], str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def study_url(self) -> str:
        """Where the sweep's Optuna study lives (a storage URL; the study is named sweep_id)."""
        return storage_url(self.spec, self.path)

    @property
    def shown_study_url(self) -> str:
        return shown_url(self.study_url)

    def grid_trials(self) -> list[Trial] | None:
        """Every trial of a grid search over the whole grid, under the ids its runs have
        (None for random and TPE search, or a grid search of fewer configurations)."""
        try:
            out = trials(self.spec)
        except SweepError:
            return None
        return [Trial(self._id(t), t.config, t.knobs) for t in out]

    def _id(self, trial: Trial) -> str:
        key = (json.dumps(trial.knobs, sort_keys=True), trial.seed)
        return self.legacy_ids.get(key, trial.trial_id)


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
    """Check the env ids (and that Ray is there for backend 'ray') and the storage, then make
    the sweep folder with sweep.json (spec, created time) and the sweep's Optuna study; return
    its id. Nothing runs yet: pass the id to run_sweep(None, ..., resume_sweep_id=id) or
    start_sweep."""
    check_launch(spec, backend)
    if spec.storage:
        check_storage(spec.storage)  # before anything is created
    root = sweeps_root(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"cannot create {root}: {exc}") from exc
    try:
        path = fresh_folder(root, spec.name or spec.base.env_id)
    except OSError as exc:
        raise SweepError(f"cannot create a sweep folder in {root}: {exc}") from exc
    sweep_id = path.name
    try:
        create_study(spec, sweep_id, path)
        _write_info(
            path,
            {"id": sweep_id, "created": utc_now(), "spec": spec.to_dict(), "launches": []},
        )
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
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
    ids: dict[tuple[str, int], str] = {}
    stored = data.get("trials")  # written by sweeps made before Optuna chose the trials
    if isinstance(stored, list):
        for entry in stored:
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                key = (json.dumps(entry["knobs"], sort_keys=True), int(entry["seed"]))
                ids[key] = str(entry["trial"])
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


def driver_alive(path: Path) -> dict[str, Any] | None:
    """The driver.json of a sweep whose driver process is alive on this machine, else None."""
    try:
        data = json.loads((path / DRIVER_FILE).read_bytes())
    except (OSError, ValueError):  # missing, unreadable, not JSON or not UTF-8
        return None
    if not isinstance(data, dict) or data.get("host") != socket.gethostname():
        return None
    pid = data.get("pid")
    if not is_int(pid):
        return None
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return data if str(path.resolve()) in _ACTIVE else None
    return data if process_alive(pid) else None


def sweep_state(runs_dir: str | os.PathLike[str], sweep_id: str) -> str:
    """'running' (a driver is at work), 'finished' (every trial finished or was pruned),
    'pending' (nothing ran yet), 'failed' (all trials ended, some failed) or 'stopped' (can be
    resumed). Read from the run store: a trial without a run has not started."""
    info = load_sweep(runs_dir, sweep_id)
    if driver_alive(info.path):
        return "running"
    states = [run.state() for run in sweep_runs(runs_dir, sweep_id).values()]
    if not states:
        return "pending"
    if len(states) < info.spec.n_trials:
        return "stopped"
    if all(s in ("finished", PRUNED) for s in states):
        return "finished"
    if all(s in ("finished", PRUNED, "failed") for s in states):
        return "failed"
    return "stopped"


# The sweeps this process is driving (so a second launch in the same process is refused too).
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def driver_lock(path: Path, backend: str, workers: int | None) -> Any:
    key = str(path.resolve())
    with _ACTIVE_LOCK:
        if key in _ACTIVE:
            raise SweepError(f"sweep {path.name} is already running in this process")
        _ACTIVE.add(key)
    try:
        other = driver_alive(path)
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


def record_launch(path: Path, launch: dict[str, Any]) -> None:
    data = _read_info(path)
    launches = data.get("launches") if isinstance(data.get("launches"), list) else []
    launches = [entry for entry in launches if entry.get("started") != launch["started"]]
    data["launches"] = [*launches, dict(launch)]
    _write_info(path, data)
