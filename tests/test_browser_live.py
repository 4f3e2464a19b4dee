"""The Train page's live charts in a real browser (Chromium, headless): a zoom, a legend click and
the hover box survive updates while a run trains; new records reach the charts from the
live-charts route with no Streamlit rerun of the chart fragment (no message of the websocket
sends the charts again), and only as new points; with no new record the page is answered "same"
about twice a second and draws nothing, and a finished run is not asked at all; errors back
off, a hidden tab asks nothing; a 2,000-iteration run keeps every extreme; all of it fits
1280x720.

The component counts what it does on window.__trpoLiveCharts (pages/live/charts.js); the
websocket frames the page receives and its requests to the route are recorded too. Runs other
than the first test's are made up (tests/live_helpers.py, written through trpo.store) and
marked running by this process, so the test decides when records arrive.
"""

from __future__ import annotations

import contextlib
import re
import time

import pytest
from google.protobuf.message import DecodeError
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.browser_support import (
    chart_points,
    click,
    metric,
    needs_chromium,
    new_tab,
    serve,
    set_number,
    shot,
)
from tests.conftest import wait_until
from tests.live_helpers import SPIKES, synthetic_record, synthetic_run
from trpo import live_layout, live_series
from trpo.store import load_metrics

pytestmark = [
    needs_chromium,
    pytest.mark.slow,
    pytest.mark.usefixtures("warmed"),
]  # a Streamlit server and Chromium

STATS = "() => ({...(window.__trpoLiveCharts || {})})"
CHART = "name => document.querySelector(`.st-key-live_charts [data-chart=${name}]`)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory.mktemp("browser-live") / "runs")


def stats(page) -> dict[str, int]:
    return page.evaluate(STATS)


def chart(page, name: str, expression: str):
    """`expression` evaluated with `gd`, the plotly element of one live chart."""
    return page.evaluate(f"name => {{ const gd = ({CHART})(name); return {expression}; }}", name)


def drawn(page) -> bool:
    return bool(stats(page).get("fulls")) and chart_points(page, "kl") > 0


