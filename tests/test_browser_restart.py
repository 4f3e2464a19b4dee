"""Trainer processes outlive their server, in a real browser (headless Chromium): start a run
from the page, kill the Streamlit server (SIGKILL), start a new server on the same runs
directory: the run kept training, the new page shows it live and stops it; Resume and Stop
from the page drive a new trainer process. No Deploy button or developer menu is shown."""

from __future__ import annotations

import signal

import pytest

from tests.browser_support import (
    chart_points,
    click,
    metric,
    needs_chromium,
    new_tab,
    run_folders,
    set_number,
    start_server,
    state_of,
    stop_server,
    warm,
)
from tests.conftest import wait_until
from trpo.store import load_metrics, open_run

pytestmark = [needs_chromium, pytest.mark.slow]


def records(folder) -> int:
    return len(load_metrics(folder))


def test_a_run_survives_its_server_and_the_next_server_stops_it(tmp_path, browser):
    runs = tmp_path / "runs"
    first, url = start_server(runs)
    second = None
    try:
        warm(url, browser)
        page = new_tab(browser, url)
        set_number(page, "total_steps", "50000000")
        click(page, "start")
        wait_until(lambda: len(run_folders(runs)) == 1, 60, "a run folder")
        [folder] = run_folders(runs)
        wait_until(lambda: records(folder) >= 2, 60, "two iterations")
        trainer_pid = open_run(folder).status()["pid"]
        assert trainer_pid != first.pid  # the trainer is its own process
        page.context.close()

        first.send_signal(signal.SIGKILL)  # the server dies without any cleanup
        first.wait(30)
        before = records(folder)
        wait_until(lambda: records(folder) >= before + 3, 60, "training after the server died")
        assert open_run(folder).state() == "running"

        second, url = start_server(runs)
        page = new_tab(browser, url)
        page.get_by_text(folder.name).first.wait_for()  # the running run is shown
        wait_until(lambda: metric(page, "Status") == "running", 30, "status running")
        wait_until(lambda: chart_points(page, "kl") > 0, 60, "live charts")
        assert page.get_by_text("Deploy", exact=True).count() == 0  # client.toolbarMode viewer
        assert not page.locator(".st-key-stop button").first.is_disabled()
        click(page, "stop")
        wait_until(lambda: state_of(folder) == "stopped", 60, "stopped")
        stopped_at = records(folder)
        run = open_run(folder)
        assert run.load_checkpoint().meta["iteration"] == stopped_at

        # Resume from the page starts a new trainer process; Stop ends it again
        page.reload()
        page.wait_for_selector("[data-testid=stSidebarNav]")
        wait_until(lambda: page.locator(".st-key-resume button").first.is_enabled(), 30, "Resume")
        click(page, "resume")
        wait_until(lambda: records(folder) >= stopped_at + 2, 60, "training after Resume")
        assert open_run(folder).status()["pid"] not in (trainer_pid, second.pid)
        wait_until(lambda: page.locator(".st-key-stop button").first.is_enabled(), 30, "Stop")
        click(page, "stop")
        wait_until(lambda: state_of(folder) == "stopped", 60, "stopped again")
        iterations = list(load_metrics(folder)["iteration"])
        assert iterations == list(range(1, len(iterations) + 1))
        page.context.close()
    finally:
        for run in run_folders(runs):
            if open_run(run).state() == "running":
                open_run(run).request_stop()
        if second is not None:
            stop_server(second)
        if first.poll() is None:
            stop_server(first)
