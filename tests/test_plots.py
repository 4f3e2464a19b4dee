"""The plotly figures hold the right data: built from a hand-made metrics frame, one
iteration's from its record (record_at)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from trpo import analysis, plots
from trpo.metrics_log import record_at

DELTA = 0.01
K = 2


def candidate(j, kl, actual, expected, kl_ok=None, improved=None):
    return {
        "j": j,
        "fraction": 0.5**j,
        "kl": kl,
        "actual_improvement": actual,
        "expected_improvement": expected,
        "kl_ok": kl <= DELTA if kl_ok is None else kl_ok,
        "improved": actual > 0 if improved is None else improved,
    }


def geometry():
    f = [0.0, 0.5, 1.0, 1.5]
    return {
        "fractions": f,
        "kl": [0.0, 0.002, 0.009, 0.02],
        "improvement": [0.0, 0.004, 0.007, 0.008],
        "kl_model": [0.5 * x * x * 0.02 for x in f],
        "improvement_model": [0.008 * x for x in f],
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    """Five iterations: accepted at j=0, j=2, rejected (KL), j=1, j=0; no episode in iter 3."""
    rows = [
        dict(
            iteration=1,
            env_steps=100,
            return_mean=10.0,
            return_min=5.0,
            return_max=15.0,
            step_accepted=True,
            backtrack_index=0.0,
            reject_reason=None,
            kl=0.008,
            cg_residuals=[1.0, 0.1, 0.01],
            line_search=[candidate(0, 0.008, 0.02, 0.025)],
            geometry=geometry(),
        ),
        dict(
            iteration=2,
            env_steps=200,
            return_mean=20.0,
            return_min=12.0,
            return_max=30.0,
            step_accepted=True,
            backtrack_index=2.0,
            reject_reason=None,
            kl=0.009,
            cg_residuals=[2.0, 0.2],
            line_search=[
                candidate(0, 0.03, 0.05, 0.04),
                candidate(1, 0.015, -0.01, 0.02),
                candidate(2, 0.009, 0.006, 0.01),
            ],
            geometry=None,
        ),
        dict(
            iteration=3,
            env_steps=300,
            return_mean=math.nan,
            return_min=math.nan,
            return_max=math.nan,
            step_accepted=False,
            backtrack_index=math.nan,
            reject_reason="KL above delta",
            kl=math.nan,
            cg_residuals=[3.0, 0.3, 0.03, 0.003],
            line_search=[
                candidate(0, 0.05, 0.05, 0.04),
                candidate(1, 0.03, 0.03, 0.02),
                candidate(2, 0.02, 0.01, 0.01),
            ],
            geometry=None,
        ),
        dict(
            iteration=4,
            env_steps=400,
            return_mean=40.0,
            return_min=35.0,
            return_max=45.0,
            step_accepted=True,
            backtrack_index=1.0,
            reject_reason=None,
            kl=0.004,
            cg_residuals=[1.5],
            line_search=[candidate(0, 0.006, -0.001, 0.01), candidate(1, 0.004, 0.002, 0.005)],
            geometry=None,
        ),
        dict(
            iteration=5,
            env_steps=500,
            return_mean=50.0,
            return_min=50.0,
            return_max=50.0,
            step_accepted=True,
            backtrack_index=0.0,
            reject_reason=None,
            kl=0.01,
            cg_residuals=[0.5, 0.05],
            line_search=[candidate(0, 0.01, 0.01, 0.02)],
            geometry=None,
        ),
    ]
    return pd.DataFrame(rows)


def trace(fig, name):
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def test_downsample_keeps_at_most_max_points_and_the_last_row():
    big = pd.DataFrame({"iteration": range(1, 2001), "value": np.arange(2000.0)})
    small = plots.downsample(big)
    assert len(small) <= plots.MAX_POINTS
    assert small["iteration"].iloc[-1] == 2000
    assert small["iteration"].iloc[0] == 1
    assert small["iteration"].is_monotonic_increasing
    assert plots.downsample(big.head(10)) is not None
    assert len(plots.downsample(big.head(10))) == 10


@pytest.mark.parametrize(("rows", "max_points"), [(1200, 600), (2000, 7)])
def test_downsample_never_exceeds_max_points(rows, max_points):
    big = pd.DataFrame({"iteration": range(1, rows + 1)})
    small = plots.downsample(big, max_points)
    assert small["iteration"].iloc[-1] == rows
    assert len(small) <= max_points


def test_seed_band_figure_mean_is_the_mean_of_interpolated_curves():
    a = pd.DataFrame({"env_steps": [0, 100, 200, 300], "return_mean": [0.0, 10.0, 20.0, 30.0]})
    b = pd.DataFrame({"env_steps": [50, 150, 250], "return_mean": [5.0, 5.0, 45.0]})
    c = pd.DataFrame({"env_steps": [0, 300], "return_mean": [1.0, 2.0]})
    fig = plots.seed_band_figure({"group A": [a, b], "group B": [c]}, points=11)
    upper, lower, mean = fig.data[:3]
    grid = np.linspace(50, 250, 11)  # the steps every run of group A covers
    assert mean.x == pytest.approx(grid)
    curves = np.stack(
        [
            np.interp(grid, a["env_steps"], a["return_mean"]),
            np.interp(grid, b["env_steps"], b["return_mean"]),
        ]
    )
    assert mean.y == pytest.approx(curves.mean(0))
    assert upper.y == pytest.approx(curves.max(0))
    assert lower.y == pytest.approx(curves.min(0))
    assert mean.name == "group A (2 seeds)"
    assert fig.data[5].name == "group B (1 seeds)"


def test_trust_region_summary_counts_candidates_and_ratios(frame):
    summary = analysis.trust_region_summary(frame, DELTA)
    assert summary["iterations"] == 5
    assert summary["acceptance_rate"] == pytest.approx(0.8)
    assert summary["candidates"] == 10
    # KL failures: it2 j0,j1; it3 j0,j1,j2 -> 5. Improvement failures: it2 j1; it4 j0 -> 2.
    assert summary["failed_kl"] == 5
    assert summary["failed_improvement"] == 2
    assert summary["kl_over_delta"] == pytest.approx([0.8, 0.9, 0.4, 1.0])
    assert summary["improvement_ratio"] == pytest.approx([0.02 / 0.025, 0.6, 0.4, 0.5])
    assert summary["mean_backtrack_index"] == pytest.approx(0.75)


def test_line_search_figure_shows_each_candidates_kl_and_improvement(frame):
    fig = plots.line_search_figure(record_at(frame, 2), DELTA)
    bars = trace(fig, "KL")
    assert list(bars.x) == [0, 1, 2]
    assert list(bars.y) == [0.03, 0.015, 0.009]
    assert bars.marker.color[2] == plots.ACCEPT_COLOR
    assert bars.marker.color[0] != plots.ACCEPT_COLOR
    assert list(trace(fig, "actual").y) == [0.05, -0.01, 0.006]
    assert list(trace(fig, "expected (gᵀ step)").y) == [0.04, 0.02, 0.01]


def test_cg_iteration_figure_plots_one_iterations_residuals(frame):
    fig = plots.cg_iteration_figure(record_at(frame, 3), residual_tol=1e-10)
    (line,) = fig.data
    assert list(line.x) == [1, 2, 3, 4]
    assert list(line.y) == [3.0, 0.3, 0.03, 0.003]
    assert fig.layout.yaxis.type == "log"
    assert "iteration 3" in fig.layout.title.text
    # 1e-10 is more than TOLERANCE_SPAN below every point: named, not drawn (it squeezed the
    # curve into the top of the chart)
    assert not fig.layout.shapes
    assert "tolerance 1e-10: far below this range" in fig.layout.annotations[-1].text

    fig = plots.cg_iteration_figure(record_at(frame, 3), residual_tol=3e-6)  # 0.003 / 1e3
    assert [s.y0 for s in fig.layout.shapes] == [3e-6]

    empty = dataclasses.replace(record_at(frame, 1), cg_residuals=[])
    fig = plots.cg_iteration_figure(empty)
    assert not fig.data
    assert "no CG iteration" in fig.layout.annotations[0].text


def test_line_search_table_flags_checks_and_the_accepted_candidate(frame):
    table = analysis.line_search_table(record_at(frame, 2), DELTA)
    assert list(table["j"]) == [0, 1, 2]
    assert list(table["KL / delta"]) == pytest.approx([3.0, 1.5, 0.9])
    assert list(table["actual / expected"]) == pytest.approx([1.25, -0.5, 0.6])
    assert list(table["KL ok"]) == [False, False, True]
    assert list(table["improved"]) == [True, False, True]
    assert list(table["accepted"]) == [False, False, True]
    rejected = analysis.line_search_table(record_at(frame, 3), DELTA)
    assert not rejected["accepted"].any()
    none = dataclasses.replace(record_at(frame, 1), line_search=[])
    assert analysis.line_search_table(none, DELTA).empty


def test_geometry_figure_has_true_kl_and_models_or_says_probe_missing(frame):
    fig = plots.geometry_figure(record_at(frame, 1), DELTA, 0.5, K)
    assert list(trace(fig, "true KL").y) == geometry()["kl"]
    assert list(trace(fig, "½ s² xᵀHx").y) == pytest.approx(geometry()["kl_model"])
    assert list(trace(fig, "true improvement").y) == geometry()["improvement"]
    missing = plots.geometry_figure(record_at(frame, 2), DELTA, 0.5, K)
    assert not missing.data
    assert "probe_geometry" in missing.layout.annotations[0].text


def test_overlay_figure_smooths_each_run(frame):
    fig = plots.overlay_figure({"run a": frame}, window=2)
    (line,) = fig.data
    assert list(line.x) == [100, 200, 400, 500]
    assert list(line.y) == pytest.approx([10.0, 15.0, 30.0, 45.0])


def test_histogram_figure_marks_the_reference_line():
    fig = plots.histogram_figure([0.5, 0.9, 1.0], "KL / delta", "ratio", marker=1.0)
    assert list(fig.data[0].x) == [0.5, 0.9, 1.0]
    assert [s.x0 for s in fig.layout.shapes] == [1.0]
    assert not plots.histogram_figure([], "empty", "x").data


def test_display_helpers_lift_the_legend_and_mark_single_points(frame):
    record = record_at(frame, 1)  # accepted at j = 0: one candidate
    fig = plots.show_single_points(
        plots.legend_above_subplots(plots.line_search_figure(record, DELTA))
    )
    assert fig.layout.legend.y > 1.0
    assert fig.layout.margin.t >= 90
    assert trace(fig, "expected (gᵀ step)").mode == "lines+markers"
    several = plots.show_single_points(plots.line_search_figure(record_at(frame, 2), DELTA))
    assert trace(several, "expected (gᵀ step)").mode == "lines"
