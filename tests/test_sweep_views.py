"""What the Sweeps page shows, computed in the library: the time estimate before a launch, the
trial table read incrementally, the best-so-far curve, the trial states, and Optuna's figures
of a study (nothing here trains: the runs are written by hand)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.test_metrics_tail import record
from trpo import metrics_tail
from trpo.config import TRPOConfig
from trpo.metrics_tail import TailCache
from trpo.store import RunStore
from trpo.sweep import (
    DEFAULT_STEPS_PER_S,
    KnobRange,
    SweepError,
    SweepSpec,
    best_so_far,
    create_sweep,
    estimate_sweep,
    load_sweep,
    read_study,
    state_counts,
    sweep_results,
    sweep_trials,
    trials,
)
from trpo.sweep_plots import best_so_far_figure, study_figures, sweep_study_figures

optuna.logging.set_verbosity(optuna.logging.ERROR)


def fake_sweep(runs_dir: Path, started: int = 3, live: bool = True) -> tuple[str, list]:
    """A 2 configurations x 2 seeds grid sweep whose first `started` trials have runs (made
    here, as the driver makes them), each with 3 records; the last one stays 'running' if
    live, else every run finished."""
    spec = SweepSpec(
        TRPOConfig(env_id="CartPole-v1", total_steps=5120), {"delta": [0.01, 0.02]}, seeds=[0, 1]
    )
    sweep_id = create_sweep(spec, runs_dir)
    store = RunStore(runs_dir)
    runs = []
    for number, trial in enumerate(trials(spec)[:started]):
        tags = {
            "sweep": sweep_id,
            "trial": trial.trial_id,
            "config_id": trial.config_id,
            "seed": trial.seed,
            "knobs": trial.knobs,
            "optuna_trial": number,
        }
        run = store.create(trial.config, name=trial.trial_id, tags=tags)
        for i in range(1, 4):
            run.append(record(i, 10.0 * i + number))
        if number < started - 1 or not live:
            run.set_status("finished")
        runs.append(run)
    return sweep_id, runs


# --- the trial table, read incrementally ----------------------------------------------------


def test_trials_read_through_tails_equal_trials_read_whole_after_appends(tmp_path, monkeypatch):
    sweep_id, runs = fake_sweep(tmp_path)
    tails = TailCache()
    parsed: list[int] = []
    real = metrics_tail.parse_lines

    def counting(data: bytes):
        parsed.append(len(data))
        return real(data)

    monkeypatch.setattr(metrics_tail, "parse_lines", counting)

    def same() -> pd.DataFrame:
        whole = sweep_trials(tmp_path, sweep_id)
        pd.testing.assert_frame_equal(sweep_trials(tmp_path, sweep_id, tails), whole)
        pd.testing.assert_frame_equal(
            sweep_results(tmp_path, sweep_id, tails=tails), sweep_results(tmp_path, sweep_id)
        )
        return whole

    first = same()
    assert list(first["status"]) == ["finished", "finished", "running", "pending"]
    assert sum(parsed) == sum((r.path / "metrics.jsonl").stat().st_size for r in runs)

    parsed.clear()
    live = runs[2]
    size = (live.path / "metrics.jsonl").stat().st_size
    live.append(record(4, 55.0))
    appended = (live.path / "metrics.jsonl").stat().st_size - size
    table = same()
    assert sum(parsed) == appended  # the new record only, once for both tables
    row = table[table["run_id"] == live.id].iloc[0]
    assert row["iterations"] == 4 and row["current_return"] == 55.0

    # a resume cuts a log back to its checkpoint, then it grows again; a run ends
    live.truncate_metrics(2)
    same()
    live.append(record(3, 7.0))
    live.set_status("finished")
    table = same()
    assert list(table["status"]) == ["finished", "finished", "finished", "pending"]


# --- trial states and the best so far ----------------------------------------------------------


def trial_table(statuses: list[str], finals: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trial": [f"t{i}" for i in range(len(statuses))],
            "status": statuses,
            "final_return": finals,
        }
    )


def test_state_counts_name_every_state_in_order():
    table = trial_table(
        ["finished", "running", "pruned", "finished", "failed", "pending", "weird"], [0.0] * 7
    )
    counts = state_counts(table)
    assert list(counts)[:7] == [
        "pending",
        "running",
        "finished",
        "pruned",
        "stopped",
        "failed",
        "interrupted",
    ]
    assert counts == {
        "pending": 1,
        "running": 1,
        "finished": 2,
        "pruned": 1,
        "stopped": 0,
        "failed": 1,
        "interrupted": 0,
        "weird": 1,
    }
    assert sum(state_counts(trial_table([], [])).values()) == 0


def test_best_so_far_is_the_running_maximum_of_finished_trials():
    nan = math.nan
    statuses = ["finished", "pruned", "finished", "running", "finished", "finished", "pending"]
    finals = [5.0, 99.0, 3.0, 50.0, nan, 8.0, nan]
    series = best_so_far(trial_table(statuses, finals))
    # by hand: trials 1, 3 and 6 count (2 pruned, 4 running, 5 without a return, 7 pending)
    assert series["number"].tolist() == [1, 3, 6]
    assert series["trial"].tolist() == ["t0", "t2", "t5"]
    assert series["final_return"].tolist() == [5.0, 3.0, 8.0]
    assert series["best"].tolist() == [5.0, 5.0, 8.0]
    assert best_so_far(trial_table([], [])).empty

    fig = best_so_far_figure(trial_table(statuses, finals))
    points, best = fig.data
    assert list(points.x) == [1, 3, 6] and list(points.y) == [5.0, 3.0, 8.0]
    assert list(best.y) == [5.0, 5.0, 8.0] and best.line.shape == "hv"
    empty = best_so_far_figure(trial_table(["running"], [nan]))
    assert "no finished trial" in json.dumps(empty.to_dict()["layout"])


def test_best_so_far_of_a_stored_sweep(tmp_path):
    sweep_id, _ = fake_sweep(tmp_path)
    series = best_so_far(sweep_trials(tmp_path, sweep_id))
    # trial n (0-based) returned 10, 20, 30 (+ n): its final return is its last iteration's
    assert series["final_return"].tolist() == [30.0, 31.0]
    assert series["best"].tolist() == [30.0, 31.0]


# --- the time estimate ----------------------------------------------------------------------


def finished_run(store: RunStore, env_id: str, steps: int, wall: float, state="finished"):
    run = store.create(TRPOConfig(env_id=env_id))
    run.append(dataclasses.replace(record(1, 10.0), env_steps=steps // 2, wall_time_s=wall / 3))
    run.append(dataclasses.replace(record(2, 10.0), env_steps=steps, wall_time_s=wall))
    run.set_status(state)
    return run


def spec_of(env_id="CartPole-v1", **kwargs) -> SweepSpec:
    grid = {"delta": [0.01, 0.02, 0.05]}
    return SweepSpec(TRPOConfig(env_id=env_id, total_steps=30_000), grid, seeds=[0, 1], **kwargs)


def test_estimate_without_runs_uses_the_documented_default(tmp_path):
    estimate = estimate_sweep(spec_of(), tmp_path, workers=4, cpus=8)
    assert estimate.trials == 6 and estimate.env_steps == 180_000
    assert estimate.parallel == 4 and estimate.steps_per_s == DEFAULT_STEPS_PER_S
    assert estimate.measured_runs == ()
    assert estimate.seconds == pytest.approx(2 * 30_000 / DEFAULT_STEPS_PER_S)  # 2 waves
    assert "rough default" in estimate.text("CartPole-v1")


def test_estimate_measures_the_newest_finished_runs_of_the_env(tmp_path):
    store = RunStore(tmp_path)
    finished_run(store, "CartPole-v1", 1_000, 10.0)  # the oldest: not among the 2 newest
    newer = [finished_run(store, "CartPole-v1", 4_000, 2.0)]
    finished_run(store, "Pendulum-v1", 100, 100.0)  # another env
    newer.append(finished_run(store, "CartPole-v1", 2_000, 2.0))
    finished_run(store, "CartPole-v1", 1, 100.0, state="running")  # not finished
    finished_run(store, "CartPole-v1", 1, 100.0, state="failed")
    from trpo.sweep import estimate as module

    rate, ids = module.measured_steps_per_s(tmp_path, "CartPole-v1", newest=2)
    assert rate == pytest.approx((4_000 + 2_000) / (2.0 + 2.0))
    assert set(ids) == {r.id for r in newer}

    spec = spec_of(pruner="median")
    estimate = estimate_sweep(spec, tmp_path, workers=16, cpus=4)
    rate_all = (1_000 + 4_000 + 2_000) / (10.0 + 2.0 + 2.0)
    assert estimate.steps_per_s == pytest.approx(rate_all)  # 3 CartPole runs, fewer than 5
    assert estimate.parallel == 4  # the cores bound the workers
    assert estimate.seconds == pytest.approx(math.ceil(6 / 4) * 30_000 / rate_all)
    text = estimate.text("CartPole-v1")
    assert "measured on the 3 newest finished runs of CartPole-v1" in text
    assert "median pruner" in text and "180,000 env steps" in text
    # a range of total_steps: its middle per trial; one trial at a time with one worker
    ranged = SweepSpec(
        TRPOConfig(env_id="Pendulum-v1"),
        {"total_steps": KnobRange(10_000, 30_000)},
        seeds=[0],
        search="random",
        trials=3,
    )
    slow = estimate_sweep(ranged, tmp_path, workers=1, cpus=4)
    assert slow.steps_per_trial == 20_000 and slow.steps_per_s == pytest.approx(1.0)
    assert slow.seconds == pytest.approx(3 * 20_000)


# --- Optuna's figures of a study ------------------------------------------------------------


def tiny_study(url: str, name: str, configs: list[dict], pruned: int = 0) -> None:
    """A study as a sweep fills it: one trial per (configuration, value), categorical delta and
    alpha, maximised."""
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(
        storage=url, study_name=name, direction="maximize", sampler=sampler, load_if_exists=True
    )
    for params in configs:
        trial = study.ask()
        delta = trial.suggest_categorical("delta", [0.01, 0.02, 0.05])
        alpha = trial.suggest_categorical("alpha", [0.5, 0.8])
        study.tell(trial, params.get("value", 100 * delta + alpha))
    for _ in range(pruned):
        trial = study.ask()
        trial.suggest_categorical("delta", [0.01, 0.02, 0.05])
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def test_study_figures_of_a_real_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tiny_study(url, "s", [{} for _ in range(6)], pruned=1)
    figures = sweep_study_figures(url, "s")
    assert set(figures) == {"importances", "parallel", "slice"}
    with read_study(url, "s") as study:
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        varying = [
            p for p in ("delta", "alpha") if len({t.params[p] for t in complete}) > 1
        ]  # the sampler drew at random: count what varies
    bar = figures["importances"].data[0]
    assert bar.type == "bar" and set(bar.y) == set(varying)
    assert sum(bar.x) == pytest.approx(1.0, abs=0.02)  # importances are shares (rounded)
    assert figures["parallel"].data  # plotly traces, not a message
    assert len(figures["slice"].data) >= len(varying)
    for fig in figures.values():
        assert isinstance(fig.to_dict(), dict)


def test_study_figures_say_why_they_cannot_be_drawn(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tiny_study(url, "empty", [], pruned=2)
    tiny_study(url, "one", [{}])
    with read_study(url, "empty") as study:
        figures = study_figures(study)
    assert "at least 2 complete trials; the study has 0" in figures["importances"]
    assert figures["parallel"] == figures["slice"] == "No complete trial yet."
    with read_study(url, "one") as study:
        figures = study_figures(study)
    assert "the study has 1" in figures["importances"]
    assert not isinstance(figures["slice"], str)
    # the same configuration only: nothing varies
    study = optuna.create_study(storage=url, study_name="same", direction="maximize")
    for value in (1.0, 2.0, 3.0):
        study.enqueue_trial({"delta": 0.01})
        trial = study.ask()
        trial.suggest_categorical("delta", [0.01, 0.02])
        study.tell(trial, value)
    figures = study_figures(study)
    assert "a parameter that varies" in figures["importances"]
    assert not isinstance(figures["parallel"], str)


def test_read_study_of_a_missing_or_unknown_study(tmp_path):
    with (
        pytest.raises(SweepError, match="does not exist"),
        read_study(f"sqlite:///{tmp_path / 'none.db'}", "s"),
    ):
        pass
    assert not (tmp_path / "none.db").exists()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tiny_study(url, "s", [{}])
    with pytest.raises(SweepError, match="no study named other"), read_study(url, "other"):
        pass


def test_a_stored_sweep_reads_its_study(tmp_path):
    sweep_id, _ = fake_sweep(tmp_path, started=0)
    figures = sweep_study_figures(load_sweep(tmp_path, sweep_id).study_url, sweep_id)
    assert figures["parallel"] == "No complete trial yet."


def test_the_results_table_keeps_knob_values_apart_and_returns_at_two_decimals():
    from trpo.sweep.results import format_results

    frame = pd.DataFrame(
        {
            "delta": [0.0200312, 0.0176923],
            "n_seeds": [1, 1],
            "final_return_mean": [487.123, 455.5],
            "final_return_std": [float("nan")] * 2,
            "final_return_min": [487.123, 455.5],
            "final_return_max": [487.123, 455.5],
            "n_finished": [1, 1],
            "n_failed": [0, 0],
        }
    )
    text = format_results(frame, ["delta"])
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()[2:]]
    assert [row[0] for row in rows] == ["0.02003", "0.01769"]
    assert rows[0][2:4] == ["487.12", "-"]
