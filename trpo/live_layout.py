"""How the Train page's live charts look: plotly trace styles and layouts, as plain dicts.

Pure data (no plotly, no Streamlit): the page's browser component draws them with plotly.js;
`trpo.live_series` picks the points. Short charts (a 2x2 grid fits a 1280x720 screen), axis
titles with units, and the sidebar's notation: δ, α, j, θ, π.
"""

from __future__ import annotations

import math
from typing import Any

from trpo.live_series import CHARTS, Update

ACCEPT_COLOR = "#1f77b4"
REJECT_COLOR = "#d62728"
DELTA_COLOR = "#ff7f0e"
FADED = "rgba(120,120,120,0.35)"
X_TITLES = {"env steps": "env steps (transitions)", "iteration": "iteration (policy updates)"}
TITLES = {
    "returns": "Episode return",
    "kl": "KL of the accepted step",
    "backtrack": "Accepted backtrack index j",
    "cg": "Conjugate-gradient residuals",
}
EMPTY = {"returns": "no finished episode yet"}  # else "waiting for the first iteration"
KL_MARK_Y = 1.0  # rejected steps: markers at the top of the KL chart (its own 0..1 axis)
MARKERS_UP_TO = 150  # records: longer runs are drawn with lines only (see trace_styles)


def rejected_y(max_backtracks: int) -> dict[str, float]:
    """Where rejected steps are marked: the KL chart's top edge, the backtrack chart's
    'rejected' row above j = K."""
    return {"kl": KL_MARK_Y, "backtrack": float(max_backtracks + 1)}


def _rejected_style(**extra: Any) -> dict[str, Any]:
    return {
        "name": "rejected (θ kept)",
        "mode": "markers",
        "hovertemplate": "%{text}<extra></extra>",
        "cliponaxis": False,
        **extra,
    }


def trace_styles(chart: str, records: int = 0) -> list[dict[str, Any]]:
    """The plotly attributes of each trace of a time-series chart (CHARTS order), without data.

    A marker per point while a run is short (each iteration visible); lines only past
    MARKERS_UP_TO records, where markers would be clutter and cost the browser most of its
    redraw time."""
    mode = "lines+markers" if records <= MARKERS_UP_TO else "lines"
    if chart == "returns":
        edge = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip"}
        return [
            {**edge, "name": "max", "showlegend": False},
            {**edge, "name": "min–max", "fill": "tonexty", "fillcolor": "rgba(31,119,180,0.18)"},
            {
                "name": "mean",
                "mode": mode,
                "marker": {"size": 3},
                "line": {"color": ACCEPT_COLOR, "width": 2},
                "hovertemplate": "mean return %{y:,.1f}<extra></extra>",
            },
        ]
    if chart == "kl":
        return [
            {
                "name": "KL(π_old ‖ π_new)",
                "mode": mode,
                "marker": {"size": 4, "color": ACCEPT_COLOR},
                "line": {"color": ACCEPT_COLOR, "width": 1.5},
                "hovertemplate": "KL %{y:.4g} nats<extra></extra>",
            },
            _rejected_style(
                yaxis="y2", marker={"symbol": "triangle-down", "size": 9, "color": REJECT_COLOR}
            ),
        ]
    if chart == "backtrack":
        return [
            {
                "name": "accepted j",
                "mode": mode,
                "marker": {"size": 5, "color": ACCEPT_COLOR},
                "line": {"color": ACCEPT_COLOR, "width": 1},
                "hovertemplate": "j = %{y}<extra></extra>",
            },
            _rejected_style(marker={"symbol": "x", "size": 8, "color": REJECT_COLOR}),
        ]
    raise ValueError(f"no time-series chart {chart!r}")


def _base(chart: str, uirevision: str, empty: bool) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": TITLES[chart], "x": 0.01, "y": 0.98, "font": {"size": 13}},
        # the mode bar stands upright in the right margin: across the top it hid the legend
        "margin": {"l": 54, "r": 30, "t": 22, "b": 32},
        "modebar": {"orientation": "v"},
        "font": {"size": 11},
        "hovermode": "x unified",
        "hoverdistance": -1,  # the nearest point, however far: a zoom can leave few points
        "uirevision": uirevision,  # zoom, pan and legend clicks survive updates
        "legend": {
            "orientation": "h",
            "x": 1,
            "xanchor": "right",
            "y": 1.0,
            "yanchor": "bottom",
            "font": {"size": 10},
        },
        "xaxis": {"title": {"text": "", "standoff": 4}, "automargin": False},
        "yaxis": {"title": {"text": "", "standoff": 4}, "automargin": False},
        "annotations": [],
        "shapes": [],
    }
    if empty:
        text = EMPTY.get(chart, "waiting for the first iteration")
        layout["annotations"].append(
            {"text": text, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}
        )
    return layout


