"""Plotly figures of a sweep's results (trpo.sweep's trial and configuration tables)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from trpo.compare import SYMBOLS
from trpo.plots import apply_layout, band_traces, empty_figure


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
