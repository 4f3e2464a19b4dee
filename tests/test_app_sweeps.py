"""The Sweeps page through AppTest: validation, launching a tiny sweep, live trials, results."""

import dataclasses
import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_metrics_tail import record
from tests.test_sweep_views import fake_sweep, tiny_study
from trpo.config import TRPOConfig
from trpo.store import RunStore
from trpo.sweep import load_sweep

APP = str(Path(__file__).resolve().parents[1] / "pages" / "navigation.py")


pytestmark = pytest.mark.usefixtures("app_runs_dir")


def open_sweeps() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("sweeps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny(at: AppTest) -> AppTest:
    at.number_input(key="sweep_total_steps").set_value(2048)
    at.text_input(key="sweep_values_delta").set_value("0.01, 0.02")
    at.text_input(key="sweep_values_alpha").set_value("0.8")
    at.text_input(key="sweep_values_max_backtracks").set_value("10")
    at.text_input(key="sweep_seeds").set_value("0, 1")
    at.number_input(key="sweep_workers").set_value(2)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_renders_without_sweeps():
    at = open_sweeps()
    assert at.title[0].value == "Sweeps"
    assert any("No sweep yet" in i.value for i in at.info)


def test_bad_values_show_the_problem_and_launch_nothing(app_runs_dir):
    at = tiny(open_sweeps())
    at.text_input(key="sweep_values_delta").set_value("0.01, -1").run()
    assert any("delta" in e.value for e in at.error)
    assert at.button(key="sweep_launch").disabled
    at.text_input(key="sweep_values_delta").set_value("0.01").run()
    at.text_input(key="sweep_seeds").set_value("zero").run()
    assert any("seeds" in e.value for e in at.error)
    assert not (app_runs_dir / "sweeps").exists()


def test_the_form_estimates_the_time_before_launch(app_runs_dir):
    at = tiny(open_sweeps())
    estimate = next(c.value for c in at.caption if c.value.startswith("Estimated time"))
    assert "8,192 env steps: 4 trials x 2,048" in estimate and "rough default" in estimate
    # a finished CartPole run to measure: 2,048 env steps in 1 s
    run = RunStore(app_runs_dir).create(TRPOConfig(env_id="CartPole-v1"))
    run.append(dataclasses.replace(record(1, 20.0), env_steps=2048, wall_time_s=1.0))
    run.set_status("finished")
    at.run()
    estimate = next(c.value for c in at.caption if c.value.startswith("Estimated time"))
    assert "2,048 env steps/s" in estimate
    assert "measured on the 1 newest finished run of CartPole-v1" in estimate


def test_a_finished_sweep_shows_optunas_figures_and_its_progress(app_runs_dir):
    sweep_id, _ = fake_sweep(app_runs_dir, started=4, live=False)
    info = load_sweep(app_runs_dir, sweep_id)
    tiny_study(info.study_url, sweep_id, [{} for _ in range(5)])
    at = open_sweeps()
    assert {m.label: m.value for m in at.metric}["Sweep"] == "finished"
    assert any(c.value == "Trial states: 4 finished" for c in at.caption)
    assert any(s.value == "Optuna's view of the study" for s in at.subheader)
    assert [t.label for t in at.tabs] == ["Which knobs matter", "Parallel coordinates", "Slices"]
    specs = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    titles = {spec["layout"].get("title", {}).get("text") for spec in specs.values()}
    assert {"Best final return so far", "Parameter importances (PED-ANOVA)"} <= titles
    assert any("Parallel coordinates" in str(t) for t in titles)
    assert any(trace["type"] == "bar" for s in specs.values() for trace in s["data"])


def test_a_sweep_without_complete_study_trials_says_so(app_runs_dir):
    fake_sweep(app_runs_dir, started=4, live=False)  # runs, but nothing told to the study
    at = open_sweeps()
    assert not at.exception
    infos = [i.value for i in at.info]
    assert any("need at least 2 complete trials; the study has 0" in i for i in infos)
    assert "No complete trial yet." in infos


@pytest.mark.slow  # a sweep of trainer processes started from the page
def test_tiny_sweep_runs_and_shows_results(app_runs_dir):
    at = tiny(open_sweeps())
    assert any("4 trials" in c.value for c in at.caption)
    at.button(key="sweep_launch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        at.run()
        metrics = {m.label: m.value for m in at.metric}
        if metrics.get("Sweep") == "finished":
            break
        time.sleep(1)
    else:
        raise AssertionError(f"sweep did not finish: {metrics}")
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Trials finished"] == "4 / 4"
    tables = {d.key if hasattr(d, "key") else i: d.value for i, d in enumerate(at.dataframe)}
    results = next(v for v in tables.values() if "final_return_mean" in v.columns)
    assert len(results) == 2 and list(results["n_seeds"]) == [2, 2]
    # the table reads as words: titled, formatted columns; knobs under their symbols
    frame = next(d for d in at.dataframe if "final_return_mean" in d.value.columns)
    shown = json.loads(frame.proto.columns)
    assert shown["final_return_mean"]["label"] == "final return (mean)"
    assert shown["final_return_mean"]["type_config"]["format"] == "%.1f"
    assert shown["delta"]["label"] == "δ: KL limit (delta)"
    assert "config_id" not in frame.value.columns
    trials = next(d for d in at.dataframe if "progress" in d.value.columns)
    assert "None" not in trials.value["error"].astype(str).tolist()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    kinds = {trace["type"] for spec in specs for trace in spec["data"]}
    assert "parcoords" in kinds
    titles = {spec["layout"].get("title", {}).get("text") for spec in specs}
    assert "Final return vs delta" in titles
    # the search's progress, and Optuna's figures of the finished study
    assert {"Best final return so far", "Parameter importances (PED-ANOVA)"} <= titles
    assert any(c.value == "Trial states: 4 finished" for c in at.caption)
    assert at.get("download_button")
    folders = [p for p in app_runs_dir.iterdir() if (p / "config.json").exists()]
    assert len(folders) == 4
