"""What is wrong with a run folder, in words: for views that show a run and must say why part
of it is missing instead of failing.

`run_problems` reads only the small files (config, status, meta) and the checkpoint's header,
so it is cheap enough for a page that refreshes every second. The metrics log is the caller's
(it has the incremental reader): pass what it found.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from safetensors import SafetensorError, safe_open

from trpo.config import ConfigError, TRPOConfig
from trpo.envs import EnvError, check_env_id
from trpo.store import CHECKPOINT, METRICS, RUN_FILES, STATES, Run, RunStoreError


@dataclass(frozen=True)
class Problem:
    """One problem: 'error' when the run cannot be shown at all, else 'warning'."""

    level: str
    text: str


def not_run_folders(root: str | os.PathLike[str]) -> list[Path]:
    """Folders of the runs directory that hold run files but no config.json (so no run)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir()
        and not (p / "config.json").is_file()
        and any((p / name).exists() for name in RUN_FILES)
    )


def config_problems(run: Run) -> list[Problem]:
    """The config cannot be read or used (error), was written by an older version, or names
    an env this install cannot make (warnings)."""
    try:
        config = run.config()
    except RunStoreError as exc:
        return [Problem("error", f"config.json cannot be read: {exc}")]
    except ConfigError as exc:
        return [Problem("error", f"config.json cannot be used: {'; '.join(exc.problems)}")]
    found = []
    try:
        raw = json.loads((run.path / "config.json").read_bytes())
    except (OSError, ValueError):  # replaced since run.config() read it
        raw = {f.name: None for f in fields(TRPOConfig)}
    missing = sorted({f.name for f in fields(TRPOConfig)} - set(raw))
    if missing:
        found.append(
            Problem(
                "warning",
                f"config.json has no {', '.join(missing)} (written by an older version): "
                "the default value is assumed",
            )
        )
    try:
        check_env_id(config.env_id)
    except EnvError as exc:
        found.append(
            Problem("warning", f"{exc}: this run can be viewed but not resumed or replayed here")
        )
    return found


def _json_object(run: Run, name: str) -> tuple[dict | None, Problem | None]:
    path = run.path / name
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, Problem("warning", f"{name} is missing")
    except OSError as exc:
        return None, Problem("warning", f"{name} cannot be read: {exc.strerror or exc}")
    except ValueError as exc:  # not JSON, or not UTF-8
        return None, Problem("warning", f"{name} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return None, Problem("warning", f"{name} is not a JSON object")
    return data, None


def status_problems(run: Run) -> list[Problem]:
    data, problem = _json_object(run, "status.json")
    if problem is not None:
        return [Problem("warning", f"{problem.text}: the run's state is unknown")]
    found = []
    if data.get("state") not in STATES:
        found.append(f"an unknown state {data.get('state')!r}")
    if "pid" in data and data["pid"] is not None and type(data["pid"]) is not int:
        found.append(f"a process id that is not a number ({data['pid']!r})")
    if data.get("error") is not None and not isinstance(data["error"], str):
        found.append("an error that is not text")
    return [Problem("warning", f"status.json has {', '.join(found)}")] if found else []


def meta_problems(run: Run) -> list[Problem]:
    data, problem = _json_object(run, "meta.json")
    if problem is not None:
        return [Problem("warning", f"{problem.text}: the run's name and tags are unknown")]
    wrong = [
        key
        for key, kind in (("name", str), ("created", str), ("tags", dict))
        if key in data and not isinstance(data[key], kind)
    ]
    return [Problem("warning", f"meta.json: {', '.join(wrong)} of the wrong type")] if wrong else []


def checkpoint_problem(path: Path) -> str | None:
    """Why a safetensors file is not a checkpoint, or None. safetensors checks the header and
    that the tensors fill the file (a cut-short copy fails); the metadata must hold the
    trainer's JSON object under "trpo". Reads the header only, not the tensors."""
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
    except OSError as exc:
        return f"it cannot be read: {exc.strerror or exc}"
    except SafetensorError as exc:
        return f"it is not a whole safetensors file ({exc})"
    try:
        if not isinstance(json.loads(metadata["trpo"]), dict):
            raise TypeError("its metadata is not an object")
    except (KeyError, TypeError, ValueError) as exc:
        return f"its header is not a checkpoint's ({exc!r})"
    return None


def checkpoint_problems(run: Run, running: bool) -> list[Problem]:
    path = run.path / CHECKPOINT
    if not path.exists():
        if running:
            return []
        return [Problem("warning", "no checkpoint: the run cannot be replayed or resumed")]
    reason = checkpoint_problem(path)
    if reason is None:
        return []
    return [
        Problem(
            "warning",
            f"{CHECKPOINT} is not a valid checkpoint: {reason}; the run cannot be replayed "
            "or resumed",
        )
    ]


def metrics_problems(records: int, garbage: int, error: str | None, running: bool) -> list[Problem]:
    """From the metrics reader: its error, the lines it skipped, or no record at all."""
    if error is not None:
        return [Problem("error", f"{METRICS} cannot be read: {error}")]
    found = []
    if garbage:
        found.append(
            Problem(
                "warning",
                f"{METRICS}: {garbage} unreadable line(s) skipped (not JSON, or a record whose "
                "fields have the wrong type)",
            )
        )
    if not records and not running:
        found.append(Problem("warning", "no recorded iteration: there is nothing to show yet"))
    return found


def run_problems(run: Run) -> list[Problem]:
    """Problems of the config, status, meta and checkpoint (not the metrics: see above)."""
    running = run.state() == "running"
    return [
        *config_problems(run),
        *status_problems(run),
        *meta_problems(run),
        *checkpoint_problems(run, running),
    ]
