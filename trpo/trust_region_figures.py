"""The Trust region page's figures, built in one place for the page and the HTML report: one
iteration's line search, CG residuals and geometry along the step, and the histograms of the
accepted steps over a run. Plotly only (no Streamlit)."""

from __future__ import annotations

from typing import Any

from trpo import plots
from trpo.config import TRPOConfig
from trpo.record import IterationRecord


def iteration_figures(record: IterationRecord, config: TRPOConfig) -> tuple[Any, Any, Any]:
    """(line search, CG residuals, geometry along the step) of one iteration; the geometry
    figure says so when the iteration has no probe."""
    line_search = plots.line_search_figure(record, config.delta)
    geometry = plots.geometry_figure(record, config.delta, config.alpha, config.max_backtracks)
    return (
        plots.show_single_points(plots.legend_above_subplots(line_search)),
        plots.cg_iteration_figure(record, config.cg_residual_tol),
        plots.legend_above_subplots(geometry),
    )


def summary_histograms(summary: dict[str, Any]) -> tuple[Any, Any]:
    """(KL / delta, actual / expected improvement) of the accepted steps, from
    `trpo.analysis.trust_region_summary`, each with a dashed line at 1."""
    kl_hist = plots.histogram_figure(
        summary["kl_over_delta"],
        "KL / δ of the accepted steps",
        "KL(π_old ‖ π_new) / δ",
        marker=1.0,
    )
    ratio_hist = plots.histogram_figure(
        summary["improvement_ratio"],
        "Actual / expected improvement of the accepted steps",
        "actual / expected (1 = the linear model was exact)",
        marker=1.0,
    )
    return kl_hist, ratio_hist
