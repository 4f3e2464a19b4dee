"""The metrics log's schema comes from IterationRecord itself: every field is checked by the one
parser, a table has every numeric field as a column, and the CSV flattening follows the types."""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest

from trpo import metrics_log
from trpo.linesearch import Candidate
from trpo.record import Geometry, IterationRecord


def record(**changes) -> IterationRecord:
    base = dict(
        iteration=1, env_steps=2048, wall_time_s=1.5, iteration_time_s=1.5, steps_per_s=1365.0,
        episodes=3, return_mean=10.0, return_std=1.0, return_min=9.0, return_max=11.0,
        length_mean=20.0, step_accepted=True, backtrack_index=1, reject_reason=None, kl=0.009,
        surrogate_before=0.0, surrogate_after=0.01, grad_norm=0.5, g_dot_x=0.2, x_h_x=0.2,
        step_scale=0.3, step_norm=0.06, cg_residuals=[0.1, 0.01],
        line_search=[Candidate(0, 1.0, 0.02, 0.01, 0.02, False, True),
                     Candidate(1, 0.8, 0.009, 0.012, 0.016, True, True)],
        entropy=1.1, log_std_mean=None, value_loss=3.0, explained_variance=0.2,
        time_collect_s=1.0, time_advantages_s=0.1, time_cg_s=0.1, time_linesearch_s=0.1,
        time_value_s=0.2, cg_true_residual=0.011,
        geometry=Geometry([0.5, 1.0], [0.005, 0.02], [0.006, 0.01], [0.005, 0.02], [0.005, 0.01]),
    )  # fmt: skip
    return IterationRecord(**{**base, **changes})


def line(rec: IterationRecord | dict) -> bytes:
    data = rec.to_dict() if isinstance(rec, IterationRecord) else rec
    return json.dumps(data).encode()


def test_every_record_field_has_a_json_type_and_a_written_record_parses_back():
    names = {f.name for f in dataclasses.fields(IterationRecord)}
    assert set(metrics_log.FIELD_TYPES) == names
    assert set(metrics_log.NUMBER_FIELDS) | set(metrics_log.OTHER_FIELDS) == names
    rec = record()
    parsed = metrics_log.parse_record(line(rec))
    assert parsed == rec.to_dict()
    assert IterationRecord.from_dict(parsed) == rec
    # a rejected step with non-finite numbers is written with nulls and still parses
    rejected = record(step_accepted=False, backtrack_index=None, kl=None, x_h_x=math.inf)
    assert metrics_log.parse_record(line(rejected))["x_h_x"] is None


def test_a_field_of_the_wrong_type_makes_the_line_garbage():
    good = record().to_dict()
    for name, bad in [
        ("cg_true_residual", "0.1"),  # a float field holding text
        ("iteration", 1.0),
        ("step_accepted", 1),
        ("line_search", {"j": 0}),
        ("geometry", [1, 2]),
        ("extra", []),
    ]:
        assert metrics_log.parse_record(line({**good, name: bad})) is None, name
    candidate = {**good["line_search"][0], "kl_ok": "yes"}
    assert metrics_log.parse_record(line({**good, "line_search": [candidate]})) is None


def test_a_table_has_every_numeric_field_even_from_an_older_record():
    old = {"iteration": 1, "env_steps": 100, "return_mean": 5.0}  # an early version's record
    frame = metrics_log.records_to_frame([old])
    for name in metrics_log.NUMBER_FIELDS:
        assert name in frame.columns, name
    assert math.isnan(frame["kl"].iloc[0]) and frame["return_mean"].iloc[0] == 5.0
    empty = metrics_log.records_to_frame([])
    assert list(empty.columns) == metrics_log.METRIC_COLUMNS


def test_flat_frame_drops_nested_fields_and_joins_cg_residuals():
    frame = metrics_log.records_to_frame([record().to_dict(), record(iteration=2).to_dict()])
    flat = metrics_log.flat_frame(frame)
    assert not {"line_search", "geometry", "extra"} & set(flat.columns)
    assert flat["cg_residuals"].tolist() == ["0.1;0.01", "0.1;0.01"]
    assert flat["cg_iterations"].tolist() == [2, 2]
    assert all(pd.api.types.is_scalar(v) for column in flat.columns for v in flat[column].tolist())


def test_record_at_gives_each_line_back_as_from_dict_reads_it():
    """A table's row turned back into a record: NaN cells are None (or the field's default),
    numbers Python ints, floats and bools, as IterationRecord.from_dict makes of the line."""
    rejected = record(
        iteration=2, step_accepted=False, backtrack_index=None, kl=None,
        reject_reason="KL above delta", x_h_x=math.inf, geometry=None,
        line_search=[Candidate(0, 1.0, None, 0.01, 0.02, False, True)],
    )  # fmt: skip
    # an early version's line: no x_h_x, true residual, probe, time_probe_s, line search, extra
    old = dict(
        iteration=3, env_steps=6144, episodes=2, return_mean=5.0, step_accepted=True,
        backtrack_index=0, kl=0.004, cg_residuals=[0.2],
    )  # fmt: skip
    lines = [record().to_dict(), rejected.to_dict(), old]
    frame = metrics_log.records_to_frame(lines)
    for data in lines:
        assert metrics_log.record_at(frame, data["iteration"]) == IterationRecord.from_dict(data)
    first = metrics_log.record_at(frame, 1)
    assert first == record()
    assert type(first.backtrack_index) is int and type(first.episodes) is int
    assert type(first.step_accepted) is bool and type(first.iteration) is int
    assert type(first.return_mean) is float
    back = metrics_log.record_at(frame, 2)
    assert back.backtrack_index is None and back.kl is None and back.x_h_x is None
    assert back.reject_reason == "KL above delta" and back.line_search[0].kl is None
    assert back.geometry is None and back.step_accepted is False
    older = metrics_log.record_at(frame, 3)
    assert older.x_h_x is None and older.cg_true_residual is None and older.geometry is None
    assert older.return_std is None and older.reject_reason is None
    assert older.line_search == [] and older.extra == {} and older.time_probe_s == 0.0
    assert older.backtrack_index == 0 and type(older.backtrack_index) is int


def test_record_at_an_iteration_not_in_the_table_raises():
    frame = metrics_log.records_to_frame([record().to_dict()])
    with pytest.raises(KeyError, match="iteration 7 is not in the metrics table"):
        metrics_log.record_at(frame, 7)
    with pytest.raises(KeyError, match="iteration 1"):
        metrics_log.record_at(metrics_log.records_to_frame([]), 1)


def test_a_newer_versions_keys_inside_candidates_and_the_probe_are_ignored():
    """A line search candidate or geometry probe with a field this version does not know still
    reads (the known fields), in the log and through the table."""
    data = record(geometry=Geometry([0.0, 1.0], [0.0, 0.01], [0.0, 0.1], [0.0, 0.01], [0.0, 0.1]))
    data = data.to_dict()
    data["line_search"][0]["from_the_future"] = 1.0
    data["geometry"]["curvature_of_the_future"] = [1.0, 2.0]
    expected = record(
        geometry=Geometry([0.0, 1.0], [0.0, 0.01], [0.0, 0.1], [0.0, 0.01], [0.0, 0.1])
    )
    assert IterationRecord.from_dict(data) == IterationRecord.from_dict(expected.to_dict())
    frame = metrics_log.records_to_frame([data])
    assert metrics_log.record_at(frame, data["iteration"]).geometry == expected.geometry
