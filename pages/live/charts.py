"""The Train page's four live charts: one Streamlit v2 component that keeps the plotly figures
in the page and receives only what is new.

Why: redrawing four whole `st.plotly_chart` figures every second re-sent and redrew
everything, reset zooms and hid the hover box. Here each refresh of the live panel asks
`trpo.live_series.plan` what this session's browser lacks:

- nothing (no new record): the component gets a few bytes saying what the browser already
  holds ({"kind": "same", "epoch", "n"}), the very same string at every such refresh, and
  Streamlit calls its JavaScript only when its data string changed: no point is sent again
  and nothing is drawn (the check costs a comparison of two numbers);
- new records: a delta with the new points only, appended in the page (charts.js);
- another run or x axis, a rewritten log, a bucket size that doubled, or a browser that lost
  track (it fires the component's "sync" trigger): everything, drawn so that a zoom, a pan and
  legend clicks survive (plotly's uirevision, and ranges set by hand kept).

plotly.js comes from the plotly Python package (no CDN), sent when a browser says it lacks it
(once per browser tab: the first data a tab gets makes it ask). Nothing here runs at import
time.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from trpo import live_layout, live_series

COMPONENT = "trpo_live_charts"
KEY = "live_charts"  # the component's key: its element carries the class st-key-live_charts
STATE = "_live_charts_book"  # session_state: what this session's browser was sent
HERE = Path(__file__).resolve().parent
NAMES = (*live_series.CHARTS, "cg")


@dataclass
class Book:
    """What this session's browser was sent (its Sent) and the metrics version that was
    planned from; what the browser asked for."""

    sent: live_series.Sent | None = None
    version: int | None = None
    force_full: bool = False
    needs_plotly: bool = False


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


def _book() -> Book:
    book = st.session_state.get(STATE)
    if not isinstance(book, Book):
        book = st.session_state[STATE] = Book()
    return book


def _on_sync() -> None:
    """The browser cannot apply what it got (remounted, a message lost, no plotly.js yet):
    the rerun this trigger starts sends everything, with plotly.js if it lacks it."""
    book = _book()
    book.force_full = True
    request = st.session_state.get(KEY)
    sync = request.get("sync") if isinstance(request, dict) else None
    book.needs_plotly = isinstance(sync, dict) and not sync.get("plotly", True)


def data_for(
    book: Book,
    run_id: str,
    frame: pd.DataFrame,
    version: int,
    axis: str,
    delta: float,
    max_backtracks: int,
) -> str:
    """The component's data for this refresh, updating the book: the planned full or delta
    (plotly.js first if the browser asked), or when nothing is new a few bytes that only say
    what the browser holds ("same"): no point is sent twice."""
    unchanged = (
        book.sent is not None
        and not book.force_full
        and book.version == version
        and (book.sent.run_id, book.sent.axis) == (run_id, axis)
    )
    update = None
    if not unchanged:
        update, book.sent = live_series.plan(
            frame,
            book.sent,
            run_id,
            axis,
            live_layout.rejected_y(max_backtracks),
            force_full=book.force_full,
        )
        book.version, book.force_full = version, False
    if update is None:
        assert book.sent is not None  # planned at least once: the first plan is a full
        same = {"kind": "same", "epoch": book.sent.epoch, "n": book.sent.n}
        return json.dumps(same, separators=(",", ":"))
    payload = live_layout.payload(update, run_id, axis, delta, max_backtracks)
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    if not book.needs_plotly:
        return data
    book.needs_plotly = False
    return '{"plotly_js":' + _plotly_js_json() + "," + data[1:]


def live_charts(
    run_id: str, frame: pd.DataFrame, version: int, axis: str, delta: float, max_backtracks: int
) -> None:
    """Draw (or update) the four live charts of a run: returns, KL, j, CG residuals."""
    data = data_for(_book(), run_id, frame, version, axis, delta, max_backtracks)
    _component()(key=KEY, data=data, on_sync_change=_on_sync)
