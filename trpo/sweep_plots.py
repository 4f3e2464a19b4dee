"""Plotly figures of a sweep's results (trpo.sweep's trial and configuration tables), its
progress (the best final return so far) and Optuna's own figures of its study (imported only
when they are drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from trpo.compare import SYMBOLS
from trpo.plots import apply_layout, band_traces, empty_figure
from trpo.sweep.results import best_so_far
from trpo.sweep.search import read_study


def sweep_knob_figure(trials: pd.DataFrame, knob: str) -> go.Figure:
    """Final return against one swept knob: every seed as a point, the mean across seeds and
    configurations sharing that value as a line with a min-max band. Pruned trials are left
    out: their return is that of a run cut short."""
    title = f"Final return vs {knob}"
    if len(trials):
        kept = trials["final_return"].notna()
        if "status" in trials:
            kept &= trials["status"] != "pruned"
        data = trials[kept]
    else:
        data = trials
    if data.empty or knob not in data:
        return empty_figure(title, "no finished trial yet")
    labels = data[knob].map(str)
    order = list(dict.fromkeys(str(v) for v in sorted(data[knob].unique(), key=_sort_key)))
    grouped = data.assign(_label=labels).groupby("_label")["final_return"]
    stats = grouped.agg(["mean", "min", "max"]).reindex(order)
    fig = go.Figure(
        [
            *band_traces(
                order, stats["min"].tolist(), stats["max"].tolist(), stats["mean"].tolist()
            ),
            go.Scatter(
                x=labels.tolist(),
                y=data["final_return"].tolist(),
                mode="markers",
                marker=dict(color="rgba(0,0,0,0.45)", size=7),
                name="one seed",
                text=[f"seed {s}" for s in data["seed"]],
                hoverinfo="text+y",
            ),
        ]
    )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order)
    fig.update_layout(hovermode="closest")
    return apply_layout(fig, title, knob, "final return", height=330)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _knob_label(name: str) -> str:
    """A knob's short name with the paper's symbol where it has one (δ, α, K, γ, λ)."""
    return SYMBOLS.get(name, name)


def parallel_coordinates_figure(results: pd.DataFrame, knobs: Sequence[str]) -> go.Figure:
    """Each configuration as a line across the swept knobs, ending at its mean final return."""
    title = "Configurations against final return"
    data = results[results["final_return_mean"].notna()] if len(results) else results
    if data.empty:
        return empty_figure(title, "no finished configuration yet")
    dimensions = []
    for knob in knobs:
        values = data[knob]
        if pd.api.types.is_numeric_dtype(values):
            dimensions.append(dict(label=_knob_label(knob), values=values.astype(float).tolist()))
        else:
            names = sorted(values.map(str).unique())
            dimensions.append(
                dict(
                    label=_knob_label(knob),
                    values=[names.index(str(v)) for v in values],
                    tickvals=list(range(len(names))),
                    ticktext=names,
                )
            )
    returns = data["final_return_mean"].astype(float).tolist()
    dimensions.append(dict(label="final return", values=returns))
    fig = go.Figure(
        go.Parcoords(
            line=dict(color=returns, colorscale="Viridis", showscale=True),
            dimensions=dimensions,
        )
    )
    # the axis titles sit above the axes: leave them room below the chart's own title
    fig.update_layout(
        title=dict(text=title, x=0.01, y=0.98, yanchor="top"),
        height=400,
        margin=dict(l=60, r=40, t=95),
    )
    return fig


def best_so_far_figure(trials: pd.DataFrame) -> go.Figure:
    """The search's progress: every finished trial's final return against its trial number,
    and the best final return so far as a step line (trpo.sweep.results.best_so_far)."""
    title = "Best final return so far"
    series = best_so_far(trials)
    if series.empty:
        return empty_figure(title, "no finished trial yet")
    numbers = series["number"].tolist()
    fig = go.Figure(
        [
            go.Scatter(
                x=numbers,
                y=series["final_return"].tolist(),
                mode="markers",
                marker=dict(color="rgba(0,0,0,0.45)", size=7),
                name="a trial's final return",
                text=series["trial"].tolist(),
                hoverinfo="text+y",
            ),
            go.Scatter(
                x=numbers,
                y=series["best"].tolist(),
                mode="lines+markers",
                line=dict(shape="hv", width=2.5),
                name="best so far",
            ),
        ]
    )
    return apply_layout(fig, title, "trial number", "final return", height=330)


# --- Optuna's own figures of a sweep's study -------------------------------------------------

STUDY_FIGURES = ("importances", "parallel", "slice")


def varying_params(study: Any) -> tuple[int, list[str]]:
    """(complete trials, the parameters that take two values or more among them)."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values: dict[str, set[str]] = {}
    for trial in complete:
        for name, value in trial.params.items():
            values.setdefault(name, set()).add(repr(value))
    return len(complete), [name for name, seen in values.items() if len(seen) > 1]


def study_figures(study: Any) -> dict[str, go.Figure | str]:
    """Optuna's parameter importances (PED-ANOVA, Optuna's default evaluator, deterministic and
    without scikit-learn, which fANOVA needs), parallel coordinates and slice plots
    of a study (keys STUDY_FIGURES), or for each, the reason it cannot be drawn yet: the
    importances need two complete trials and a parameter that varies among them, the others
    one complete trial. Parallel coordinates and slices show the varying parameters (all of
    them if none varies)."""
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import (
        plot_parallel_coordinate,
        plot_param_importances,
        plot_slice,
    )

    complete, varying = varying_params(study)
    out: dict[str, go.Figure | str] = {}
    if complete < 2:
        out["importances"] = (
            f"Parameter importances need at least 2 complete trials; the study has {complete}."
        )
    elif not varying:
        out["importances"] = (
            "Parameter importances need a parameter that varies: every complete trial has the "
            "same configuration."
        )
    else:
        fig = plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), params=varying)
        out["importances"] = fig.update_layout(title="Parameter importances (PED-ANOVA)")
    if complete < 1:
        message = "No complete trial yet."
        out["parallel"] = out["slice"] = message
    else:
        params = varying or None
        out["parallel"] = plot_parallel_coordinate(study, params=params).update_layout(
            title="Parallel coordinates: parameters against final return"
        )
        out["slice"] = plot_slice(study, params=params).update_layout(
            title="Final return against each parameter"
        )
    return out


def sweep_study_figures(url: str, sweep_id: str) -> dict[str, go.Figure | str]:
    """study_figures of a sweep's study, read from its storage (ConfigError, SweepError: see
    trpo.sweep.search.read_study)."""
    with read_study(url, sweep_id) as study:
        return study_figures(study)
