"""The numbers the pages show, computed in the library: progress and ETA, the Lagrange multiplier,
formatting, config ids and seed groups. Each against a hand computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from trpo import analysis, compare, formatting
from trpo.config import TRPOConfig


def frame_of(steps: list[int], seconds: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"env_steps": steps, "iteration_time_s": seconds})


def test_progress_rate_is_the_last_five_iterations_and_eta_the_rest_at_that_rate():
    # 7 iterations of 1,000 steps; the last five took 0.5 s each: 5,000 / 2.5 = 2,000 steps/s
    frame = frame_of([1000 * i for i in range(1, 8)], [4.0, 4.0, 0.5, 0.5, 0.5, 0.5, 0.5])
    fraction, text = analysis.progress(frame, total=607_000, running=True)
    assert fraction == pytest.approx(7000 / 607_000)
    # 600,000 steps left at 2,000 steps/s: 300 s
    assert text == "7,000 / 607,000 steps · 2,000 steps/s · ETA 5 min 00 s"


def test_progress_of_a_finished_or_empty_run_has_no_eta():
    frame = frame_of([500, 1000], [1.0, 1.0])
    assert analysis.progress(frame, total=1000, running=False) == (
        1.0,
        "1,000 / 1,000 steps · 500 steps/s",
    )
    empty = frame_of([], [])
    assert analysis.progress(empty, total=2048, running=True) == (0.0, "0 / 2,048 steps")
    assert analysis.progress(empty, total=0, running=True)[0] == 0.0


def test_progress_never_passes_one():
    # a run resumed with a smaller budget than it already trained
    assert analysis.progress(frame_of([4096], [1.0]), total=2048, running=False)[0] == 1.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (0.2, "1 s"), (58.5, "59 s"), (59.2, "1 min 00 s"), (61, "1 min 01 s"),
     (3600, "1 h 00 min"), (7 * 3600 + 125, "7 h 02 min")],
)  # fmt: skip
def test_eta_text(seconds, text):
    assert formatting.eta_text(seconds) == text


def test_lagrange_multiplier_gives_a_step_on_the_kl_boundary():
    # the full step x / lambda has quadratic KL (1/2) (x/lambda)^T H (x/lambda) = delta
    # when H x = g, i.e. x^T H x = g^T x
    g_dot_x, delta = 3.7, 0.01
    lam = analysis.lagrange_multiplier(g_dot_x, delta)
    assert 0.5 * g_dot_x / lam**2 == pytest.approx(delta)
    for bad in (0.0, -1.0, math.nan, None, math.inf):
        assert math.isnan(analysis.lagrange_multiplier(bad, delta))


def test_formatting_helpers():
    assert formatting.fmt(0.0123456) == "0.01235"
    assert formatting.fmt(None) == formatting.fmt(math.nan) == formatting.fmt("x") == "n/a"
    assert formatting.fmt(2.5, ".2f") == "2.50"
    assert formatting.tex(1.2e-05) == r"1.2 \times 10^{-5}"
    assert formatting.tex(0.5) == "0.5"
    assert formatting.finite(1) and formatting.finite(-2.5)
    assert not formatting.finite(math.inf) and not formatting.finite("1")
    assert formatting.plural(1, "seed") == "1 seed"
    assert formatting.plural(1200, "trial") == "1,200 trials"


def test_config_id_ignores_the_seed_and_nothing_else():
    base = TRPOConfig(env_id="CartPole-v1")
    assert compare.config_id(base) == compare.config_id(base.replace(seed=7))
    assert compare.config_id(base) != compare.config_id(base.replace(delta=0.02))
    assert compare.config_id(base) != compare.config_id(base.replace(env_id="Pendulum-v1"))
    assert len(compare.config_id(base)) == 8


def test_seed_groups_put_seeds_together_and_label_what_differs():
    a0 = TRPOConfig(env_id="CartPole-v1", seed=0)
    entries = {
        "r1": ("", a0),
        "r2": ("", a0.replace(seed=1)),
        "r3": ("", a0.replace(delta=0.05)),
        "r4": ("broken", None),
    }
    groups = compare.seed_groups(entries)
    assert sorted(groups.values()) == [["r1", "r2"], ["r3"], ["r4"]]
    labels = {tuple(ids): label for label, ids in groups.items()}
    assert "0.05" in labels[("r3",)]
    assert "seed" not in labels[("r1", "r2")]
    assert labels[("r4",)].startswith("broken")


def test_markdown_table_pads_aligns_and_escapes():
    table = formatting.markdown_table(
        ["env", "mean"], [["Hopper", "1,208.4"], ["a|b", "-"]], [False, True]
    )
    assert table.splitlines() == [
        "| env    |    mean |",
        "|--------|--------:|",
        "| Hopper | 1,208.4 |",
        "| a\\|b   |       - |",
    ]


def test_run_row_of_a_named_run_with_episodes_and_of_an_unnamed_empty_one():
    config = TRPOConfig(env_id="Pendulum-v1", delta=0.02, alpha=0.5, max_backtracks=7, seed=3)
    frame = pd.DataFrame(
        {"env_steps": [512, 1024, 1536], "return_mean": [-900.0, float("nan"), -700.0]}
    )
    meta = {"name": "try", "created": "2026-12-01T05:00:00+00:00", "launcher": "dashboard"}
    row = analysis.run_row("20261201-050000-Pendulum-v1-abc123", meta, "running", config, frame)
    assert list(row) == analysis.RUN_COLUMNS
    assert row["name"] == "try" and row["env"] == "Pendulum-v1"
    assert (row["delta"], row["alpha"], row["K"], row["seed"]) == (0.02, 0.5, 7, 3)
    assert (row["status"], row["iterations"], row["env steps"]) == ("running", 3, 1536)
    # the last *finished* episode's mean, not a NaN of an iteration without one
    assert (row["last return"], row["best return"]) == (-700.0, -700.0)
    assert row["started"] == pd.Timestamp("2026-12-01 05:00", tz="UTC")

    empty = pd.DataFrame(columns=["env_steps", "return_mean"])
    unnamed = analysis.run_row("r", {"launcher": "dashboard"}, "failed", None, empty)
    assert unnamed["name"] == "(dashboard)" and unnamed["env"] is None
    assert unnamed["iterations"] == 0 and unnamed["env steps"] == 0
    assert math.isnan(unnamed["last return"]) and math.isnan(unnamed["best return"])
    assert pd.isna(unnamed["started"])
    assert analysis.run_row("r", {}, "finished", None, empty)["name"] == "(unnamed)"


def test_an_unnamed_run_is_listed_by_who_launched_it_in_the_cli_too():
    shown_name = analysis.shown_name
    assert shown_name({"name": "try", "launcher": "CLI"}) == "try"
    assert shown_name({"launcher": "sweep"}) == "(sweep)"
    assert shown_name({}) == ""
