"""The Train form, links and the Runs page's chooser in a real browser (headless Chromium).

What is typed is what runs: a bad number stays in its box with the library's message right
under it, and Start is disabled (a forced click starts nothing). Choosing an env fills every
knob with its preset. The form lives in the URL, so a reload shows the same sidebar. A link
`?run=ID` (Trust region: `&iteration=N`) shows that run even as a server's first page. The
Runs page plots the metric chosen for the selected runs and exports their knobs in its CSV.

Two small finished runs are trained through the library before the server starts.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pages.train_form import KNOBS, RUN_KNOBS, SCHEMA
from tests.browser_support import (
    FIRST_NAVIGATION_MS,
    click,
    needs_chromium,
    new_tab,
    run_folders,
    serve,
    set_number,
    start_server,
    state_of,
    stop_server,
)
from tests.conftest import wait_until
from trpo.compare import METRICS
from trpo.config import TRPOConfig
from trpo.presets import preset
from trpo.session import TrainingSession
from trpo.store import RunStore, load_metrics, open_run

pytestmark = [needs_chromium, pytest.mark.slow, pytest.mark.usefixtures("warmed")]

KL_LABEL = METRICS["kl"]  # "KL(π_old ‖ π_new) of the accepted step (nats)"
# The two finished runs: (seed, delta, alpha, max_backtracks), oldest first.
SMALL_RUNS = ((1, 0.01, 0.7, 8), (2, 0.03, 0.5, 5))
# Every sidebar widget's value: the text of a box, a toggle's state, a select's shown text.
SIDEBAR = """keys => Object.fromEntries(keys.map(k => {
    const box = document.querySelector(`section[data-testid=stSidebar] .st-key-${k} input`);
    return [k, box ? (box.type === 'checkbox' ? box.checked : box.value) : null];
}))"""


@dataclass(frozen=True)
class Trained:
    runs: Path
    ids: tuple[str, ...]  # oldest first
    configs: dict[str, TRPOConfig]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    runs = tmp_path_factory.mktemp("browser-forms") / "runs"
    ids = []
    for seed, delta, alpha, max_backtracks in SMALL_RUNS:
        config = TRPOConfig(
            total_steps=2048,
            steps_per_iteration=512,
            vf_epochs=1,
            cg_iters=3,
            seed=seed,
            delta=delta,
            alpha=alpha,
            max_backtracks=max_backtracks,
        )
        session = TrainingSession.new(config, RunStore(runs))
        assert session.run() == "finished"
        ids.append(session.run_folder.id)
        time.sleep(1.05)  # run ids start with the second they were made: keep them ordered
    assert [r.id for r in RunStore(runs).runs()] == ids[::-1]  # the last is the newest
    return Trained(runs, tuple(ids), {i: open_run(runs / i).config() for i in ids})


def stop_training(runs: Path) -> None:
    """Stop every run still training (trainer processes outlive the server) and wait."""
    live = [f for f in run_folders(runs) if state_of(f) == "running"]
    for folder in live:
        open_run(folder).request_stop()
    for folder in live:
        wait_until(lambda folder=folder: state_of(folder) != "running", 120, "the run to stop")


@pytest.fixture(scope="module")
def server(trained):
    try:
        yield from serve(trained.runs)
    finally:
        stop_training(trained.runs)


# --- helpers -----------------------------------------------------------------------------------


def sidebar(page) -> dict[str, object]:
    """knob -> what its sidebar widget shows."""
    return page.evaluate(SIDEBAR, list(KNOBS))


def address(page) -> str:
    """The page's URL as the browser has it now (page.url is only updated while Playwright is
    called, not while a test sleeps between polls)."""
    return page.evaluate("() => location.href")


def settle(page, quiet: float = 0.8, timeout: float = 60.0) -> None:
    """Wait until the page's script has been idle (no running indicator) for `quiet` seconds.

    A value typed while the rerun of an env change (whose callback fills every knob) is still
    in flight was seen to be lost, the env change with it; so each step waits for the previous
    one to land, as a person would."""
    running = page.locator("[data-testid=stStatusWidget]")
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        if running.count():
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= quiet:
            return
        time.sleep(0.1)
    raise AssertionError("the page kept running")


def train_tab(browser, url: str, path: str = ""):
    """A Train tab whose first run has finished (the live panel is drawn)."""
    page = new_tab(browser, url, path)
    page.locator(".st-key-live_head h3").first.wait_for(timeout=60_000)
    settle(page)
    return page


def choose_env(page, env_id: str, group: str = "Classic control") -> None:
    page.locator(".st-key-env_id input").first.click()
    page.get_by_role("option", name=f"{group} · {env_id}", exact=True).click()
    wait_until(lambda: f"env={env_id}" in address(page), 30, f"{env_id} in the URL")
    settle(page)
    assert sidebar(page)["env_id"] == f"{group} · {env_id}"


def type_knob(page, key: str, text: str) -> None:
    set_number(page, key, text)
    settle(page)


def shows(config: TRPOConfig, values: dict[str, object]) -> list[str]:
    """The knobs whose widgets do not show config's value (numbers compared as numbers)."""
    wrong = []
    for key in KNOBS:
        want, text = getattr(config, key), values[key]
        kind = SCHEMA[key].kind
        try:
            if text is None:  # not drawn (yet)
                ok = False
            elif key == "env_id":
                ok = str(text).endswith(f" · {want}")
            elif kind == "sizes":
                ok = tuple(int(v) for v in str(text).split(",")) == tuple(want)
            elif kind in ("int", "float"):
                ok = float(str(text)) == want
            else:  # toggles and selects
                ok = text == want
        except ValueError:
            ok = False
        if not ok:
            wrong.append(f"{key}: shows {text!r}, expected {want!r}")
    return wrong


