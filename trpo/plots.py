"""Plotly figures built from metrics DataFrames (`trpo.load_metrics`) and, for one iteration,
from its IterationRecord (`trpo.metrics_log.record_at`); no Streamlit here.

Every function takes data and returns a figure, so figures are testable without a browser and
shared by the pages. Long histories are downsampled to at most MAX_POINTS points per trace. (The
Train page's live charts are drawn in the browser from trpo.live_series and trpo.live_layout.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from trpo.compare import X_AXES, metric_label
from trpo.formatting import finite
from trpo.record import IterationRecord

MAX_POINTS = 600
ACCEPT_COLOR = "#1f77b4"
REJECT_COLOR = "#d62728"
DELTA_COLOR = "#ff7f0e"
MODEL_COLOR = "#7f7f7f"


def apply_layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.01, font=dict(size=15)),
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin=dict(l=55, r=15, t=45, b=45),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        hovermode="x unified",
        uirevision=title,  # keep zoom across live refreshes
    )
    return fig


def downsample(frame: pd.DataFrame, max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Every k-th row (always keeping the last) so that at most max_points remain."""
    if len(frame) <= max_points:
        return frame
    index = np.unique(np.linspace(0, len(frame) - 1, max_points).round().astype(int))
    return frame.iloc[index]


def empty_figure(title: str, message: str = "waiting for the first iteration") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return apply_layout(fig, title, "", "")


def band_traces(
    x: list[Any],
    low: list[Any],
    high: list[Any],
    mean: list[Any],
    name: str = "mean",
    color: str = ACCEPT_COLOR,
    fill: str = "rgba(31,119,180,0.18)",
) -> list[go.Scatter]:
    """A mean line over a min-max band: [upper edge, lower edge filled up to it, mean]."""
    return [
        go.Scatter(
            x=x,
            y=high,
            mode="lines",
            line=dict(width=0),
            showlegend=False,
            hoverinfo="skip",
            name="max",
        ),
        go.Scatter(
            x=x,
            y=low,
            mode="lines",
            line=dict(width=0),
            fill="tonexty",
            fillcolor=fill,
            name="min-max",
            hoverinfo="skip",
        ),
        go.Scatter(
            x=x,
            y=mean,
            mode="lines+markers",
            marker=dict(size=4),
            line=dict(color=color, width=2),
            name=name,
        ),
    ]


def line_search_figure(record: IterationRecord, delta: float) -> go.Figure:
    """One iteration's candidates j: KL against delta, and actual vs expected improvement."""
    from plotly.subplots import make_subplots

    candidates = record.line_search
    title = f"Line search of iteration {record.iteration}"
    if not candidates:
        return empty_figure(title, "no line search (step rejected before it)")
    j = [c.j for c in candidates]
    colors = [ACCEPT_COLOR if k == record.backtrack_index else "rgba(150,150,150,0.7)" for k in j]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("KL vs delta", "improvement"))
    fig.add_trace(
        go.Bar(x=j, y=[c.kl for c in candidates], marker_color=colors, name="KL"), row=1, col=1
    )
    fig.add_hline(y=delta, line=dict(color=DELTA_COLOR, dash="dash"), row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=j,
            y=[c.actual_improvement for c in candidates],
            mode="lines+markers",
            marker=dict(color=colors, size=9),
            name="actual",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=j,
            y=[c.expected_improvement for c in candidates],
            mode="lines",
            line=dict(color=MODEL_COLOR, dash="dot"),
            name="expected (gᵀ step)",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="j", dtick=1)
    return apply_layout(fig, title, "", "", height=340)


