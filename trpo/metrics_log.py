"""The metrics log's format: one JSON record per line, its one parser and its table.

Both readers of metrics.jsonl, the full one (`Run.records`, `load_metrics`) and the incremental
one (`MetricsTail`), split and parse lines here, so they skip the same lines: a blank line, a
line that is not a JSON object with an integer `iteration` (garbage), and an unterminated last
piece that does not parse (a record still being written). An unterminated last piece that does
parse is a record: both readers count it. No file access here.
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


def parse_record(line: bytes) -> dict[str, Any] | None:
    """The record on one line, or None for a blank line, garbage or half a record."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return row if isinstance(row, dict) and type(row.get("iteration")) is int else None


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