def message_under(page, key: str):
    """The error right under a knob's box (the next element of the sidebar)."""
    return page.locator(
        f".st-key-{key} + [data-testid=stElementContainer] "
        "[data-testid=stAlertContentError] [data-testid=stMarkdownContainer]"
    )


def start_button(page):
    return page.locator(".st-key-start button").first


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "bad", "message", "good"),
    [
        ("delta", "0", "delta (the KL limit) must be > 0 and at most 1, got 0", "0.02"),
        ("max_backtracks", "1.5", "max_backtracks (K) must be a whole number, got '1.5'", "7"),
    ],
)
def test_a_bad_value_keeps_its_box_shows_why_under_it_and_starts_nothing(
    server, browser, key, bad, message, good
):
    url, runs = server
    before = set(run_folders(runs))
    page = train_tab(browser, url)
    assert start_button(page).is_enabled()
    type_knob(page, key, bad)
    under = message_under(page, key)
    under.wait_for()
    assert under.is_visible()
    assert under.inner_text().strip() == message
    box = page.locator(f".st-key-{key} input").first.bounding_box()
    assert under.bounding_box()["y"] >= box["y"] + box["height"]  # below the box
    assert page.locator(f".st-key-{key} input").first.input_value() == bad  # kept as typed
    wait_until(start_button(page).is_disabled, 10, "Start disabled")
    page.get_by_text("Not startable: 1 value(s) above need fixing.").first.wait_for()

    start_button(page).click(force=True)
    page.wait_for_timeout(2000)
    assert set(run_folders(runs)) == before  # no run folder
    assert "training slots in use" in page.content() and "0 of 3" in page.content()

    type_knob(page, key, good)  # fixed: the message goes, Start is enabled again
    wait_until(lambda: message_under(page, key).count() == 0, 10, "the message gone")
    wait_until(start_button(page).is_enabled, 10, "Start enabled")
    assert set(run_folders(runs)) == before
    page.context.close()


def reload(page) -> None:
    page.reload(wait_until="domcontentloaded")
    page.locator(".st-key-live_head h3").first.wait_for(timeout=60_000)
    settle(page)


def test_a_reload_keeps_the_sidebar(server, browser):
    url, _ = server
    page = train_tab(browser, url)
    choose_env(page, "Acrobot-v1")  # the env's preset in every knob, then δ typed over it
    type_knob(page, "delta", "0.02")
    assert "delta%3D0.02" in address(page) and "env=Acrobot-v1" in address(page)
    page.get_by_text("Changed from the preset: delta.").first.wait_for()
    typed = sidebar(page)
    assert typed["delta"] == "0.02"
    assert shows(preset("Acrobot-v1", probe_geometry=True).replace(delta=0.02), typed) == []

    reload(page)
    shown = sidebar(page)
    # every algorithm knob (run knobs: test_a_reload_keeps_the_seed_and_probe_settings)
    assert {k: shown[k] for k in KNOBS if k not in RUN_KNOBS} == {
        k: typed[k] for k in KNOBS if k not in RUN_KNOBS
    }
    page.get_by_text("Changed from the preset: delta.").first.wait_for()
    page.context.close()


