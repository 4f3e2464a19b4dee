"""The metrics log's format: one JSON record per line, its one parser and its table.

Both readers of metrics.jsonl, the full one (`Run.records`, `load_metrics`) and the incremental
one (`MetricsTail`), split and parse lines here, so they skip the same lines: a blank line, a
line that is not a record (garbage: not a JSON object, no integer `iteration`, or a known field
of the wrong type, see `_well_typed`), and an unterminated last piece that does not parse (a
record still being written). An unterminated last piece that does parse is a record: both
readers count it. Fields missing from a record (an older version's) become NaN, except
iteration and env_steps, which every version wrote; unknown fields (a newer version's) are
kept. No file access here.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

METRIC_COLUMNS = [
    "iteration",
    "env_steps",
    "wall_time_s",
    "return_mean",
    "return_min",
    "return_max",
    "kl",
    "backtrack_index",
    "step_accepted",
    "cg_residuals",
    "value_loss",
    "entropy",
    "explained_variance",
]
# Columns that hold lists, dicts or text: never converted to numbers.
_NOT_NUMERIC = (
    "cg_residuals",
    "line_search",
    "geometry",
    "extra",
    "reject_reason",
    "step_accepted",
)


# json.loads gives exact types (bool is not an int here), so checks compare type(value).
_NONE = type(None)
_NUMBER = frozenset({int, float, _NONE})
FIELD_TYPES: dict[str, frozenset[type]] = {
    "iteration": frozenset({int}),
    "env_steps": frozenset({int}),
    "episodes": frozenset({int, _NONE}),
    "backtrack_index": frozenset({int, _NONE}),
    "step_accepted": frozenset({bool}),
    "reject_reason": frozenset({str, _NONE}),
    "cg_residuals": frozenset({list}),
    "line_search": frozenset({list}),
    "geometry": frozenset({dict, _NONE}),
    "extra": frozenset({dict}),
}
NUMBER_FIELDS = (
    "wall_time_s",
    "iteration_time_s",
    "steps_per_s",
    "return_mean",
    "return_std",
    "return_min",
    "return_max",
    "length_mean",
    "kl",
    "surrogate_before",
    "surrogate_after",
    "grad_norm",
    "g_dot_x",
    "x_h_x",
    "step_scale",
    "step_norm",
    "entropy",
    "log_std_mean",
    "value_loss",
    "explained_variance",
    "time_collect_s",
    "time_advantages_s",
    "time_cg_s",
    "time_linesearch_s",
    "time_value_s",
    "time_probe_s",
)
FIELD_TYPES.update({name: _NUMBER for name in NUMBER_FIELDS})
CANDIDATE_TYPES: dict[str, frozenset[type]] = {
    "j": frozenset({int}),
    "fraction": _NUMBER,
    "kl": _NUMBER,
    "actual_improvement": _NUMBER,
    "expected_improvement": _NUMBER,
    "kl_ok": frozenset({bool}),
    "improved": frozenset({bool}),
}
GEOMETRY_LISTS = ("fractions", "kl", "improvement", "kl_model", "improvement_model")


def _numbers(value: Any) -> bool:
    return type(value) is list and _NUMBER.issuperset(map(type, value))


def _well_typed(row: dict[str, Any]) -> bool:
    """Known fields have their types; line search candidates, CG residuals and the geometry
    probe hold what the charts read. Every field but iteration and env_steps may be missing."""
    if "env_steps" not in row:
        return False
    for key, value in row.items():
        types = FIELD_TYPES.get(key)
        if types is not None and type(value) not in types:
            return False
    for candidate in row.get("line_search", ()):
        if type(candidate) is not dict:
            return False
        for key, types in CANDIDATE_TYPES.items():
            if type(candidate.get(key)) not in types:
                return False
    geometry = row.get("geometry")
    if geometry is not None and not all(_numbers(geometry.get(k)) for k in GEOMETRY_LISTS):
        return False
    return _numbers(row.get("cg_residuals", []))


def parse_record(line: bytes) -> dict[str, Any] | None:
    """The record on one line, or None for a blank line, garbage or half a record."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return row if isinstance(row, dict) and "iteration" in row and _well_typed(row) else None


def parse_lines(data: bytes) -> tuple[list[dict[str, Any]], int, int]:
    """(records, garbage, end) of the complete lines of data: `end` is the length up to and
    including the last newline (0 if none); `garbage` counts the non-blank lines that are not
    records. The bytes after `end` are left for `parse_record` (a line still being written)."""
    end = data.rfind(b"\n") + 1
    rows: list[dict[str, Any]] = []
    garbage = 0
    for line in data[:end].split(b"\n")[:-1]:
        row = parse_record(line)
        if row is not None:
            rows.append(row)
        elif line.strip():
            garbage += 1
    return rows, garbage, end


def records_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per iteration (the last record wins if an iteration repeats after a resume).

    Missing values (no finished episode, rejected step) are NaN; backtrack_index is float so
    that a rejected step can be NaN.
    """
    if not rows:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    frame = pd.DataFrame(rows)
    frame = frame.drop_duplicates("iteration", keep="last").sort_values("iteration")
    frame = frame.reset_index(drop=True)
    for column in METRIC_COLUMNS:
        if column not in frame:
            frame[column] = float("nan")
    for column in frame.columns:
        if column not in _NOT_NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["backtrack_index"] = frame["backtrack_index"].astype(float)
    frame["step_accepted"] = frame["step_accepted"].astype(bool)
    return frame
