"""The spectrum figure holds the right data: built from a metrics table made by the metrics
log's own table builder, with an iteration from before the fields existed."""

from __future__ import annotations

import math

import pytest

from trpo.metrics_log import records_to_frame
from trpo.spectrum_plots import spectrum_figure

DAMPING = 0.1


def row(iteration: int, **spectrum: float | None) -> dict:
    return {"iteration": iteration, "env_steps": 100 * iteration, **spectrum}


@pytest.fixture
def frame():
    """Iteration 1 written before the spectrum fields; 2-4 with them; 3 without CG iteration."""
    return records_to_frame(
        [
            row(1),
            row(2, fisher_eig_max=5.0, fisher_eig_min=0.2, fisher_condition=25.0, cos_g_x=0.9),
            row(3, fisher_eig_max=None, fisher_eig_min=None, fisher_condition=None, cos_g_x=None),
            row(4, fisher_eig_max=40.0, fisher_eig_min=0.1, fisher_condition=400.0, cos_g_x=0.3),
        ]
    )


def trace(fig, name):
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def values(t) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in t.y]


def test_spectrum_figure_draws_each_field_over_the_iterations(frame):
    fig = spectrum_figure(frame, DAMPING, iteration=4)
    eig_max = trace(fig, "largest θ_max (≤ λ_max)")
    # iterations with none of the fields are left out: 1 (older version), 3 (no CG iteration)
    assert list(eig_max.x) == [2, 4]
    assert values(eig_max) == [5.0, 40.0]
    assert values(trace(fig, "smallest θ_min (≥ λ_min)")) == [0.2, 0.1]
    assert values(trace(fig, "θ_max / θ_min (≤ condition number)")) == [25.0, 400.0]
    cos = trace(fig, "cos(g, x)")
    assert values(cos) == [0.9, 0.3]
    # eigenvalues and condition on log axes in panels 1 and 2, cos on a linear 0..1 axis
    assert (eig_max.xaxis, eig_max.yaxis, cos.yaxis) == ("x", "y", "y3")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert fig.layout.yaxis3.type != "log" and tuple(fig.layout.yaxis3.range) == (0.0, 1.05)
    # the damping c drawn across the eigenvalue panel, the chosen iteration in every panel
    floor = trace(fig, f"damping c = {DAMPING:g} (θ_min ≥ c)")
    assert (list(floor.x), list(floor.y), floor.yaxis) == ([2, 4], [DAMPING, DAMPING], "y")
    vertical = [s for s in fig.layout.shapes if s.x0 == s.x1]
    assert sorted(s.xref for s in vertical) == ["x", "x2", "x3"]
    assert {s.x0 for s in vertical} == {4}
    assert {fig.layout.xaxis.title.text, fig.layout.xaxis3.title.text} == {"iteration"}


def test_no_damping_line_at_zero_damping_and_no_marker_without_an_iteration(frame):
    fig = spectrum_figure(frame, 0.0)
    assert not fig.layout.shapes
    assert not any("damping" in t.name for t in fig.data)


def test_a_missing_value_is_a_gap_in_its_trace_only(frame):
    frame.loc[frame["iteration"] == 4, "fisher_condition"] = math.nan  # eig min was <= 0
    fig = spectrum_figure(frame, DAMPING)
    assert values(trace(fig, "θ_max / θ_min (≤ condition number)")) == [25.0, None]
    assert values(trace(fig, "largest θ_max (≤ λ_max)")) == [5.0, 40.0]


def test_a_negative_cosine_widens_the_axis(frame):
    frame.loc[frame["iteration"] == 2, "cos_g_x"] = -0.2  # float rounding, in a bad case
    fig = spectrum_figure(frame, DAMPING)
    assert tuple(fig.layout.yaxis3.range) == pytest.approx((-0.25, 1.05))


def test_runs_from_before_the_spectrum_get_an_empty_figure_saying_why():
    old = records_to_frame([row(1), row(2)])
    fig = spectrum_figure(old, DAMPING)
    assert not fig.data
    assert "no spectrum recorded" in fig.layout.annotations[0].text
    assert not spectrum_figure(records_to_frame([]), DAMPING).data