# trains CartPole for a few iterations: about 15 s
def test_zoom_legend_and_hover_survive_refreshes_while_a_run_trains(server, browser):
    url, _ = server
    page = new_tab(browser, url, height=720)
    set_number(page, "total_steps", "50000000")
    set_number(page, "seed", "51")
    click(page, "start")
    wait_until(lambda: chart_points(page, "kl") >= 3, 90, "three KL points")
    # a projector's screen: header, progress, metrics and the four charts, no scrolling
    boxes = page.evaluate(
        """() => [...document.querySelectorAll(
                '.st-key-live_charts [data-chart], [data-testid=stProgress], h1')]
            .map(e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom]; })"""
    )
    assert len(boxes) == 6
    assert all(top >= 0 and bottom <= 720 for top, bottom in boxes), boxes
    shot(page, "train-live-1280x720")

    x0, x1 = chart(page, "kl", "[gd.data[0].x[0], gd.data[0].x.at(-1)]")
    zoom = {"xaxis.range": [x0, (x0 + x1) / 2], "yaxis.range": [0.0, 0.05]}
    page.evaluate(
        f"z => Plotly.relayout(({CHART})('kl'), z)",
        zoom,
    )
    # a person's clicks: hide the returns' mean from its legend, rest the mouse on the KL chart
    legend = page.locator(".st-key-live_charts [data-chart=returns] .legend .traces")
    legend.filter(has_text="mean").click()
    area = page.locator(".st-key-live_charts [data-chart=kl] .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + area["width"] * 0.4, area["y"] + area["height"] * 0.5)
    wait_until(lambda: chart(page, "kl", "gd.querySelectorAll('.hoverlayer > *').length") > 0)
    before = stats(page)
    points = chart(page, "kl", "gd.data[0].x.length")
    wait_until(lambda: stats(page)["deltas"] >= before["deltas"] + 3, 60, "three updates")
    assert chart(page, "kl", "gd.data[0].x.length") > points  # new records were drawn
    assert chart(page, "kl", "gd.layout.xaxis.range") == zoom["xaxis.range"]
    assert chart(page, "kl", "gd.layout.yaxis.range") == zoom["yaxis.range"]
    assert chart(page, "returns", "gd.data.map(t => t.visible)")[2] == "legendonly"
    assert chart(page, "kl", "gd.querySelectorAll('.hoverlayer > *').length") > 0
    click(page, "stop")
    wait_until(lambda: metric(page, "Status") == "stopped", 30, "status stopped")
    page.context.close()


def forward_msgs(frames: list[bytes]) -> list[ForwardMsg]:
    """The websocket frames Streamlit sent, parsed."""
    out = []
    for frame in frames:
        msg = ForwardMsg()
        with contextlib.suppress(DecodeError):
            msg.ParseFromString(bytes(frame))
            out.append(msg)
    return out


def chart_sends(received: list[bytes], since_load: list[bytes]) -> int:
    """Messages in `received` that (re)send the live charts' element: what every rerun of the
    chart fragment sends. The element itself, or (Streamlit's message cache) a reference to a
    message of `since_load` that held it."""

    def charts(msg: ForwardMsg) -> bool:
        return (
            msg.WhichOneof("type") == "delta"
            and msg.delta.new_element.WhichOneof("type") == "bidi_component"
        )

    held = {m.hash for m in forward_msgs(since_load) if charts(m)}
    return sum(
        charts(m) or (m.WhichOneof("type") == "ref_hash" and m.ref_hash in held)
        for m in forward_msgs(received)
    )


def last_x(page) -> float:
    """The largest x on the KL chart (its two traces: accepted steps' KL, rejected marks)."""
    return chart(page, "kl", "Math.max(-1, ...gd.data.map(t => (t.x || []).at(-1) ?? -1))")


# an idle window, five records, a finished window: about 20 s
def test_records_reach_the_charts_without_a_rerun_and_idle_costs_nothing(server, browser):
    url, runs = server
    run = synthetic_run(runs, 60, "idle then growing", seed=2)
    frames: list[tuple[float, bytes]] = []
    asked: list[float] = []  # requests to the live-charts route

    def listen(page) -> None:
        page.on(
            "websocket",
            lambda ws: ws.on("framereceived", lambda f: frames.append((time.monotonic(), f))),
        )
        page.on("request", lambda r: asked.append(time.monotonic()) if "/live/" in r.url else None)

    page = new_tab(browser, url, before=listen)
    wait_until(lambda: drawn(page), 60, "the charts")
    page.wait_for_timeout(1500)

    def window(seconds: float) -> tuple[dict[str, int], list[bytes]]:
        start, begin = stats(page), time.monotonic()
        page.wait_for_timeout(seconds * 1000)
        end = stats(page)
        return {k: end[k] - start.get(k, 0) for k in end}, [f for t, f in frames if t >= begin]

    def points_sent(received: list[bytes]) -> int:  # traces in what the websocket brought
        return sum(len(re.findall(rb'"x\\?":\[', bytes(f))) for f in received)

    def chart_element(received: list[bytes]) -> int:  # the charts' element sent again
        return chart_sends(received, [f for _, f in frames])

    assert chart_element([f for _, f in frames]) >= 1  # the first draw is seen
    # running, no new record: about two "same" answers a second, nothing drawn
    idle, received = window(4)
    assert 5 <= idle["answers"] == idle["sames"] <= 10, idle  # polled, never overlapping
    assert {k: v for k, v in idle.items() if k not in ("answers", "sames")} == dict.fromkeys(
        set(idle) - {"answers", "sames"}, 0
    ), idle  # no call of the component's code by Streamlit, no draw
    assert received  # the status row still refreshes every second
    assert points_sent(received) == 0 and chart_element(received) == 0
    # new records: the charts gain only the new points, while the chart fragment never reruns
    n = 60
    start, begin = stats(page), time.monotonic()
    for _ in range(5):
        n += 1
        run.append(synthetic_record(n, seed=2))
        page.wait_for_timeout(700)
    wait_until(lambda: last_x(page) == n * 512, 10, f"iteration {n} on the KL chart")
    grown = {k: v - start[k] for k, v in stats(page).items()}
    received = [f for t, f in frames if t >= begin]
    assert grown["deltas"] > 0 and grown["redraws"] > 0 and grown["fulls"] == 0, grown
    # at most the new records' points per trace (one each, bucket size 1), never the history
    assert 0 < grown["appended"] <= 7 * 5, grown
    assert grown["calls"] == 0, grown  # Streamlit did not hand the component anything
    assert chart_element(received) == 0  # no rerun of the chart fragment sent the charts
    assert points_sent(received) == 0  # the points came from the route, not the websocket
    # the status fragment still shows each record (it reruns every second, as before)
    wait_until(lambda: metric(page, "Iteration").startswith(f"{n} /"), 10, f"iteration {n}")
    # finished: one last answer after the page says so, then no request at all
    run.set_status("finished")
    wait_until(lambda: metric(page, "Status") == "finished", 30, "status finished")
    page.wait_for_timeout(1500)
    before = len(asked)
    idle, received = window(6)
    assert received  # the page's 5 s refresh arrived
    assert idle == {k: 0 for k in idle}, idle
    assert len(asked) == before
    page.context.close()


# errors, a hidden tab, another x axis: about 25 s
def test_polling_backs_off_on_errors_and_pauses_while_the_tab_is_hidden(server, browser):
    url, runs = server
    run = synthetic_run(runs, 30, "flaky", seed=5)
    try:
        page = new_tab(browser, url)
        wait_until(lambda: drawn(page), 60, "the charts")
        page.route("**/live/**", lambda route: route.fulfill(status=503, body="busy"))
        start = stats(page)
        page.wait_for_timeout(6000)
        failed = {k: v - start[k] for k, v in stats(page).items()}
        # without backing off: 12 requests in 6 s; backing off: 1 s, 2 s, 4 s between them
        assert 2 <= failed["errors"] <= 5 and failed["answers"] == 0, failed
        page.unroute("**/live/**")
        run.append(synthetic_record(31, seed=5))
        wait_until(lambda: last_x(page) == 31 * 512, 20, "the charts caught up")
        assert stats(page)["fulls"] == start["fulls"]  # the token was kept: a delta
        # hidden: no request; shown again: caught up at once
        page.evaluate(
            """() => {
                Object.defineProperty(document, 'hidden', {value: true, configurable: true});
                document.dispatchEvent(new Event('visibilitychange'));
            }"""
        )
        page.wait_for_timeout(1000)
        start = stats(page)
        run.append(synthetic_record(32, seed=5))
        page.wait_for_timeout(3000)
        assert stats(page)["answers"] == start["answers"] and last_x(page) < 32 * 512
        page.evaluate(
            """() => {
                Object.defineProperty(document, 'hidden', {value: false, configurable: true});
                document.dispatchEvent(new Event('visibilitychange'));
            }"""
        )
        wait_until(lambda: last_x(page) == 32 * 512, 5, "the charts caught up when shown")
        # another x axis: Streamlit names it, the charts ask for everything on it
        page.locator(".st-key-live_x_axis button", has_text="iteration").click()
        wait_until(
            lambda: chart(page, "kl", "gd.layout.uirevision") == f"{run.id}|iteration",
            20,
            "the iteration axis",
        )
        assert last_x(page) == 32
        page.context.close()
    finally:
        run.set_status("finished")


def test_a_2000_iteration_run_keeps_every_extreme_and_the_last_point(server, browser):
    url, runs = server
    run = synthetic_run(runs, 2000, "long", seed=0)
    try:
        page = new_tab(browser, url, height=720)
        wait_until(lambda: drawn(page) and "2,000" in metric(page, "Iteration"), 90, "charts")
        shown = page.evaluate(
            f"""() => Object.fromEntries(['returns', 'kl', 'backtrack'].map(name => [name,
                ({CHART})(name).data.map(t => ({{x: t.x, y: t.y, text: t.text || null}}))]))"""
        )
        page.context.close()
    finally:
        run.set_status("finished")
    frame = load_metrics(run.path)
    # the browser holds what the library computes for all 2,000 records...
    expected, _ = live_series.plan(frame, None, run.id, "env steps", live_layout.rejected_y(10))
    for name, traces in expected.charts.items():
        for got, want in zip(shown[name], traces, strict=True):
            assert got["x"] == want["x"] and got["y"] == want["y"], name
    # ... which keeps the global extremes and the last point of every series
    records = frame.to_dict("records")
    for name, i, column, ends in [
        ("returns", 2, "return_mean", (min, max)),
        ("returns", 0, "return_max", (max,)),
        ("returns", 1, "return_min", (min,)),
        ("kl", 0, "kl", (min, max)),
        ("backtrack", 0, "backtrack_index", (min, max)),
    ]:
        trace = shown[name][i]
        values = [(r["env_steps"], r[column]) for r in records if r[column] == r[column]]
        for end in ends:
            assert end(v for _, v in values) in trace["y"], (name, column, end)
        assert (trace["x"][-1], trace["y"][-1]) == values[-1], (name, column)
        assert len(trace["x"]) <= live_series.MAX_POINTS
    assert 9_999.0 in shown["returns"][2]["y"] and -500.0 in shown["returns"][2]["y"]
    assert SPIKES[777][1] in shown["kl"][0]["y"]
    # rejected steps: marked at the top of the KL chart, not at KL = 0
    marks = shown["kl"][1]
    assert marks["x"] and set(marks["y"]) == {live_layout.KL_MARK_Y}
    assert all(t.startswith("rejected: θ kept") for t in marks["text"])
    assert 0.0 not in shown["kl"][0]["y"]