def geometry_figure(
    record: IterationRecord, delta: float, alpha: float, max_backtracks: int
) -> go.Figure:
    """True KL and surrogate along theta + f s x against TRPO's quadratic and linear models."""
    from plotly.subplots import make_subplots

    probe = record.geometry
    title = f"Geometry along the step, iteration {record.iteration}"
    if probe is None:
        return empty_figure(title, "no probe recorded (enable probe_geometry)")
    f = probe.fractions
    fig = make_subplots(rows=1, cols=2, subplot_titles=("mean KL", "surrogate improvement"))
    # per subplot: the true value along the step and TRPO's model of it (s = step scale)
    panels = (
        (probe.kl, "true KL", ACCEPT_COLOR, probe.kl_model, "½ s² xᵀHx", "dot"),
        (
            probe.improvement,
            "true improvement",
            "#2ca02c",
            probe.improvement_model,
            "s gᵀx",
            "dash",
        ),
    )
    for col, (true, true_name, color, model, model_name, dash) in enumerate(panels, 1):
        fig.add_trace(
            go.Scatter(
                x=f, y=true, mode="lines+markers", name=true_name, line=dict(color=color),
            ),
            row=1, col=col,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=f, y=model, mode="lines", name=model_name,
                line=dict(color=MODEL_COLOR, dash=dash),
            ),
            row=1, col=col,
        )  # fmt: skip
    fig.add_hline(y=delta, line=dict(color=DELTA_COLOR, dash="dash"), row=1, col=1)
    for j in range(max_backtracks + 1):
        fraction = alpha**j
        if fraction < 0.02:
            break
        chosen = record.backtrack_index == j
        for col in (1, 2):
            fig.add_vline(
                x=fraction,
                row=1,
                col=col,
                line=dict(
                    color=ACCEPT_COLOR if chosen else "rgba(0,0,0,0.15)", width=2.5 if chosen else 1
                ),
            )
    fig.update_xaxes(title_text="fraction of the full step (α^j marked)")
    fig.update_layout(hovermode="closest")
    return apply_layout(fig, title, "", "", height=360)


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average over `window` points (NaNs ignored)."""
    series = pd.Series(values, dtype=float)
    if window <= 1:
        return series.to_numpy()
    return series.rolling(window, min_periods=1).mean().to_numpy()


def _sentence(text: str) -> str:
    """First letter upper case, the rest as written (symbols such as KL and π kept)."""
    return text[:1].upper() + text[1:]


def _axes(fig: go.Figure, title: str, x: str, y: str, log_y: bool) -> go.Figure:
    if log_y:
        fig.update_yaxes(type="log", exponentformat="power")
    return apply_layout(fig, title, X_AXES.get(x, x), metric_label(y), height=420)


def overlay_figure(
    curves: dict[str, pd.DataFrame],
    window: int = 1,
    y: str = "return_mean",
    x: str = "env_steps",
    log_y: bool = False,
    colors: dict[str, str] | None = None,
) -> go.Figure:
    """Several runs' curves (label -> metrics frame) of metric y over x on one plot, smoothed
    (trailing mean over window points); colors: label -> colour (plotly's sequence if None)."""
    title = _sentence(metric_label(y))
    fig = go.Figure()
    for label, frame in curves.items():
        data = frame[frame[y].notna()] if y in frame else frame.iloc[0:0]
        if data.empty:
            continue
        values = smooth(data[y].tolist(), window)
        keep = downsample(data.assign(_smoothed=values))
        color = (colors or {}).get(label)
        fig.add_trace(
            go.Scatter(
                x=keep[x].tolist(),
                y=keep["_smoothed"].tolist(),
                mode="lines",
                name=label,
                line=dict(color=color) if color else None,
            )
        )
    if not fig.data:
        return empty_figure(title, "nothing to plot yet")
    return _axes(fig, title, x, y, log_y)


def seed_band_figure(
    groups: dict[str, list[pd.DataFrame]],
    window: int = 1,
    y: str = "return_mean",
    points: int = 200,
    x: str = "env_steps",
    log_y: bool = False,
) -> go.Figure:
    """Runs grouped by everything but the seed: mean across seeds with a min-max band,
    on a common grid of x (each run interpolated)."""
    title = f"{_sentence(metric_label(y))}, mean over seeds with min-max band"
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    for i, (label, frames) in enumerate(groups.items()):
        usable = [f[f[y].notna()] for f in frames if y in f]
        usable = [f for f in usable if len(f) >= 1]
        if not usable:
            continue
        end = min(float(f[x].max()) for f in usable)
        start = max(float(f[x].min()) for f in usable)
        if end < start:
            continue
        grid = np.linspace(start, end, points) if end > start else np.array([start])
        curves = np.stack(
            [np.interp(grid, f[x].to_numpy(float), smooth(f[y].tolist(), window)) for f in usable]
        )
        color = palette[i % len(palette)]
        rgba = "rgba({},{},{},0.18)".format(*(int(color[k : k + 2], 16) for k in (1, 3, 5)))
        fig.add_trace(
            go.Scatter(
                x=grid.tolist(),
                y=curves.max(0).tolist(),
                mode="lines",
                line=dict(width=0),
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=grid.tolist(),
                y=curves.min(0).tolist(),
                mode="lines",
                line=dict(width=0),
                fill="tonexty",
                fillcolor=rgba,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=grid.tolist(),
                y=curves.mean(0).tolist(),
                mode="lines",
                line=dict(color=color, width=2),
                name=f"{label} ({len(usable)} seeds)",
            )
        )
    if not fig.data:
        return empty_figure(title, "nothing to plot yet")
    return _axes(fig, title, x, y, log_y)


def histogram_figure(
    values: Sequence[float], title: str, x: str, marker: float | None = None
) -> go.Figure:
    if not values:
        return empty_figure(title, "no accepted steps yet")
    fig = go.Figure(go.Histogram(x=list(values), nbinsx=30, marker_color=ACCEPT_COLOR))
    if marker is not None:
        fig.add_vline(x=marker, line=dict(color=DELTA_COLOR, dash="dash"))
    fig.update_layout(hovermode="closest")
    return apply_layout(fig, title, x, "iterations", height=300)


#: The CG tolerance is drawn when within this factor below the smallest residual shown.
TOLERANCE_SPAN = 1e3


def cg_iteration_figure(record: IterationRecord, residual_tol: float | None = None) -> go.Figure:
    """One iteration's CG recurrence residuals |r_k| against k, log scale, and the true
    residual |g - (H + damping I) x| of the x used, as one marker at the end. The tolerance is
    a dashed line, or named in a corner when it lies more than TOLERANCE_SPAN below every point
    (a line there would squeeze the curve flat)."""
    title = f"CG residuals of iteration {record.iteration}"
    residuals = record.cg_residuals
    if not residuals:
        return empty_figure(title, "no CG iteration recorded (|g| already below the tolerance)")
    values = [float("nan") if r is None else float(r) for r in residuals]
    fig = go.Figure(
        go.Scatter(
            x=list(range(1, len(values) + 1)),
            y=values,
            mode="lines+markers",
            line=dict(color=ACCEPT_COLOR, width=2),
            marker=dict(size=6),
            name="recurrence residual |r_k|",
        )
    )
    true_residual = record.cg_true_residual
    if finite(true_residual):
        fig.add_trace(
            go.Scatter(
                x=[len(values)],
                y=[float(true_residual)],
                mode="markers",
                marker=dict(size=11, symbol="diamond-open", color=REJECT_COLOR),
                name="true residual |g − (H + cI) x|",
            )
        )
    drawn = [v for v in [*values, true_residual] if isinstance(v, (int, float)) and v > 0]
    if residual_tol and drawn and residual_tol >= min(drawn) / TOLERANCE_SPAN:
        fig.add_hline(y=residual_tol, line=dict(color=DELTA_COLOR, dash="dash"))
        fig.add_annotation(  # on a log axis an annotation's y is log10 of the value
            x=0, xref="paper", y=math.log10(residual_tol), yref="y",
            text=f"tolerance {residual_tol:g}", showarrow=False, xanchor="left",
            yanchor="bottom", font=dict(color=DELTA_COLOR),
        )  # fmt: skip
    elif residual_tol:  # far below the curve: a line there would squeeze the curve flat
        fig.add_annotation(
            x=1, xref="paper", y=0, yref="paper", showarrow=False, xanchor="right",
            yanchor="bottom", font=dict(color=DELTA_COLOR),
            text=f"tolerance {residual_tol:g}: far below this range (not reached)",
        )  # fmt: skip
    fig.update_yaxes(type="log", exponentformat="power")  # 10^k, as on Train
    fig.update_xaxes(dtick=1 if len(values) <= 15 else 5, tickangle=0)
    apply_layout(fig, title, "CG iteration k", "residual norm", height=360)
    fig.update_layout(  # legend under the axis: above it, it ran over the title
        hovermode="closest",
        showlegend=True,
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
        margin=dict(l=55, r=15, t=45, b=80),
    )
    return fig


def legend_above_subplots(fig: go.Figure, top: int = 95) -> go.Figure:
    """Move the legend above the subplot titles (which sit where the default legend goes), with
    room for it in the top margin. Returns the same figure."""
    fig.update_layout(
        margin=dict(t=top),
        legend=dict(orientation="h", yanchor="bottom", y=1.1, xanchor="right", x=1.0),
    )
    return fig


def show_single_points(fig: go.Figure) -> go.Figure:
    """Give line-only traces with a single point a marker: a one-point line draws nothing (e.g.
    the expected improvement when the full step was accepted at j = 0)."""
    for trace in fig.data:
        mode = getattr(trace, "mode", None)
        if mode == "lines" and trace.x is not None and len(trace.x) == 1:
            trace.mode = "lines+markers"
    return fig
