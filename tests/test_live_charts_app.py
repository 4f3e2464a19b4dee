"""The server side of the Train page's live charts: what Streamlit hands the component.

Only what to show (the run, the x axis, whether it trains, where to ask): the points come from
the live-charts route (tests/test_live_feed.py, tests/test_live_route.py), so a new record
changes nothing Streamlit sends, and plotly.js goes once, when a browser asked for it. Through
AppTest, which runs no JavaScript: the component's data is read from the element.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from streamlit.testing.v1 import AppTest

from pages.live import ROUTE, charts
from tests.live_helpers import synthetic_record, synthetic_run
from trpo.live_feed import LiveFeed
from trpo.metrics_tail import TailCache

APP = str(Path(__file__).resolve().parents[1] / "pages" / "navigation.py")


def component_data(at: AppTest) -> dict:
    [component] = at.get("bidi_component")
    return json.loads(json.loads(component.proto.json))


def test_the_train_page_names_the_run_and_sends_no_point(app_runs_dir: Path) -> None:
    run = synthetic_run(app_runs_dir, 40, "app test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    first = component_data(at)
    url = f"{ROUTE}/{quote(run.id, safe='')}"
    assert first == {"run": run.id, "axis": "env steps", "running": True, "url": url}
    run.append(synthetic_record(41))
    for _ in range(2):  # new records, reruns: the very same data (Streamlit calls no JS)
        at.run()
        assert component_data(at) == first
    # the route answers for what the data names, with every record
    answer = LiveFeed(app_runs_dir, TailCache()).answer(first["run"], first["axis"])
    assert answer.status == 200 and answer.body["n"] == 41
    at.segmented_control(key="live_x_axis").set_value("iteration").run()
    assert component_data(at) == {**first, "axis": "iteration"}
    run.set_status("finished")
    at.run()
    assert component_data(at) == {**first, "axis": "iteration", "running": False}


def test_plotly_js_goes_once_to_a_browser_that_asked(app_runs_dir: Path) -> None:
    run = synthetic_run(app_runs_dir, 5, "plotly")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert "plotly_js" not in component_data(at)
    at.session_state[charts.NEEDS_PLOTLY] = True  # what the browser's "sync" trigger sets
    at.run()
    data = component_data(at)
    assert "Plotly" in data["plotly_js"] and data["run"] == run.id
    at.run()
    assert "plotly_js" not in component_data(at)
    run.set_status("finished")
