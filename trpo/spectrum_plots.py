"""The Fisher matrix seen through CG, over a run's iterations: the extreme Ritz values of
H + damping I, their ratio and cos(g, x) (record fields fisher_eig_max, fisher_eig_min,
fisher_condition, cos_g_x; `trpo.cg_spectrum`). Built from a metrics frame; no Streamlit here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from trpo.plots import (
    ACCEPT_COLOR,
    DELTA_COLOR,
    MODEL_COLOR,
    apply_layout,
    downsample,
    empty_figure,
    legend_above_subplots,
)

SPECTRUM_FIELDS = ("fisher_eig_max", "fisher_eig_min", "fisher_condition", "cos_g_x")
TITLE = "The Fisher matrix seen through CG"
EIG_MIN_COLOR = "#2ca02c"


def spectrum_figure(frame: pd.DataFrame, damping: float, iteration: int | None = None) -> go.Figure:
    """Three panels over the iterations of `frame` (a metrics table): the largest and smallest
    Ritz value of H + damping I on a log axis, with the damping c as a dashed line (the floor
    of every eigenvalue of H + damping I); their ratio on a log axis; cos(g, x). A dotted vertical
    line marks `iteration` when given. An empty figure says so when no row has the fields (runs
    recorded before they existed)."""
    from plotly.subplots import make_subplots

    columns = [c for c in SPECTRUM_FIELDS if c in frame]
    rows = frame[frame[columns].notna().any(axis=1)] if columns else frame.iloc[0:0]
    if rows.empty:
        return empty_figure(TITLE, "no spectrum recorded (runs from before it was added)")
    rows = downsample(rows.reindex(columns=["iteration", *SPECTRUM_FIELDS]))
    x = rows["iteration"].tolist()
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("Ritz values of H + cI", "condition θ_max / θ_min", "cos(g, x)"),
        horizontal_spacing=0.08,
    )
    panels = (
        (1, "fisher_eig_max", "largest θ_max (≤ λ_max)", ACCEPT_COLOR),
        (1, "fisher_eig_min", "smallest θ_min (≥ λ_min)", EIG_MIN_COLOR),
        (2, "fisher_condition", "θ_max / θ_min (≤ condition number)", MODEL_COLOR),
        (3, "cos_g_x", "cos(g, x)", DELTA_COLOR),
    )
    for col, field, name, color in panels:
        fig.add_trace(
            go.Scatter(
                x=x, y=rows[field].tolist(), mode="lines+markers", name=name,
                marker=dict(size=4), line=dict(color=color, width=2),
            ),
            row=1, col=col,
        )  # fmt: skip
    if damping > 0:  # a trace, not a shape: named in the legend and inside the axis range
        fig.add_trace(
            go.Scatter(
                x=[x[0], x[-1]], y=[damping, damping], mode="lines", hoverinfo="skip",
                name=f"damping c = {damping:g} (θ_min ≥ c)",
                line=dict(color=MODEL_COLOR, dash="dash", width=1.5),
            ),
            row=1, col=1,
        )  # fmt: skip
    if iteration is not None:
        for col in (1, 2, 3):
            fig.add_vline(x=iteration, line=dict(color="rgba(0,0,0,0.35)", dash="dot"), col=col)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    lowest_cos = rows["cos_g_x"].min(skipna=True)  # positive in exact arithmetic: g^T x = x^T A x
    low = float(lowest_cos) if pd.notna(lowest_cos) and lowest_cos < 0 else 0.0
    fig.update_yaxes(range=[low - 0.05 if low else 0.0, 1.05], row=1, col=3)
    apply_layout(fig, TITLE, "", "", height=380)
    fig.update_xaxes(title_text="iteration")  # after apply_layout, which clears the first
    return legend_above_subplots(fig)
