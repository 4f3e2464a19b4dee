"""The Train page through Streamlit's AppTest: validation, start, live charts, stop, demo, cap.

The pages run in this process, the trainers in their own processes. The registry
(st.cache_resource) is shared between tests: an autouse fixture points TRPO_RUNS_DIR at a temp
dir, stops the runs and clears the caches around each test. AppTest does not fire run_every
timers: tests poll with at.run().
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pages import common
from tests.conftest import wait_until
from trpo.config import TRPOConfig
from trpo.live_feed import LiveFeed
from trpo.metrics_tail import TailCache
from trpo.presets import preset
from trpo.store import Run, RunStore

APP = str(Path(__file__).resolve().parents[1] / "pages" / "navigation.py")
# A tiny CartPole run; LONG does not finish on its own during a test.
SMALL = {"steps_per_iteration": 512, "n_envs": 2, "total_steps": 4096}
LONG = {**SMALL, "total_steps": 50_000_000}


pytestmark = pytest.mark.usefixtures("app_runs_dir")


def trainers(runs: Path) -> list[Run]:
    """The runs a live process is training."""
    return [r for r in RunStore(runs).runs() if r.state() == "running"]


def stop_and_wait(at: AppTest, run: Run) -> None:
    """Click Stop; the trainer process stops after its current iteration."""
    at.button(key="stop").click().run()
    assert not at.exception
    wait_until(lambda: run.state() == "stopped")
    at.run()


def open_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def set_knobs(at: AppTest, **values: object) -> AppTest:
    for key, value in values.items():
        at.text_input(key=key).input(str(value))
    at.run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def run_folders(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def wait_for_iterations(at: AppTest, run_dir: Path, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        if len(lines) >= n:
            at.run()
            return
        time.sleep(0.1)
        at.run()
    raise AssertionError(f"{run_dir.name} did not reach {n} iterations in {timeout} s")


def live_data(at: AppTest) -> dict:
    """The data the live-charts component got in the last run (AppTest runs no JavaScript):
    which run and x axis to show."""
    [component] = at.get("bidi_component")
    return json.loads(json.loads(component.proto.json))


def chart_points(at: AppTest) -> dict[str, int]:
    """Points per chart (the largest trace), by the chart's title, from the full update the
    live-charts route gives a fresh browser for what the component shows."""
    shown = live_data(at)
    answer = LiveFeed(common.runs_dir(), TailCache()).answer(shown["run"], shown["axis"])
    data = answer.body
    assert answer.status == 200 and data["kind"] == "full", data
    out = {}
    for chart in data["charts"].values():
        title = chart["layout"]["title"]["text"]
        out[title] = max((len(t.get("y") or []) for t in chart["data"]), default=0)
    return out


def test_page_renders_with_defaults() -> None:
    at = open_app()
    assert at.title[0].value == "Train"
    assert at.selectbox(key="env_id").value == "CartPole-v1"
    assert any("Pendulum-v1" in o for o in at.selectbox(key="env_id").options)
    assert at.toggle(key="probe_geometry").value is True  # on in the dashboard
    assert at.selectbox(key="preset").value == "CartPole-v1"  # the knobs show its preset
    assert not at.button(key="start").disabled
    assert at.button(key="stop").disabled and at.button(key="resume").disabled
    assert not errors(at)
    assert any("No runs yet" in i.value for i in at.info)


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"steps_per_iteration": 512, "n_envs": 3}, "must be a multiple of n_envs"),
        ({"steps_per_iteration": 2048, "total_steps": 1000}, "less than one iteration"),
    ],
)
def test_bad_inputs_show_the_problem_and_start_nothing(
    app_runs_dir: Path, knobs: dict[str, int], message: str
) -> None:
    at = set_knobs(open_app(), **knobs)
    assert any(message in e for e in errors(at)), errors(at)
    assert at.button(key="start").disabled
    at.run()  # a browser cannot click a disabled button; reruns start nothing either
    assert not at.exception
    assert run_folders(app_runs_dir) == []
    assert common.get_registry().active() == []


def test_unparsable_hidden_sizes_are_reported(app_runs_dir: Path) -> None:
    at = open_app()
    at.text_input(key="hidden_sizes").input("64,wide").run()
    assert any("hidden_sizes" in e for e in errors(at))
    assert at.button(key="start").disabled
    at.text_input(key="hidden_sizes").input("32, 32").run()
    assert not errors(at)


@pytest.mark.slow  # trainer processes started from the page
def test_start_shows_live_charts_then_stop_and_resume(app_runs_dir: Path) -> None:
    at = set_knobs(open_app(), **LONG)
    at.button(key="start").click().run()
    assert not at.exception and not errors(at)
    [run_dir] = run_folders(app_runs_dir)
    assert at.session_state["current_run"] == run_dir.name
    assert at.session_state["selected_run"] == run_dir.name
    wait_for_iterations(at, run_dir, 2)

    at.segmented_control(key="live_x_axis").set_value("iteration").run()
    assert live_data(at)["axis"] == "iteration"
    assert not at.exception
    points = chart_points(at)
    assert len(points) == 4
    assert points["Episode return"] >= 1
    assert points["KL of the accepted step"] >= 2
    assert points["Accepted backtrack index j"] >= 2
    assert points["Conjugate-gradient residuals"] >= 1
    status = {m.label: m.value for m in at.metric}
    assert status["Status"] == "running"
    # whole iterations: 50,000,000 rounded up to a multiple of 512
    assert "/ 50,000,384 steps" in at.get("progress")[0].proto.text
    assert any(run_dir.name in s.value for s in at.subheader)
    assert not at.button(key="stop").disabled

    run = RunStore(app_runs_dir).runs()[0]
    stop_and_wait(at, run)
    assert not trainers(app_runs_dir)
    assert {m.label: m.value for m in at.metric}["Status"] == "stopped"
    assert at.button(key="stop").disabled
    assert not at.button(key="resume").disabled

    at.button(key="resume").click().run()
    assert not at.exception and not errors(at)
    assert {m.label: m.value for m in at.metric}["Status"] == "running"
    assert not at.button(key="stop").disabled and len(trainers(app_runs_dir)) == 1
    assert run_folders(app_runs_dir) == [run_dir]  # resumed in place
    stop_and_wait(at, run)
    assert not trainers(app_runs_dir)


@pytest.mark.slow  # trainer processes started from the page
def test_double_start_and_a_second_tab_give_one_run(app_runs_dir: Path) -> None:
    at = set_knobs(open_app(), **LONG)
    at.button(key="start").click().run()
    at.button(key="start").click().run()
    other_tab = set_knobs(open_app(), **LONG)
    other_tab.button(key="start").click().run()
    assert not at.exception and not other_tab.exception
    assert len(run_folders(app_runs_dir)) == 1
    assert len(trainers(app_runs_dir)) == 1 and len(common.get_registry().active()) == 1
    assert other_tab.session_state["current_run"] == at.session_state["current_run"]
    # the second tab can stop the run the first one started (the registry is the server's)
    stop_and_wait(other_tab, RunStore(app_runs_dir).runs()[0])
    assert not trainers(app_runs_dir)


@pytest.mark.slow  # trainer processes started from the page
def test_cache_clear_keeps_training_and_the_page_finds_the_run(app_runs_dir: Path) -> None:
    at = set_knobs(open_app(), **LONG)
    at.button(key="start").click().run()
    [run_dir] = run_folders(app_runs_dir)
    wait_for_iterations(at, run_dir, 1)
    st.cache_resource.clear()  # what "Clear caches" in Streamlit's menu does
    st.cache_data.clear()
    wait_for_iterations(at, run_dir, 3)  # still training
    assert len(trainers(app_runs_dir)) == 1
    fresh = open_app()  # a new session after the clear: the same run, still stoppable
    assert {m.label: m.value for m in fresh.metric}["Status"] == "running"
    assert [h.run_id for h in common.get_registry().active()] == [run_dir.name]  # found again
    assert not fresh.button(key="stop").disabled
    stop_and_wait(fresh, RunStore(app_runs_dir).runs()[0])
    assert not trainers(app_runs_dir)


@pytest.mark.slow  # trainer processes started from the page
def test_demo_starts_cartpole_with_the_preset(app_runs_dir: Path) -> None:
    at = open_app()
    at.button(key="demo").click().run()
    assert not at.exception and not errors(at)
    [run_dir] = run_folders(app_runs_dir)
    config = TRPOConfig.from_json((run_dir / "config.json").read_text())
    assert config == preset("CartPole-v1", probe_geometry=True)
    assert json.loads((run_dir / "meta.json").read_text())["name"] == "CartPole demo"
    # the sidebar now shows the demo's settings, so Start would not launch a duplicate
    assert at.session_state["preset"] == "CartPole-v1"
    assert at.session_state["steps_per_iteration"] == "1024"
    at.button(key="start").click().run()
    assert len(run_folders(app_runs_dir)) == 1 and len(trainers(app_runs_dir)) == 1


def test_preset_fills_the_knobs() -> None:
    at = open_app()
    at.selectbox(key="preset").set_value("Pendulum-v1").run()
    assert not at.exception
    assert at.selectbox(key="env_id").value == "Pendulum-v1"
    assert float(at.text_input(key="gamma").value) == pytest.approx(0.9)
    assert int(at.text_input(key="vf_epochs").value) == 15
    assert at.toggle(key="probe_geometry").value is True
    at.selectbox(key="env_id").set_value("Acrobot-v1").run()
    # a new env applies its own preset: every knob, the run knobs (seed, probe) kept
    assert at.selectbox(key="preset").value == "Acrobot-v1"
    assert form_config(at) == preset("Acrobot-v1", probe_geometry=True)


def form_config(at: AppTest) -> TRPOConfig:
    """The config the sidebar describes, read as the page reads it."""
    from pages import train_form

    config, own, between = train_form.read_form(at.session_state)
    assert config is not None, (own, between)
    return config


@pytest.mark.slow  # trainer processes started from the page
def test_after_the_demo_another_env_gets_every_knob_of_its_own_preset(app_runs_dir: Path) -> None:
    at = open_app()
    at.button(key="demo").click().run()
    at.selectbox(key="env_id").set_value("Pendulum-v1").run()
    assert not at.exception
    assert form_config(at) == preset("Pendulum-v1", probe_geometry=True)
    assert any("Every knob is the preset of Pendulum-v1" in c.value for c in at.caption)
    # an env without a preset gets the library defaults, every knob
    at.text_input(key="gamma").input("0.5").run()
    assert any("Changed from the preset: gamma" in c.value for c in at.caption)
    at.button(key="reset_knobs").click().run()
    assert form_config(at) == preset("Pendulum-v1", probe_geometry=True)
    common.get_registry().stop_all(timeout=60)


@pytest.mark.parametrize(
    ("key", "typed", "message"),
    [
        ("delta", "0", "delta (the KL limit) must be > 0 and at most 1, got 0"),
        ("max_backtracks", "-3", "max_backtracks (K) must be between 1 and 50, got -3"),
        ("max_backtracks", "1.5", "max_backtracks (K) must be a whole number, got '1.5'"),
        ("vf_lr", "fast", "vf_lr must be a number, got 'fast'"),
    ],
)
def test_what_is_typed_is_kept_and_refused_inline(
    app_runs_dir: Path, key: str, typed: str, message: str
) -> None:
    at = open_app()
    at.text_input(key=key).input(typed).run()
    assert not at.exception
    assert at.text_input(key=key).value == typed  # never replaced by the last good value
    assert message in errors(at)
    assert at.button(key="start").disabled
    at.run()
    assert run_folders(app_runs_dir) == []


@pytest.mark.slow  # trainer processes started from the page
def test_capacity_limit_shows_the_message(
    app_runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "MAX_CONCURRENT_RUNS", 1)
    at = set_knobs(open_app(), **LONG)
    at.button(key="start").click().run()
    assert len(trainers(app_runs_dir)) == 1
    at = set_knobs(at, seed=1)  # a different config: not the same run
    at.button(key="start").click().run()
    assert not at.exception
    assert any("limit is 1" in e for e in errors(at)), errors(at)
    assert len(run_folders(app_runs_dir)) == 1 and len(trainers(app_runs_dir)) == 1


def test_failed_run_shows_its_error(app_runs_dir: Path) -> None:
    run = RunStore(app_runs_dir).create(TRPOConfig(**SMALL), name="broken")
    run.set_status("failed", error="iteration 3: FloatingPointError: NaN in the policy")
    at = open_app()
    assert any("NaN in the policy" in e for e in errors(at)), errors(at)
    assert {m.label: m.value for m in at.metric}["Status"] == "failed"


def test_cli_run_is_shown_and_stop_asks_its_process(app_runs_dir: Path) -> None:
    store = RunStore(app_runs_dir)
    cli = store.create(TRPOConfig(**SMALL), name="from the CLI")  # status running, our pid
    cli = Run(cli.path.rename(app_runs_dir / ("20000101-000000-" + cli.id.split("-", 2)[2])))
    newer = store.create(TRPOConfig(**SMALL), name="finished later")
    newer.set_status("finished")
    at = open_app()  # a running run is shown before a newer finished one
    assert any("from the CLI" in s.value for s in at.subheader)
    assert any("another process" in c.value for c in at.caption)
    assert not at.button(key="stop").disabled
    at.button(key="stop").click().run()  # nothing trains it here: the request waits in the store
    assert cli.stop_requested()
    assert any("Stop requested" in i.value for i in at.info)
    cli.clear_stop_request()
    # the process that ran it is gone: interrupted (the newest run now), resumable here
    shutil.rmtree(newer.path)
    status = json.loads((cli.path / "status.json").read_text())
    status["pid"] = _dead_pid()
    (cli.path / "status.json").write_text(json.dumps(status))
    at.run()
    assert {m.label: m.value for m in at.metric}["Status"] == "interrupted"
    assert not at.button(key="resume").disabled
    assert any("Resume" in w.value for w in at.warning)


def _dead_pid() -> int:
    pid = 2**22 - 1
    while pid > 1:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1
    pytest.skip("no free pid")


@pytest.mark.slow  # trainer processes started from the page
def test_a_killed_trainer_shows_as_failed_and_the_app_stays_up(app_runs_dir: Path) -> None:
    """The trainer process dies mid-run (SIGKILL: no chance to write a status): the page shows
    the failure with the exit code, the last checkpoint stays loadable, the app stays up."""
    at = set_knobs(open_app(), **{**LONG, "checkpoint_every": 1})
    at.button(key="start").click().run()
    [run_dir] = run_folders(app_runs_dir)
    wait_for_iterations(at, run_dir, 2)
    handle = common.get_registry().get(run_dir.name)
    os.kill(handle.process.pid, signal.SIGKILL)
    wait_until(lambda: handle.outcome is not None)
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Status"] == "failed"
    assert any("exit code -9" in e for e in errors(at)), errors(at)
    assert Run(run_dir).load_checkpoint().meta["iteration"] >= 1
    assert at.button(key="stop").disabled  # nothing left to stop


def finished_run(runs: Path, **knobs: object) -> Run:
    run = RunStore(runs).create(TRPOConfig(**{**SMALL, **knobs}), name="linked")
    run.set_status("finished")
    return run


def test_a_link_to_a_run_shows_it_with_its_settings(app_runs_dir: Path) -> None:
    linked = finished_run(app_runs_dir, delta=0.03, alpha=0.6, max_backtracks=4, seed=5)
    finished_run(app_runs_dir, delta=0.01)  # newer: shown without a link
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["run"] = linked.id
    at.run()
    assert not at.exception
    assert at.selectbox(key="train_run").value == linked.id
    assert form_config(at) == linked.config()  # the form starts from the linked run
    assert not any("differ from the run on display" in c.value for c in at.caption)


def test_the_sidebar_says_when_it_is_not_the_shown_runs_and_can_take_it(app_runs_dir: Path) -> None:
    run = finished_run(app_runs_dir, delta=0.03, seed=5)
    at = open_app()
    assert at.selectbox(key="train_run").value == run.id
    notes = [c.value for c in at.caption if "differ from the run on display" in c.value]
    assert notes and "delta" in notes[0] and "seed" in notes[0]
    at.button(key="use_settings").click().run()
    assert form_config(at) == run.config()
    assert not any("differ from the run on display" in c.value for c in at.caption)


def test_the_form_lives_in_the_url_and_survives_a_reload(app_runs_dir: Path) -> None:
    at = open_app()
    at.selectbox(key="env_id").set_value("Pendulum-v1").run()
    at.text_input(key="delta").input("0.05").run()
    at.text_input(key="max_backtracks").input("1.5").run()  # kept as typed, even in the URL
    params = dict(at.query_params)
    assert params["env"] in ("Pendulum-v1", ["Pendulum-v1"])
    reloaded = AppTest.from_file(APP, default_timeout=30)  # a new session on the same URL
    for key, value in params.items():
        reloaded.query_params[key] = value[0] if isinstance(value, list) else value
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.selectbox(key="env_id").value == "Pendulum-v1"
    assert reloaded.text_input(key="delta").value == "0.05"
    assert reloaded.text_input(key="max_backtracks").value == "1.5"
    assert "max_backtracks (K) must be a whole number, got '1.5'" in errors(reloaded)
    reloaded.text_input(key="max_backtracks").input("10").run()
    expected = preset("Pendulum-v1", probe_geometry=True, delta=0.05)
    assert form_config(reloaded) == expected