def test_a_reload_keeps_the_seed_and_probe_settings(trained, server, browser):
    url, _ = server
    page = train_tab(browser, url)
    type_knob(page, "seed", "21")
    typed = sidebar(page)
    assert typed["seed"] == "21"
    reload(page)
    shown = sidebar(page)
    assert {k: shown[k] for k in RUN_KNOBS} == {k: typed[k] for k in RUN_KNOBS}
    page.context.close()


def test_a_reload_keeps_a_bad_value_and_its_message(server, browser):
    url, runs = server
    before = set(run_folders(runs))
    page = train_tab(browser, url)
    type_knob(page, "max_backtracks", "1.5")
    message_under(page, "max_backtracks").wait_for()
    wait_until(lambda: "max_backtracks%3D1.5" in address(page), 10, "the form in the URL")
    reload(page)
    message_under(page, "max_backtracks").wait_for()
    assert page.locator(".st-key-max_backtracks input").first.input_value() == "1.5"
    wait_until(start_button(page).is_disabled, 10, "Start disabled after the reload")
    assert set(run_folders(runs)) == before
    page.context.close()


def open_link(browser, url: str, link: str):
    """A new tab at a link, allowing for a server's cold first page."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{url}/{link}", wait_until="domcontentloaded", timeout=FIRST_NAVIGATION_MS)
    page.wait_for_selector("[data-testid=stSidebarNav]", timeout=FIRST_NAVIGATION_MS)
    return page


def check_trust_region_link(page, run_id: str) -> None:
    picker = page.locator(".st-key-tr_run input").first
    wait_until(lambda: run_id in picker.input_value(), 60, "the linked run picked")
    slider = page.locator(".st-key-tr_iteration input[type=range]").first
    wait_until(lambda: slider.input_value() == "2", 30, "the slider at iteration 2")
    assert slider.get_attribute("max") == "4"
    page.get_by_role("heading", name="Iteration 2").first.wait_for()
    assert f"run={run_id}" in address(page) and "iteration=2" in address(page)


def check_train_link(page, run_id: str, config: TRPOConfig) -> None:
    picker = page.locator(".st-key-train_run input").first
    wait_until(lambda: run_id in picker.input_value(), 60, "the linked run picked")
    head = page.locator(".st-key-live_head h3").first
    wait_until(lambda: run_id in head.inner_text(), 30, "the linked run's heading")
    # the form starts from the linked run's settings
    wait_until(lambda: shows(config, sidebar(page)) == [], 10, "the run's settings")
    assert f"run={run_id}" in address(page)


@pytest.mark.parametrize("first", ["trust_region", "train"])
def test_links_show_a_run_that_is_not_the_newest_on_a_fresh_server(trained, browser, first):
    """Each link is tried as the fresh server's very first page (a page other than the default
    one must still go through pages/navigation.py, not Streamlit's legacy pages/ folder mode)."""
    older, newest = trained.ids
    links = {"trust_region": f"trust_region?run={older}&iteration=2", "train": f"?run={older}"}
    proc, url = start_server(trained.runs)  # a server that has never served a page
    try:
        for name in [first, *(other for other in links if other != first)]:
            page = open_link(browser, url, links[name])
            if name == "trust_region":
                check_trust_region_link(page, older)
                picker = page.locator(".st-key-tr_run input").first
            else:
                check_train_link(page, older, trained.configs[older])
                picker = page.locator(".st-key-train_run input").first
            assert newest not in picker.input_value()
            page.context.close()
    finally:
        stop_server(proc)


