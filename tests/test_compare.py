"""Comparing runs (trpo.compare) and the overlay figure drawn from it."""

import dataclasses

import numpy as np
import pandas as pd

from trpo import plots
from trpo.compare import (
    DEFAULT_SELECTION,
    METRICS,
    PALETTE,
    X_AXES,
    color_of,
    default_selection,
    differing_knobs,
    distinguishing_labels,
    with_config_columns,
)
from trpo.config import TRPOConfig, knob_schema
from trpo.record import IterationRecord

# record fields that are not a number per iteration, or are drawn elsewhere
NOT_COMPARED = {
    "iteration",  # an x-axis
    "env_steps",
    "wall_time_s",
    "step_accepted",  # a flag: drawn as the acceptance rate on Trust region
    "reject_reason",
    "cg_residuals",
    "line_search",
    "geometry",
    "extra",
    "episodes",
    "return_std",
    "surrogate_before",
}


def test_every_numeric_record_field_can_be_compared():
    fields = {f.name for f in dataclasses.fields(IterationRecord)}
    assert set(METRICS) | set(X_AXES) <= fields
    assert fields - set(METRICS) - set(X_AXES) <= NOT_COMPARED


def test_labels_name_the_knobs_that_differ():
    a = TRPOConfig(delta=0.01, seed=0)
    b = TRPOConfig(delta=0.02, seed=1)
    c = TRPOConfig(delta=0.02, seed=1)
    assert differing_knobs([a, b, c]) == ["delta", "seed"]
    labels = distinguishing_labels(
        {"r1": ("base", a), "r2": ("", b), "r3": ("", c), "r4": ("x", None)}
    )
    assert labels["r1"] == "base · δ=0.01 seed=0"
    # r2 and r3 read the same: their run ids tell them apart
    assert labels["r2"] == "CartPole-v1 · δ=0.02 seed=1 (r2)"
    assert labels["r3"] == "CartPole-v1 · δ=0.02 seed=1 (r3)"
    assert labels["r4"] == "x (unreadable config)"
    assert distinguishing_labels({"only": ("solo", a)}) == {"only": "solo"}


def test_labels_compare_runs_within_their_env_and_skip_what_does_not_learn():
    cart = TRPOConfig(env_id="CartPole-v1", delta=0.01)
    pend = TRPOConfig(env_id="Pendulum-v1", gamma=0.9, total_steps=100_000)
    labels = distinguishing_labels(
        {
            "c1": ("", cart),
            "c2": ("", cart.replace(delta=0.02, probe_geometry=not cart.probe_geometry)),
            "p1": ("", pend),
            "p2": ("mine", pend.replace(torch_threads=2)),
        }
    )
    assert labels["c1"] == "CartPole-v1 · δ=0.01"
    assert labels["c2"] == "CartPole-v1 · δ=0.02"  # the probe does not change learning
    # the Pendulum runs differ only in threads: nothing to tell, the names and envs say it
    assert labels["p1"] == "Pendulum-v1"
    assert labels["p2"] == "mine · Pendulum-v1"


def test_a_run_keeps_its_colour_whatever_else_is_selected():
    ids = [f"2026-run-{i}" for i in range(30)]
    colors = {i: color_of(i) for i in ids}
    assert set(colors.values()) <= set(PALETTE)
    assert len(set(colors.values())) > 3  # spread over the palette
    assert {i: color_of(i) for i in reversed(ids[5:])} == {i: colors[i] for i in ids[5:]}


def test_default_selection_is_the_newest_envs_runs():
    runs = [("n1", "Pendulum-v1"), ("n2", None), ("n3", "CartPole-v1"), ("n4", "Pendulum-v1")]
    assert default_selection(runs) == ["n1", "n4"]
    many = [(f"r{i}", "Hopper-v5") for i in range(9)]
    assert default_selection(many) == [f"r{i}" for i in range(DEFAULT_SELECTION)]
    assert default_selection([("u", None)]) == []


def test_csv_columns_carry_every_knob():
    config = TRPOConfig(delta=0.03, alpha=0.7, max_backtracks=4, hidden_sizes=(32, 16))
    frame = pd.DataFrame({"iteration": [1, 2], "kl": [0.01, 0.02]})
    out = with_config_columns(frame, config)
    for name in knob_schema():
        assert name in out.columns
    assert list(out["delta"]) == [0.03, 0.03] and list(out["max_backtracks"]) == [4, 4]
    assert out["hidden_sizes"].iloc[0] == "32,16"
    assert list(out["kl"]) == [0.01, 0.02]


def test_overlay_draws_the_chosen_metric_over_the_chosen_axis():
    frame = pd.DataFrame(
        {
            "iteration": [1, 2, 3, 4],
            "env_steps": [100, 200, 300, 400],
            "wall_time_s": [0.5, 1.0, 1.5, 2.0],
            "kl": [0.01, np.nan, 0.04, 0.02],
            "return_mean": [1.0, 2.0, 3.0, 4.0],
        }
    )
    fig = plots.overlay_figure(
        {"a": frame}, window=2, y="kl", x="wall_time_s", log_y=True, colors={"a": "#123456"}
    )
    [trace] = fig.data
    assert list(trace.x) == [0.5, 1.5, 2.0]  # the rejected iteration (NaN KL) is left out
    assert np.allclose(trace.y, [0.01, 0.025, 0.03])  # trailing mean over 2 drawn points
    assert trace.line.color == "#123456"
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == X_AXES["wall_time_s"]
    assert fig.layout.yaxis.title.text == METRICS["kl"]
