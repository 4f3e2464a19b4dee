"""The server side of the Train page's live charts: what each refresh hands the component.

`data_for` directly (a full, then "same" while nothing is new, a delta with only new points,
plotly.js only when a browser asked), and the page through AppTest (which runs no JavaScript:
the component's data is read from the element).
"""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from pages.live import charts
from tests.live_helpers import synthetic_record, synthetic_run
from trpo.store import load_metrics

APP = str(Path(__file__).resolve().parents[1] / "pages" / "navigation.py")


def test_each_refresh_sends_a_full_then_same_then_only_new_points(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, 30, "page data")
    book = charts.Book()

    def refresh(version: int, axis: str = "env steps") -> dict:
        frame = load_metrics(run.path)
        return json.loads(charts.data_for(book, run.id, frame, version, axis, 0.01, 10))

    first = refresh(1)
    assert first["kind"] == "full" and first["n"] == 30 and "plotly_js" not in first
    assert set(first["charts"]) == {"returns", "kl", "backtrack", "cg"}
    same = {"kind": "same", "epoch": first["epoch"], "n": 30}
    assert refresh(1) == same and refresh(1) == same  # nothing new: no point sent
    assert refresh(2) == same  # a new version of the log without a new record
    run.append(synthetic_record(31))
    delta = refresh(3)
    assert delta["kind"] == "delta" and (delta["base"], delta["n"]) == (30, 31)
    kl, rejected = delta["charts"]["kl"]  # record 31's step was rejected: a mark, no KL
    assert not synthetic_record(31).step_accepted
    assert kl["x"] == [] and kl["keep"] == len(first["charts"]["kl"]["data"][0]["x"])
    assert rejected["x"] == [31 * 512] and rejected["text"] == ["rejected: θ kept"]
    assert refresh(3) == {**same, "n": 31}
    other = refresh(3, "iteration")  # the other x axis: everything again
    assert other["kind"] == "full" and other["epoch"] == first["epoch"] + 1
    book.force_full, book.needs_plotly = True, True  # what the browser's "sync" asks for
    text = charts.data_for(book, run.id, load_metrics(run.path), 3, "iteration", 0.01, 10)
    again = json.loads(text)
    assert again["kind"] == "full" and "Plotly" in again["plotly_js"]
    assert not book.needs_plotly  # plotly.js once per request
    assert "plotly_js" not in json.loads(
        charts.data_for(book, run.id, load_metrics(run.path), 4, "iteration", 0.01, 10)
    )


def component_data(at: AppTest) -> dict:
    [component] = at.get("bidi_component")
    return json.loads(json.loads(component.proto.json))


def test_the_train_page_sends_the_charts_once_then_only_what_is_new(app_runs_dir: Path) -> None:
    run = synthetic_run(app_runs_dir, 40, "app test")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    full = component_data(at)
    assert full["kind"] == "full" and full["n"] == 40
    for _ in range(3):  # refreshes with no new record
        at.run()
        assert component_data(at) == {"kind": "same", "epoch": full["epoch"], "n": 40}
    run.append(synthetic_record(41))
    at.run()
    delta = component_data(at)
    assert delta["kind"] == "delta" and (delta["base"], delta["n"]) == (40, 41)
    mean = delta["charts"]["returns"][2]  # one new point, nothing older
    assert mean["keep"] == len(full["charts"]["returns"]["data"][2]["x"])
    assert mean["x"] == [41 * 512] and mean["y"] == [synthetic_record(41).return_mean]
    at.segmented_control(key="live_x_axis").set_value("iteration").run()
    axis = component_data(at)
    assert axis["kind"] == "full" and axis["charts"]["returns"]["data"][2]["x"][-1] == 41
    assert axis["charts"]["kl"]["layout"]["xaxis"]["title"]["text"].startswith("iteration")
    run.set_status("finished")
