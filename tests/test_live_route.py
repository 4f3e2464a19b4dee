"""The dashboard's live-charts route (app.py: GET /live/{run_id}) over ASGI, as the server runs
it: JSON answers, not cached by the browser, 404 and 400 as trpo.live_feed decides, and no
path outside the runs directory. (The browser's use of it: tests/test_browser_live.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
from streamlit import config as st_config

from tests.live_helpers import synthetic_record, synthetic_run


@pytest.fixture
def routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Starlette app with app.py's routes only (Streamlit's runtime is not started), serving
    the runs directory tmp_path/runs."""
    from starlette.applications import Starlette

    # st.App pins the process's script-level config directory: put it back after the test
    monkeypatch.setattr(st_config, "_main_script_path", st_config._main_script_path)
    monkeypatch.setenv("TRPO_RUNS_DIR", str(tmp_path / "runs"))
    import app as dashboard

    assert isinstance(dashboard, ModuleType) and dashboard.app is not None
    yield Starlette(routes=dashboard.ROUTES)


def get(asgi: Any, path: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
    """One GET through the ASGI app: (status, headers, body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": quote(path).encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8501),
    }
    asyncio.run(asgi(scope, receive, send))
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def test_the_route_answers_full_same_then_delta(routes: Any, tmp_path: Path) -> None:
    run = synthetic_run(tmp_path / "runs", 20, "route")
    status, headers, body = get(routes, f"/live/{run.id}", "axis=env+steps")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "no-store"
    full = json.loads(body)
    assert full["kind"] == "full" and full["n"] == 20 and full["running"] is True
    have = "have=" + quote(full["have"])
    status, _, body = get(routes, f"/live/{run.id}", f"axis=env%20steps&{have}")
    assert status == 200 and json.loads(body)["kind"] == "same"
    run.append(synthetic_record(21))
    status, _, body = get(routes, f"/live/{run.id}", have)  # axis: env steps by default
    delta = json.loads(body)
    assert status == 200 and delta["kind"] == "delta" and (delta["base"], delta["n"]) == (20, 21)
    run.set_status("finished")


def test_the_route_refuses_what_is_not_a_run_or_not_a_parameter(
    routes: Any, tmp_path: Path
) -> None:
    run = synthetic_run(tmp_path / "runs", 3, "route")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "config.json").write_text(run.config().to_json())  # looks like a run, outside
    for path in ["/live/nope", "/live/..", "/live/../secret", "/live/..%2Fsecret", "/live/"]:
        status, _, body = get(routes, path)
        assert status == 404, path
        assert b"charts" not in body
    for query in ["axis=wall+time", "have=not-a-token", f"have={'1.' * 40}"]:
        status, _, body = get(routes, f"/live/{run.id}", query)
        assert status == 400, query
        assert "error" in json.loads(body)
    run.set_status("finished")
