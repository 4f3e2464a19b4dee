"""The metrics log's format: one JSON record per line, its one parser and its table.

Both readers of metrics.jsonl, the full one (`Run.rows`, `Run.records`, `load_metrics`) and
the incremental one (`metrics_tail.MetricsTail`), split and parse lines here, so they skip the
same lines: a blank line, a line that is not a record (garbage: not a JSON object, no integer
`iteration`, or a known field of the wrong type, see `_well_typed`), and an unterminated last
piece that does not parse (a record still being written). An unterminated last piece that does
parse is a record: both readers count it. Fields missing from a record (an older version's)
become NaN, except iteration and env_steps, which every version wrote; unknown fields (a newer
version's) are kept. `record_at` turns one row of the table back into a typed
IterationRecord, for the views of a single iteration. No file access here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import TYPE_CHECKING, Any

from trpo.linesearch import Candidate
from trpo.record import Geometry, IterationRecord

if TYPE_CHECKING:  # pandas is imported where a table is built: trainer processes never do
    import pandas as pd

# json.loads gives exact types (bool is not an int here), so checks compare type(value).
_NONE = type(None)
_NUMBER = frozenset({int, float, _NONE})  # a float field: non-finite values are written as null


def _json_types(hint: Any) -> frozenset[type]:
    """The JSON types a field of this type hint is written as (IterationRecord.to_dict)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return frozenset().union(*(_json_types(a) for a in args))
    if hint is float:
        return _NUMBER
    if hint in (int, bool, str, _NONE):
        return frozenset({hint})
    if hint is list or typing.get_origin(hint) is list:
        return frozenset({list})
    return frozenset({dict})  # dict[...] and dataclasses (Geometry)


def _field_types(cls: type) -> dict[str, frozenset[type]]:
    return {name: _json_types(hint) for name, hint in typing.get_type_hints(cls).items()}


#: Every IterationRecord field and the JSON types a valid record holds in it. episodes was
#: None in records of early versions.
FIELD_TYPES: dict[str, frozenset[type]] = {
    **_field_types(IterationRecord),
    "episodes": frozenset({int, _NONE}),
}
CANDIDATE_TYPES = _field_types(Candidate)
GEOMETRY_LISTS = tuple(f.name for f in dataclasses.fields(Geometry))
#: Fields that hold numbers (NaN in a table when missing or null).
NUMBER_FIELDS = tuple(name for name, kinds in FIELD_TYPES.items() if kinds <= _NUMBER)
#: Fields that hold lists, dicts, text or booleans: never converted to numbers.
OTHER_FIELDS = tuple(name for name in FIELD_TYPES if name not in NUMBER_FIELDS)
#: Fields that hold lists or dicts (dropped or flattened for CSV).
NESTED_FIELDS = tuple(name for name, kinds in FIELD_TYPES.items() if kinds & {list, dict})
#: Columns every metrics table has, even empty or built from an older version's records.
METRIC_COLUMNS = ["iteration", *(n for n in NUMBER_FIELDS if n != "iteration"), "step_accepted"]
#: Fields the record holds as int (the table as float where NaN must fit) or as bool.
_INT_FIELDS = frozenset(n for n, kinds in FIELD_TYPES.items() if kinds - {_NONE} == {int})
_BOOL_FIELDS = frozenset(n for n, kinds in FIELD_TYPES.items() if kinds == {bool})


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
    import pandas as pd

    if not rows:
        return pd.DataFrame(columns=METRIC_COLUMNS)
    frame = pd.DataFrame(rows)
    frame = frame.drop_duplicates("iteration", keep="last").sort_values("iteration")
    frame = frame.reset_index(drop=True)
    for column in METRIC_COLUMNS:
        if column not in frame:
            frame[column] = float("nan")
    for column in frame.columns:
        if column not in OTHER_FIELDS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["backtrack_index"] = frame["backtrack_index"].astype(float)
    frame["step_accepted"] = frame["step_accepted"].astype(bool)
    return frame


def record_at(frame: pd.DataFrame, iteration: int) -> IterationRecord:
    """The typed record of one iteration of a metrics table (`records_to_frame`), so that the
    views of one iteration read IterationRecord's fields (record.kl, candidate.kl) instead of
    string keys, NaN and numpy scalars.

    A NaN cell (the record wrote null, or an older version did not write the field) is left
    out, so `IterationRecord.from_dict` makes it None (or the field's default), as for the
    line itself in `Run.records`; numbers come back as Python int, float and bool. Raises
    KeyError if the iteration is not in the table."""
    rows = frame[frame["iteration"] == iteration]
    if rows.empty:
        raise KeyError(f"iteration {iteration} is not in the metrics table")
    row = rows.iloc[-1]
    data = {k: _cell(k, v) for k, v in row.items() if k in FIELD_TYPES and not _nan(v)}
    return IterationRecord.from_dict(data)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _cell(name: str, value: Any) -> Any:
    """A table cell as the record holds it: numbers as Python int, bool or float (the table has
    numpy scalars, and backtrack_index and episodes as floats); lists, dicts and text as is."""
    if name in _INT_FIELDS:
        return int(value)
    if name in _BOOL_FIELDS:
        return bool(value)
    if name in NUMBER_FIELDS:
        return float(value)
    return value


def flat_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A metrics table with one scalar per cell, for CSV: the per-candidate line search, the
    geometry probe and `extra` are dropped; CG residuals become 'r1;r2;...' plus a
    cg_iterations count."""
    nested = [c for c in NESTED_FIELDS if c != "cg_residuals" and c in frame.columns]
    flat = frame.drop(columns=nested)
    if "cg_residuals" in flat.columns:
        residuals = flat["cg_residuals"]
        flat = flat.assign(
            cg_iterations=residuals.map(lambda r: len(r) if isinstance(r, list) else 0),
            cg_residuals=residuals.map(
                lambda r: (
                    ";".join(f"{v:.6g}" for v in r if v is not None) if isinstance(r, list) else ""
                )
            ),
        )
    return flat
