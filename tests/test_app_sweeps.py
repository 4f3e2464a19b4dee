"""The Sweeps page through AppTest: validation, launching a tiny sweep, live trials, results."""

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

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
    assert at.get("download_button")
    folders = [p for p in app_runs_dir.iterdir() if (p / "config.json").exists()]
    assert len(folders) == 4
