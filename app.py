"""TRPO Workbench dashboard: `streamlit run app.py`.

`streamlit run` finds `app` below (a `st.App`, Streamlit's ASGI app) and serves the dashboard
script pages/navigation.py with it, with .streamlit/config.toml as usual. One route of our own,
GET /live/{run_id}?axis=...&have=..., answers the Train page's live charts (pages/live/charts.js
polls it while a run trains): the logic is trpo.live_feed's, only the HTTP wiring is here.
"""

from __future__ import annotations

import functools

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pages.live import ROUTE


@functools.cache
def _feed(root: str):  # -> trpo.live_feed.LiveFeed
    # imported on the first request, not when the server starts (trpo.store loads torch);
    # by then the dashboard's pages have loaded it anyway
    from trpo.live_feed import LiveFeed

    return LiveFeed(root)


def _answer(run_id: str, axis: str | None, have: str | None) -> tuple[int, bytes]:
    from pages.common import runs_dir

    answer = _feed(str(runs_dir())).answer(run_id, axis, have)
    return answer.status, answer.json()


async def live(request: Request) -> Response:
    """The live charts' update for one run (file reads and numpy: off the event loop)."""
    query = request.query_params
    status, body = await run_in_threadpool(
        _answer, request.path_params["run_id"], query.get("axis"), query.get("have")
    )
    return Response(
        body, status, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


ROUTES = [Route(f"{ROUTE}/{{run_id}}", live, methods=["GET"])]

app = st.App("pages/navigation.py", routes=ROUTES)