def test_runs_page_plots_the_chosen_metric_for_the_two_runs(trained, server, browser):
    url, _ = server
    page = new_tab(browser, url, "runs")
    page.wait_for_selector(".st-key-runs_overlay .js-plotly-plot", timeout=60_000)
    tags = page.locator(".st-key-runs_select [data-tag]")
    assert tags.count() == 2  # the newest runs of the newest run's env: both small runs

    page.locator(".st-key-runs_metric input").first.click()
    page.get_by_role("option", name=KL_LABEL, exact=True).click()
    chart = ".st-key-runs_overlay .js-plotly-plot"

    def drawn():
        return page.evaluate(
            """sel => { const el = document.querySelector(sel);
                if (!el || !el.data) return null;
                return {traces: el.data.map(t => ({x: Array.from(t.x || []),
                                                   y: Array.from(t.y || [])})),
                        title: el.layout.title && el.layout.title.text,
                        ytitle: el.layout.yaxis.title && el.layout.yaxis.title.text}; }""",
            chart,
        )

    wait_until(lambda: "KL" in ((drawn() or {}).get("title") or ""), 30, "the KL chart")
    shown = drawn()
    assert len(shown["traces"]) == 2
    expected = {}
    for run_id in trained.ids:
        frame = load_metrics(trained.runs / run_id)
        expected[run_id] = (list(frame["env_steps"]), list(frame["kl"]))
    got = [(t["x"], t["y"]) for t in shown["traces"]]
    for xs, ys in expected.values():  # each run's KL, point for point
        same = [gx == xs and gy == pytest.approx(ys, rel=1e-9, abs=0) for gx, gy in got]
        assert any(same), (xs, ys, got)
    assert KL_LABEL in shown["title"] and shown["ytitle"] == KL_LABEL
    assert KL_LABEL in page.locator(f"{chart} .ytitle").first.text_content()
    assert page.locator(".st-key-runs_metric input").first.input_value() == KL_LABEL
    page.context.close()


def test_runs_csv_has_each_runs_trust_region_knobs(trained, server, browser):
    url, _ = server
    page = new_tab(browser, url, "runs")
    page.wait_for_selector(".st-key-runs_overlay .js-plotly-plot", timeout=60_000)
    assert page.locator(".st-key-runs_select [data-tag]").count() == 2
    with page.expect_download() as info:
        click(page, "download_csv")
    download = info.value
    assert download.suggested_filename == "trpo-metrics.csv"
    frame = pd.read_csv(io.StringIO(Path(download.path()).read_text()))
    assert {"run_id", "delta", "alpha", "max_backtracks"} <= set(frame.columns)
    assert set(frame["run_id"]) == set(trained.ids)
    for run_id in trained.ids:
        rows = frame[frame["run_id"] == run_id]
        config = trained.configs[run_id]
        assert len(rows) == len(load_metrics(trained.runs / run_id)) == 4
        assert set(rows["delta"]) == {config.delta}
        assert set(rows["alpha"]) == {config.alpha}
        assert set(rows["max_backtracks"]) == {config.max_backtracks}
    page.context.close()


# Last: it adds a run (the demo), which would change the Runs page's default selection.
def test_choosing_an_env_after_the_demo_fills_every_knob_with_its_preset(server, browser):
    url, runs = server
    before = set(run_folders(runs))
    page = train_tab(browser, url)
    click(page, "demo")
    wait_until(lambda: len(set(run_folders(runs)) - before) == 1, 60, "the demo's run folder")
    [folder] = set(run_folders(runs)) - before
    try:
        settle(page)
        # the demo fills the form with what it trains: CartPole's preset
        cartpole = preset("CartPole-v1", probe_geometry=True)
        wait_until(lambda: shows(cartpole, sidebar(page)) == [], 20, "CartPole's preset")
        choose_env(page, "Pendulum-v1")
        page.locator("section[data-testid=stSidebar] [data-testid=stExpander] summary").click()
        pendulum = preset("Pendulum-v1", probe_geometry=True)
        wait_until(lambda: shows(pendulum, sidebar(page)) == [], 20, "Pendulum's preset")
        page.get_by_text("Every knob is the preset of Pendulum-v1.").first.wait_for()
        assert page.locator(".st-key-vf_epochs input").first.is_visible()  # Advanced is open
        assert start_button(page).is_enabled()

        # Stop the demo (the run on display), unless it has already trained its 100k steps
        # (about 35 s here): then Stop is disabled
        if state_of(folder) == "running":
            try:
                page.locator(".st-key-stop button").first.click(timeout=10_000)
            except pytest.importorskip("playwright.sync_api").TimeoutError:
                assert state_of(folder) == "finished"
        wait_until(lambda: state_of(folder) in ("stopped", "finished"), 60, "the demo ended")
    finally:
        if state_of(folder) == "running":
            open_run(folder).request_stop()
    page.context.close()
