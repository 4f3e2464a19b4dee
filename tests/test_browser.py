"""The dashboard in a real browser: Debian's Chromium driven headless by Playwright.

A Streamlit server is started on a free port with its own runs directory. Screenshots of every
page are saved under test-artifacts/ for people to look at.
"""

import json
import time

import pytest

from tests.browser_support import (
    CHARTS,
    chart_points,
    click,
    goto_page,
    metric,
    needs_chromium,
    new_tab,
    run_folders,
    serve,
    set_number,
    set_text,
    shot,
    slots,
    state_of,
)
from tests.conftest import wait_until

pytestmark = [
    needs_chromium,
    pytest.mark.slow,
    pytest.mark.usefixtures("warmed"),
]  # a Streamlit server and Chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from serve(tmp_path_factory.mktemp("browser") / "runs")


def test_train_watch_stop_then_every_page(server, browser):
    url, runs = server
    page = new_tab(browser, url)
    page.locator(".st-key-env_id input").first.click()  # waits out the loading skeleton
    page.get_by_role("option", name="Classic control · CartPole-v1").click()
    page.get_by_text("4 observations · 2 discrete actions").first.wait_for()  # CartPole's spaces
    set_number(page, "delta", "0.02")
    click(page, "start")
    wait_until(
        lambda: all(chart_points(page, kind) >= 3 for kind in CHARTS),
        timeout=90,
        what="four live charts with 3 iterations each",
    )
    shot(page, "train-live")
    folder = run_folders(runs)[0]
    assert json.loads((folder / "config.json").read_text())["delta"] == 0.02
    click(page, "stop")
    wait_until(lambda: metric(page, "Status") == "stopped", 20, "status stopped")
    assert state_of(folder) == "stopped"
    assert "0 of 3" in slots(page)
    shot(page, "train")

    goto_page(page, "Runs")
    page.wait_for_selector("[data-testid=stDataFrame]")
    wait_until(lambda: page.locator(".js-plotly-plot").count() >= 1, 30, "the overlay chart")
    shot(page, "runs")

    goto_page(page, "Trust region")
    wait_until(lambda: page.locator(".js-plotly-plot").count() >= 3, 30, "trust-region charts")
    traces = page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(el => (el.data || []).map(t => t.name))"
    )
    names = {name for chart in traces for name in chart}
    assert "true KL" in names  # the geometry probe is drawn
    shot(page, "trust-region")

    goto_page(page, "Replay")
    click(page, "replay_play")
    page.wait_for_selector("video", timeout=90_000)
    shot(page, "replay")

    goto_page(page, "How TRPO works")
    page.wait_for_selector(".katex")
    shot(page, "how-trpo-works")
    page.context.close()


def test_two_tabs_reruns_and_a_second_tab_stop(server, browser):
    url, runs = server
    before = set(run_folders(runs))
    first, second = new_tab(browser, url), new_tab(browser, url)
    for page in (first, second):
        set_number(page, "total_steps", "50000000")
        set_number(page, "seed", "21")
    click(first, "start")
    click(second, "start")
    wait_until(lambda: len(set(run_folders(runs)) - before) >= 1, 30, "a run folder")
    first.wait_for_timeout(2000)
    created = set(run_folders(runs)) - before
    assert len(created) == 1, created  # two tabs pressing Start give one trainer
    folder = created.pop()
    for _ in range(10):  # ten reruns of one tab
        first.reload()
        first.wait_for_selector(".st-key-start button")
    first.wait_for_timeout(1500)
    assert set(run_folders(runs)) - before == {folder}
    assert "1 of 3" in slots(first)
    # Stop from the second tab: the run stops within 5 s
    second.reload()
    second.wait_for_selector(".st-key-stop button")
    wait_until(lambda: second.locator(".st-key-stop button").first.is_enabled(), 15, "Stop")
    started = time.monotonic()
    click(second, "stop")
    wait_until(lambda: state_of(folder) == "stopped", 5, "the run to stop within 5 s")
    assert time.monotonic() - started < 5
    first.context.close()
    second.context.close()


