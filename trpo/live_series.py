"""The Train page's live charts as data: which points to draw, and what a browser still lacks.

Pure numpy/pandas (no Streamlit, no plotly): the page ships what this module picks to the
browser, then only what is new. `trpo.live_layout` dresses the points as plotly traces.

Downsampling keeps extremes. The records are cut into buckets of `b` consecutive records (b a
power of two, the smallest leaving at most max_points // 3 buckets); each bucket contributes the
records of its smallest, its largest and its last value (fewer when they coincide), so a spike
anywhere in a long history stays drawn, and so do the global minimum and maximum and the
latest value. Rejected steps are one marker per bucket holding any, at its first rejected
record, with the count in the hover text.

Why buckets of fixed size: a full bucket never changes. As records arrive only the last bucket
changes, so a browser that holds the series of n0 records needs the points of the buckets from
n0 // b onward, after keeping its first points (`plan` -> a "delta"). When b doubles (the
history doubled), the x axis changes, or records already sent changed (a resumed run rewrote
its log), the browser gets everything again (a "full").
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 300  # per trace, at most (up to three per bucket): ~100 buckets per chart
CG_HISTORY = 15  # iterations whose CG residual curves are drawn
X_AXES = {"env steps": "env_steps", "iteration": "iteration"}  # label -> metrics column
REJECTED = "rejected: θ kept"
# chart -> its traces, in drawing order (each names the metrics column it draws)
CHARTS: dict[str, tuple[str, ...]] = {
    "returns": ("return_max", "return_min", "return_mean"),
    "kl": ("kl", "rejected"),
    "backtrack": ("backtrack_index", "rejected"),
}
# which points of a bucket each trace keeps: the band's edges keep their outer side only
KEEP = {"return_max": ("max", "last"), "return_min": ("min", "last")}
EVERY = ("min", "max", "last")


def bucket_size(n: int, max_points: int = MAX_POINTS) -> int:
    """The smallest power of two b with ceil(n / b) <= max_points // 3 buckets."""
    buckets = max(1, max_points // 3)
    b = 1
    while -(-n // b) > buckets:
        b *= 2
    return b


def _grid(values: np.ndarray, bucket: int, fill: float) -> np.ndarray:
    """values as rows of `bucket` (the last row padded with fill; NaN is fill too)."""
    rows = -(-len(values) // bucket)
    padded = np.full(rows * bucket, fill, dtype=float)
    padded[: len(values)] = np.where(np.isfinite(values), values, fill)
    return padded.reshape(rows, bucket)


def bucket_indices(values: np.ndarray, bucket: int, keep: tuple[str, ...] = EVERY) -> np.ndarray:
    """Ascending positions of each bucket's smallest, largest and/or last value (NaN ignored;
    the first one on ties); a bucket of NaNs gives none."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    valid = _grid(np.isfinite(values).astype(float), bucket, 0.0) > 0
    has_value = valid.any(axis=1)
    starts = np.arange(len(has_value)) * bucket
    picked = []
    if "min" in keep:
        picked.append(starts + _grid(values, bucket, math.inf).argmin(axis=1))
    if "max" in keep:
        picked.append(starts + _grid(values, bucket, -math.inf).argmax(axis=1))
    if "last" in keep:
        picked.append(starts + bucket - 1 - valid[:, ::-1].argmax(axis=1))
    chosen = np.stack(picked)[:, has_value]
    return np.unique(chosen).astype(int)


def first_indices(mask: np.ndarray, bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """(position of the first True of each bucket holding one, how many True it holds)."""
    mask = np.asarray(mask, dtype=bool)
    if len(mask) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    grid = _grid(mask.astype(float), bucket, 0.0) > 0
    counts = grid.sum(axis=1)
    rows = np.flatnonzero(counts)
    return rows * bucket + grid[rows].argmax(axis=1), counts[rows]


@dataclass(frozen=True)
class Points:
    """One trace's points: record positions (ascending) and their y; text for hover."""

    index: np.ndarray
    y: np.ndarray
    text: tuple[str, ...] | None = None


# the metrics columns the charts draw (plus step_accepted)
COLUMNS = (
    "iteration",
    "env_steps",
    "return_mean",
    "return_min",
    "return_max",
    "kl",
    "backtrack_index",
)


def columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The drawn columns of a metrics frame as float arrays (NaN where missing or not a
    number), and "accepted": which steps were accepted (a missing value is not a reject)."""
    out = {}
    for name in COLUMNS:
        if name not in frame:
            out[name] = np.full(len(frame), np.nan)
        elif pd.api.types.is_numeric_dtype(frame[name]) and frame[name].dtype != bool:
            out[name] = frame[name].to_numpy(dtype=float)
        else:
            out[name] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
    if "step_accepted" in frame:
        accepted = frame["step_accepted"]
        if accepted.dtype != bool:
            accepted = accepted.astype(object).fillna(True).astype(bool)
        out["accepted"] = accepted.to_numpy(dtype=bool)
    else:
        out["accepted"] = np.ones(len(frame), dtype=bool)
    return out


def series(
    data: dict[str, np.ndarray], bucket: int, rejected_y: dict[str, float]
) -> dict[str, list[Points]]:
    """chart -> its traces' Points (in CHARTS order), from `columns(frame)`, downsampled with
    buckets of `bucket`.

    KL and j are drawn for accepted steps only; a rejected step is a marker at
    rejected_y[chart] (the KL chart's marker axis, the backtrack chart's 'rejected' row)."""
    accepted = data["accepted"]
    rejected, counts = first_indices(~accepted, bucket)
    text = tuple(REJECTED if c == 1 else f"{REJECTED} (×{c} here)" for c in counts)
    out: dict[str, list[Points]] = {}
    for chart, traces in CHARTS.items():
        out[chart] = []
        for name in traces:
            if name == "rejected":
                y = np.full(len(rejected), rejected_y[chart], dtype=float)
                out[chart].append(Points(rejected, y, text))
                continue
            values = data[name]
            if chart != "returns":
                values = np.where(accepted, values, np.nan)
            index = bucket_indices(values, bucket, KEEP.get(name, EVERY))
            out[chart].append(Points(index, values[index]))
    return out


def _json(values: np.ndarray) -> list[float | None]:
    """Floats for JSON: NaN and infinities become None (a gap in plotly)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def trace_data(points: Points, x: np.ndarray, start: int = 0) -> dict[str, Any]:
    """{"x", "y"(, "text")} of points[start:], JSON-safe."""
    data: dict[str, Any] = {"x": _json(x[points.index[start:]]), "y": _json(points.y[start:])}
    if points.text is not None:
        data["text"] = list(points.text[start:])
    return data


def cg_curves(frame: pd.DataFrame, history: int = CG_HISTORY) -> list[dict[str, Any]]:
    """The CG residuals |r_k| of the last `history` records that have some (oldest first):
    {"iteration", "y"}."""
    if "cg_residuals" not in frame:
        return []
    curves: list[dict[str, Any]] = []
    residuals, iterations = frame["cg_residuals"].to_numpy(), frame["iteration"].to_numpy()
    for i in range(len(frame) - 1, -1, -1):  # from the end: only the last few are read
        if len(curves) == history:
            break
        if isinstance(residuals[i], list) and residuals[i] and math.isfinite(iterations[i]):
            values = np.array([_number(r) for r in residuals[i]])
            curves.append({"iteration": int(iterations[i]), "y": _json(values)})
    return curves[::-1]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def digest(data: dict[str, np.ndarray], n: int) -> str:
    """A fingerprint of the first n records' drawn values (from `columns`): a delta is sent
    only on top of records that did not change."""
    h = hashlib.sha1(usedforsecurity=False)
    for name in (*COLUMNS, "accepted"):
        h.update(np.ascontiguousarray(data[name][:n]).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Sent:
    """What one browser holds: an epoch (a number per full send), the run and x axis, the
    bucket size, how many records, their digest, which charts were empty, the CG iteration."""

    epoch: int
    run_id: str
    axis: str
    bucket: int
    n: int
    digest: str
    empty: tuple[bool, ...]
    cg_iteration: int | None


@dataclass(frozen=True)
class Update:
    """What a browser needs: kind 'full' (replace everything) or 'delta' (per trace, keep the
    first `keep` points and append the rest); `cg` is the CG chart's curves when they changed
    (a delta) or always (a full); base is the record count the delta applies to."""

    kind: str
    epoch: int
    base: int
    n: int
    charts: dict[str, list[dict[str, Any]]]
    cg: list[dict[str, Any]] | None


def plan(
    frame: pd.DataFrame,
    previous: Sent | None,
    run_id: str,
    axis: str,
    rejected_y: dict[str, float],
    max_points: int = MAX_POINTS,
    force_full: bool = False,
) -> tuple[Update | None, Sent]:
    """The update that brings a browser holding `previous` to `frame`, and what it then holds.

    None when it holds it already (nothing is sent). A delta when only records were appended
    and the bucket size is the same; else a full (with a new epoch)."""
    if axis not in X_AXES:
        raise ValueError(f"unknown x axis {axis!r}; expected one of {sorted(X_AXES)}")
    n = len(frame)
    bucket = bucket_size(n, max_points)
    data = columns(frame)
    points = series(data, bucket, rejected_y)
    empty = tuple(all(len(p.index) == 0 for p in points[chart]) for chart in CHARTS)
    curves = cg_curves(frame)
    cg_iteration = curves[-1]["iteration"] if curves else None
    x = data[X_AXES[axis]]
    same = (
        previous is not None
        and not force_full
        and (previous.run_id, previous.axis, previous.bucket) == (run_id, axis, bucket)
        and previous.n <= n
        and previous.empty == empty
        and previous.digest == digest(data, previous.n)
    )
    epoch = (previous.epoch if previous else 0) + (0 if same else 1)
    held = Sent(epoch, run_id, axis, bucket, n, digest(data, n), empty, cg_iteration)
    if same and previous is not None:
        if previous.n == n and previous.cg_iteration == cg_iteration:
            return None, previous
        cut = (previous.n // bucket) * bucket  # records of the buckets the browser keeps whole
        charts = {}
        for chart, traces in points.items():
            charts[chart] = []
            for p in traces:
                keep = int(np.searchsorted(p.index, cut))
                charts[chart].append({"keep": keep, **trace_data(p, x, keep)})
        cg = curves if cg_iteration != previous.cg_iteration else None
        return Update("delta", epoch, previous.n, n, charts, cg), held
    charts = {chart: [trace_data(p, x) for p in traces] for chart, traces in points.items()}
    return Update("full", epoch, 0, n, charts, curves), held