def layout(
    chart: str, axis: str, run_id: str, delta: float, max_backtracks: int, empty: bool
) -> dict[str, Any]:
    """The plotly layout of one live chart; uirevision is the run and x axis, so a zoom lasts
    until either changes."""
    result = _base(chart, f"{run_id}|{axis}", empty)
    if chart != "cg":
        result["xaxis"]["title"]["text"] = X_TITLES[axis]
    if chart == "returns":
        result["yaxis"]["title"]["text"] = "return (reward sum)"
    elif chart == "kl":
        result["yaxis"].update(title={"text": "KL [nats]", "standoff": 4}, rangemode="tozero")
        result["yaxis2"] = {
            "overlaying": "y",
            "range": [0, 1.06],
            "visible": False,
            "fixedrange": True,
        }
        result["shapes"].append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": delta,
                "y1": delta,
                "line": {"color": DELTA_COLOR, "dash": "dash", "width": 1.5},
            }
        )
        result["annotations"].append(
            {
                "text": f"δ = {delta:g}",
                "xref": "paper",
                "x": 0,
                "y": delta,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"color": DELTA_COLOR, "size": 10},
            }
        )
    elif chart == "backtrack":
        step = max(1, math.ceil((max_backtracks + 1) / 4))  # few ticks: the charts are short
        ticks = list(range(0, max_backtracks + 1, step))
        result["yaxis"].update(
            title={"text": "j (step fraction α^j)", "standoff": 4},
            range=[-0.4, max_backtracks + 1.6],
            tickvals=[*ticks, max_backtracks + 1],
            ticktext=[*map(str, ticks), "rej."],
        )
    elif chart == "cg":
        result["hovermode"] = "closest"
        result["xaxis"].update(title={"text": "CG iteration k", "standoff": 4}, dtick=2)
        result["yaxis"].update(
            title={"text": "‖r_k‖ (log)", "standoff": 4}, type="log", exponentformat="power"
        )
    return result


def cg_traces(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CG residual curves |r_k| against k: earlier iterations faded, the latest bold."""
    traces = []
    for i, curve in enumerate(curves):
        latest = i == len(curves) - 1
        traces.append(
            {
                "x": list(range(1, len(curve["y"]) + 1)),
                "y": curve["y"],
                "mode": "lines+markers" if latest else "lines",
                "line": {"color": ACCEPT_COLOR if latest else FADED, "width": 3 if latest else 1},
                "marker": {"size": 5},
                "name": f"iteration {curve['iteration']}" + (" (latest)" if latest else ""),
                "showlegend": latest,
                "hovertemplate": f"iteration {curve['iteration']}, k = %{{x}}: "
                "‖r_k‖ = %{y:.3g}<extra></extra>",
            }
        )
    return traces


def payload(
    update: Update, run_id: str, axis: str, delta: float, max_backtracks: int
) -> dict[str, Any]:
    """The JSON the browser component applies (see pages/live/charts.js).

    full:  {"kind", "epoch", "n", "charts": {chart: {"data": [trace], "layout": {...}}}}
    delta: {"kind", "epoch", "base", "n", "charts": {chart: [{"keep", "x", "y"(, "text")}]},
            "cg": {"data", "layout"} when the CG chart is replaced (it is small)}"""
    out: dict[str, Any] = {"kind": update.kind, "epoch": update.epoch, "n": update.n}
    if update.kind == "delta":
        out["base"] = update.base
        out["charts"] = update.charts
        if update.cg is not None:
            out["cg"] = _cg_chart(update.cg, axis, run_id, delta, max_backtracks)
        return out
    charts: dict[str, Any] = {}
    for chart in CHARTS:
        traces = update.charts[chart]
        empty = all(not t["x"] for t in traces)
        styles = trace_styles(chart, update.n)
        data = [{**style, **t} for style, t in zip(styles, traces, strict=True)]
        charts[chart] = {
            "data": data,
            "layout": layout(chart, axis, run_id, delta, max_backtracks, empty),
        }
    charts["cg"] = _cg_chart(update.cg or [], axis, run_id, delta, max_backtracks)
    out["charts"] = charts
    return out


def _cg_chart(
    curves: list[dict[str, Any]], axis: str, run_id: str, delta: float, max_backtracks: int
) -> dict[str, Any]:
    return {
        "data": cg_traces(curves),
        "layout": layout("cg", axis, run_id, delta, max_backtracks, not curves),
    }
