"""A run's records as TensorBoard event files: every scalar of every record, one time series
per field, so a run opens in TensorBoard beside runs from other tools.

Each record's numbers (ints, floats, and booleans as 0/1) become scalars tagged
<group>/<field> (groups: episode, trust_region, policy, time, run; `extra` numbers under
extra/<key>), plus trust_region/cg_iterations, the number of CG iterations (the length of the
record's CG residual list). None (not applicable) writes nothing. The step of every point is
the record's env_steps, as in sb3's TensorBoard logs; its wall time is the run's creation time
plus the record's training wall time. TensorBoard keeps scalars as float32.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from trpo.compare import METRICS
from trpo.export.output import ExportError, folder_target
from trpo.store import Run, open_run

#: TensorBoard group (a section of its scalars tab) -> the record fields in it; others: "train"
GROUP_FIELDS: dict[str, tuple[str, ...]] = {
    "episode": ("episodes", "return_mean", "return_std", "return_min", "return_max", "length_mean"),
    "trust_region": (
        "step_accepted",
        "backtrack_index",
        "kl",
        "surrogate_before",
        "surrogate_after",
        "grad_norm",
        "g_dot_x",
        "x_h_x",
        "step_scale",
        "step_norm",
        "cg_true_residual",
        "cg_iterations",
    ),
    "policy": ("entropy", "log_std_mean", "value_loss", "explained_variance"),
    "time": ("wall_time_s", "iteration_time_s", "steps_per_s"),  # and every time_* field
    "run": ("iteration", "env_steps"),
}
GROUPS = {field: group for group, fields in GROUP_FIELDS.items() for field in fields}
EVENT_FILE_PREFIX = "events.out.tfevents."


def tag_of(field: str) -> str:
    """The TensorBoard tag of a record field: <group>/<field>."""
    group = "time" if field.startswith("time_") else GROUPS.get(field, "train")
    return f"{group}/{field}"


def _number(value: Any) -> float | None:
    """A finite int, float or bool as float; None for anything else."""
    if isinstance(value, (bool, int, float)) and math.isfinite(value):
        return float(value)
    return None


def record_scalars(record: dict[str, Any]) -> dict[str, float]:
    """tag -> value of one record (a `IterationRecord.to_dict()` or a metrics-log row): its
    numeric fields, its `extra` numbers and the CG iteration count (see the module docstring)."""
    scalars = {}
    for name, value in record.items():
        number = _number(value)
        if number is not None:
            scalars[tag_of(name)] = number
    residuals = record.get("cg_residuals")
    if isinstance(residuals, list):
        scalars[tag_of("cg_iterations")] = float(len(residuals))
    extra = record.get("extra")
    if isinstance(extra, dict):
        for key, value in extra.items():
            number = _number(value)
            if number is not None:
                scalars[f"extra/{key}"] = number
    return scalars


def latest_records(run: Run) -> list[dict[str, Any]]:
    """The run's records as dicts, one per iteration (the last written wins, as in
    `load_metrics`), in iteration order; fields a newer version wrote are kept."""
    by_iteration = {row["iteration"]: row for row in run.rows()}
    return [by_iteration[i] for i in sorted(by_iteration)]


def _created(run: Run) -> float:
    """The run's creation time (seconds since the epoch), from meta.json; now if unknown."""
    try:
        return datetime.fromisoformat(str(run.meta().get("created"))).timestamp()
    except ValueError:
        return time.time()


def _event_files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.iterdir() if p.name.startswith(EVENT_FILE_PREFIX))


def export_tensorboard(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the run's scalars as event files in out/<run id>/ (so that `tensorboard --logdir
    out` lists the runs exported there by id); returns that folder.

    Raises ExportError when out cannot be written or out/<run id> already holds event files
    (TensorBoard would show both exports as one run), RunStoreError for a folder that is not a
    run or whose log cannot be read."""
    run = open_run(run_dir)
    records = latest_records(run)
    folder = folder_target(folder_target(out) / run.id)
    if next(_event_files(folder), None) is not None:
        raise ExportError(
            f"{folder} already holds TensorBoard event files; delete them or choose another --out"
        )
    from tensorboard.summary import Writer

    start = _created(run)
    writer = Writer(str(folder))
    try:
        for record in records:
            step = int(record.get("env_steps") or 0)
            wall_time = start + float(_number(record.get("wall_time_s")) or 0.0)
            for tag, value in record_scalars(record).items():
                description = METRICS.get(tag.split("/", 1)[1])
                writer.add_scalar(tag, value, step, wall_time=wall_time, description=description)
    finally:
        writer.close()
    return folder