def test_closed_tab_reattaches_and_no_menu_can_stop_a_run(server, browser):
    url, runs = server
    before = set(run_folders(runs))
    page = new_tab(browser, url)
    set_number(page, "total_steps", "50000000")
    set_number(page, "seed", "31")
    click(page, "start")
    wait_until(lambda: len(set(run_folders(runs)) - before) == 1, 30, "a run folder")
    folder = (set(run_folders(runs)) - before).pop()
    page.context.close()  # the tab is closed; the run goes on in the server

    again = new_tab(browser, url)
    wait_until(lambda: metric(again, "Status") == "running", 20, "the running run shown")
    assert folder.name in again.content() or again.locator("h3").count() >= 1
    assert again.locator(".st-key-stop button").first.is_enabled()
    grown = len((folder / "metrics.jsonl").read_text().splitlines())
    wait_until(
        lambda: len((folder / "metrics.jsonl").read_text().splitlines()) > grown, 30, "progress"
    )
    # Streamlit's developer menu is not offered to visitors (client.toolbarMode = "viewer"):
    # its "Clear caches" shortcut does nothing (a cache clear is tested in test_app_train.py)
    again.keyboard.press("c")
    again.wait_for_timeout(1000)
    assert again.get_by_role("button", name="Clear caches").count() == 0
    grown = len((folder / "metrics.jsonl").read_text().splitlines())
    wait_until(
        lambda: len((folder / "metrics.jsonl").read_text().splitlines()) > grown + 2,
        30,
        "progress",
    )
    assert state_of(folder) == "running"
    again.reload()
    wait_until(lambda: metric(again, "Status") == "running", 20, "the run shown after reload")
    assert "1 of 3" in slots(again)
    click(again, "stop")  # and Stop still reaches it
    wait_until(lambda: state_of(folder) == "stopped", 20, "the run stopped by Stop")
    again.context.close()


def test_three_concurrent_runs_progress_and_the_cap_refuses_a_fourth(server, browser):
    url, runs = server
    before = set(run_folders(runs))
    page = new_tab(browser, url)
    set_number(page, "total_steps", "50000000")
    for seed in ("41", "42", "43"):
        set_number(page, "seed", seed)
        click(page, "start")
        page.wait_for_timeout(800)
    wait_until(lambda: len(set(run_folders(runs)) - before) == 3, 30, "three run folders")
    wait_until(lambda: "3 of 3" in slots(page), 15, "three slots in use")
    set_number(page, "seed", "44")
    click(page, "start")
    page.get_by_text("the limit is 3").first.wait_for()
    assert len(set(run_folders(runs)) - before) == 3
    folders = set(run_folders(runs)) - before
    sizes = {f: (f / "metrics.jsonl").stat().st_size for f in folders}
    wait_until(
        lambda: all((f / "metrics.jsonl").stat().st_size > sizes[f] for f in folders),
        45,
        "all three runs progressing",
    )
    shot(page, "train-three-runs")
    # Start with a live run's settings shows that run (idempotent start); its Stop ends it
    # after the current iteration (slow on a loaded machine), which a reload then shows.
    by_seed = {json.loads((f / "config.json").read_text())["seed"]: f for f in folders}
    for seed, left in ((41, "2 of 3"), (42, "1 of 3"), (43, "0 of 3")):
        set_number(page, "total_steps", "50000000")
        set_number(page, "seed", str(seed))
        click(page, "start")
        # the page shows that run (its Stop stops it), not the one it showed before the click
        wait_until(lambda seed=seed: f"seed {seed}" in shown_run_name(page), 15, f"run {seed}")
        wait_until(lambda: page.locator(".st-key-stop button").first.is_enabled(), 15, "Stop")
        click(page, "stop")
        wait_until(lambda seed=seed: state_of(by_seed[seed]) == "stopped", 60, f"{seed} stopped")
        page.reload()
        wait_until(lambda left=left: left in slots(page), 30, f"{left} slots in use")
    assert all(state_of(f) == "stopped" for f in folders)
    page.context.close()


def shown_run_name(page) -> str:
    """The live panel's heading: the shown run's name, env, δ/α/K and seed."""
    heading = page.locator(".st-key-live_head h3")
    return heading.first.inner_text() if heading.count() else ""


def test_a_tiny_sweep_from_the_browser_shows_its_results(server, browser):
    url, runs = server
    page = new_tab(browser, url)
    goto_page(page, "Sweeps")
    page.wait_for_selector(".st-key-sweep_launch button")
    set_number(page, "sweep_total_steps", "2048")
    set_text(page, "sweep_values_delta", "0.01, 0.02")
    set_text(page, "sweep_values_alpha", "0.8")
    set_text(page, "sweep_values_max_backtracks", "10")
    set_text(page, "sweep_seeds", "0, 1")
    set_number(page, "sweep_workers", "2")
    page.get_by_text("4 trials: 2 configurations x 2 seeds").first.wait_for()
    click(page, "sweep_launch")
    page.wait_for_selector(".st-key-sweep_parcoords .js-plotly-plot", timeout=240_000)
    lines = page.evaluate(
        "() => document.querySelector('.st-key-sweep_parcoords .js-plotly-plot')"
        ".data[0].dimensions.at(-1).values.length"
    )
    assert lines == 2  # two configurations, each with its mean final return
    sweeps = list((runs / "sweeps").iterdir())
    assert len(sweeps) == 1
    shot(page, "sweeps")
    page.context.close()
