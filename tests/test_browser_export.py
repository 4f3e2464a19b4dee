"""The HTML report in a real browser (headless Chromium) with the network blocked: opened from
a file:// URL, it asks for nothing outside the file and draws every chart (plotly's SVG traces),
interactively; the Runs page's **Share a run** downloads the same report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import click, needs_chromium, new_tab, serve
from tests.conftest import tiny_config
from trpo.cli import main
from trpo.session import TrainingSession
from trpo.store import RunStore

pytestmark = [needs_chromium, pytest.mark.slow]

# the live panel's four charts, the latest iteration's line search, CG and geometry, and the
# two histograms of the accepted steps
CHARTS = 9
# per plotly div: how many traces its SVG draws, and how many of them have a drawn path/point
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].map(div => {
    const traces = [...div.querySelectorAll('.main-svg .trace')];
    const drawn = traces.filter(t => [...t.querySelectorAll('path')].some(
        p => (p.getAttribute('d') || '').length > 2));
    return [traces.length, drawn.length];
})"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs directory with one finished CartPole run, probed (4 iterations)."""
    root = tmp_path_factory.mktemp("browser-export") / "runs"
    config = tiny_config(total_steps=2048, probe_geometry=True)
    assert TrainingSession.new(config, RunStore(root), name="shared").run() == "finished"
    return root


@pytest.fixture(scope="module")
def server(runs: Path) -> Iterator[tuple[str, Path]]:
    yield from serve(runs)


def open_offline(browser: Any, report: Path) -> tuple[Any, list[str], list[str]]:
    """(page, requests that left the file, console and page errors) for the report opened from
    its file:// URL with every other request aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith("file://"):
            request_route.continue_()
        else:
            outside.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.resolve().as_uri(), wait_until="load", timeout=60_000)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {CHARTS}",
        timeout=60_000,
    )
    return page, outside, errors


def assert_every_chart_drawn(page: Any) -> None:
    drawn = page.evaluate(DRAWN)
    assert len(drawn) == CHARTS
    assert all(traces > 0 and painted > 0 for traces, painted in drawn), drawn


def test_the_report_opens_offline_with_every_chart_drawn(runs, browser, tmp_path, capsys):
    (run,) = runs.iterdir()
    report = tmp_path / "report.html"
    assert main(["export", str(run), "--format", "html", "--out", str(report)]) == 0
    page, outside, errors = open_offline(browser, report)
    assert_every_chart_drawn(page)
    assert outside == [] and errors == []
    assert page.evaluate("typeof window.Plotly") == "object"
    titles = page.evaluate(
        "[...document.querySelectorAll('.js-plotly-plot')].map(d => d.layout.title.text)"
    )
    assert titles[0] == "Episode return" and titles[-1].startswith("Actual / expected")
    # interactive: hovering the return chart shows plotly's hover box
    plot_area = page.locator(".js-plotly-plot").first.locator(".nsewdrag").first
    plot_area.scroll_into_view_if_needed()
    box = plot_area.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.wait_for_function(
        "document.querySelector('.js-plotly-plot .hoverlayer .legend') !== null", timeout=10_000
    )
    assert "Summary" in page.locator("h2").all_inner_texts()
    page.context.close()


@pytest.mark.usefixtures("warmed")
def test_the_runs_page_downloads_the_report(runs, server, browser, tmp_path):
    (run,) = runs.iterdir()
    url, _ = server
    page = new_tab(browser, url, "runs")
    page.get_by_text("Share a run").first.click()
    page.wait_for_selector(".st-key-download_report button", timeout=60_000)
    with page.expect_download(timeout=60_000) as info:
        click(page, "download_report")
    download = info.value
    assert download.suggested_filename == f"{run.name}.html"
    report = tmp_path / download.suggested_filename
    download.save_as(report)
    page.context.close()
    text = report.read_text(encoding="utf-8")
    assert run.name in text and "shared" in text
    shown, outside, errors = open_offline(browser, report)
    assert_every_chart_drawn(shown)
    assert outside == [] and errors == []
    shown.context.close()
