"""The Train page's four live charts: one Streamlit v2 component that keeps the plotly figures
in the page and fetches only what is new from the dashboard's live-charts route.

Why: a Streamlit rerun per update (a fragment refreshing every 0.5 s) re-rendered the page in
every watching browser and, with three tabs, slowed training to 59% of its speed. Now Streamlit
only tells the component what to show: the run, the x axis, whether the run trains and where
to ask (a few bytes, the very same string until one of them changes, so Streamlit calls the
component's JavaScript only then). The JavaScript (charts.js) asks GET /live/{run_id}
(app.py, trpo.live_feed) for the charts: a full first, then, every ~0.5 s while the run
trains, a delta with the new points only, or "same" when nothing is new. Zoom, pan and legend
clicks survive updates (plotly's uirevision, and ranges set by hand kept).

plotly.js comes from the plotly Python package (no CDN), sent with the component's data when a
browser says it lacks it (once per browser tab). Nothing here runs at import time.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import streamlit as st

from pages.live import ROUTE
from trpo import live_series

COMPONENT = "trpo_live_charts"
KEY = "live_charts"  # the component's key: its element carries the class st-key-live_charts
NEEDS_PLOTLY = "_live_charts_need_plotly"  # session_state: this browser asked for plotly.js
HERE = Path(__file__).resolve().parent
NAMES = (*live_series.CHARTS, "cg")


@functools.cache
def _component() -> Callable[..., Any]:
    """The registered component (once per process; Streamlit re-registers it on a runtime that
    lacks it, such as AppTest's)."""
    cells = "".join(f'<div class="trpo-live-chart" data-chart="{n}"></div>' for n in NAMES)
    css = (HERE / "charts.css").read_text(encoding="utf-8")
    return st.components.v2.component(
        COMPONENT,
        html=f'<div class="trpo-live-charts">{cells}</div>',
        css=re.sub(r"/\*.*?\*/\n?", "", css, flags=re.S),  # comments: see _without_comments
        js=_without_comments((HERE / "charts.js").read_text(encoding="utf-8")),
        isolate_styles=False,  # plotly.js styles its hover boxes and mode bar in the page
    )


def _without_comments(js: str) -> str:
    """JavaScript without its whole-line comments: Streamlit sends a component's code with
    every update of it, and the comments are for people reading the file."""
    return "\n".join(line for line in js.splitlines() if not line.lstrip().startswith("//"))


@functools.cache
def _plotly_js_json() -> str:
    """plotly.js from the plotly package, as a JSON string (about 5 MB: built once)."""
    from plotly.offline import get_plotlyjs

    return json.dumps(get_plotlyjs())


def _on_sync() -> None:
    """The browser has no plotly.js: the rerun this trigger starts sends it."""
    request = st.session_state.get(KEY)
    sync = request.get("sync") if isinstance(request, dict) else None
    if isinstance(sync, dict) and not sync.get("plotly", True):
        st.session_state[NEEDS_PLOTLY] = True


def url(run_id: str) -> str:
    """Where the browser asks for the run's charts (app.py's route)."""
    return f"{ROUTE}/{quote(run_id, safe='')}"


def spec(run_id: str, axis: str, running: bool) -> str:
    """The component's data: what to show and where to ask for it (plotly.js first, once, if
    this session's browser asked for it)."""
    data = json.dumps(
        {"run": run_id, "axis": axis, "running": running, "url": url(run_id)},
        separators=(",", ":"),
    )
    if not st.session_state.pop(NEEDS_PLOTLY, False):
        return data
    return '{"plotly_js":' + _plotly_js_json() + "," + data[1:]


def live_charts(run_id: str, axis: str, running: bool) -> None:
    """Draw the four live charts of a run (returns, KL, j, CG residuals), kept up to date by
    the browser while `running`."""
    if axis not in live_series.X_AXES:
        raise ValueError(f"unknown x axis {axis!r}; expected one of {sorted(live_series.X_AXES)}")
    _component()(key=KEY, data=spec(run_id, axis, running), on_sync_change=_on_sync)
