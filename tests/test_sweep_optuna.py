"""Optuna as the sweeps' search engine: its samplers choose the configurations (grid, random,
TPE), its pruners stop hopeless runs ('pruned'), and the study lives in a real database
(study.db in the sweep's folder) that optuna.load_study opens and a resume continues."""

import threading

import optuna
import pytest

from tests.conftest import tiny_config
from tests.sweep_helpers import register_envs
from trpo.cli import main
from trpo.store import RunStore, load_metrics, open_run
from trpo.sweep import (
    KnobRange,
    Study,
    SweepSpec,
    create_sweep,
    load_sweep,
    run_sweep,
    sweep_results,
    sweep_runs,
    sweep_state,
    sweep_trials,
    trials,
)

ONE = dict(total_steps=512, cg_iters=3)  # one iteration of 512 steps
FOUR = dict(total_steps=2048, cg_iters=3)  # four iterations


def drawn(spec, folder, name="s"):
    """Every trial the spec's study hands out, asked as the driver asks (nothing trains)."""
    study = Study(spec, name, folder)
    out = []
    while (asked := study.ask()) is not None:
        out.append(asked[1])
    study.close()
    return out


def load(runs_dir, sweep_id):
    info = load_sweep(runs_dir, sweep_id)
    return optuna.load_study(study_name=sweep_id, storage=info.study_url)


# --- the samplers (no training) -------------------------------------------------------------


def test_grid_search_runs_exactly_the_grid_each_configuration_with_every_seed(tmp_path):
    grid = {"alpha": [0.5, 0.8], "delta": [0.01, 0.05], "hidden_sizes": [(32,), (16, 16)]}
    spec = SweepSpec(tiny_config(FOUR), grid, seeds=[0, 1])
    found = drawn(spec, tmp_path)
    expected = trials(spec)  # the grid, as sweeps ran it before Optuna
    assert len(found) == len(expected) == 16
    assert {(t.trial_id, t.config) for t in found} == {(t.trial_id, t.config) for t in expected}
    by_config = {}
    for t in found:
        by_config.setdefault(t.config_id, []).append(t.seed)
    assert all(sorted(seeds) == [0, 1] for seeds in by_config.values())
    assert [t.number for t in found] == list(range(16))
    # a limited grid search: that many distinct configurations, every one from the grid
    some = drawn(SweepSpec(tiny_config(FOUR), grid, seeds=[0], trials=5), tmp_path, "five")
    assert len({t.config_id for t in some}) == 5
    assert {t.trial_id for t in some} <= {t.trial_id for t in expected if t.seed == 0}


def test_random_and_tpe_draw_inside_the_ranges_and_repeat_with_the_seed(tmp_path):
    grid = {
        "delta": KnobRange(0.001, 0.05, log=True),
        "max_backtracks": KnobRange(3, 20),
        "activation": ["tanh", "relu"],
    }
    for search in ("random", "tpe"):
        spec = SweepSpec(tiny_config(FOUR), grid, seeds=[0, 1], search=search, trials=4)
        found = drawn(spec, tmp_path, f"{search}-a")
        assert len(found) == 8
        assert len({t.config_id for t in found}) == 4  # continuous ranges: no repeat
        for t in found:
            assert 0.001 <= t.config.delta <= 0.05
            assert isinstance(t.config.max_backtracks, int) and 3 <= t.config.max_backtracks <= 20
            assert t.config.activation in ("tanh", "relu")
        same = drawn(spec, tmp_path, f"{search}-b")
        assert [t.trial_id for t in same] == [t.trial_id for t in found]
        other = SweepSpec(
            tiny_config(FOUR), grid, seeds=[0, 1], search=search, trials=4, sample_seed=1
        )
        assert [t.trial_id for t in drawn(other, tmp_path, f"{search}-c")] != [
            t.trial_id for t in found
        ]


def test_a_resumed_random_search_goes_on_instead_of_drawing_its_first_configurations(tmp_path):
    spec = SweepSpec(
        tiny_config(FOUR), {"delta": KnobRange(0.001, 0.05)}, search="random", trials=4
    )
    study = Study(spec, "s", tmp_path)
    first = [study.ask()[1] for _ in range(2)]
    study.close()
    rest = drawn(spec, tmp_path)  # a new launch: a new process would do the same
    assert len(rest) == 2  # the budget is the study's: four configurations in all
    assert not {t.config_id for t in rest} & {t.config_id for t in first}


def test_a_configuration_proposed_again_runs_again_under_its_own_id(tmp_path):
    grid = {"delta": [0.01, 0.02]}
    found = drawn(SweepSpec(tiny_config(FOUR), grid, search="random", trials=6), tmp_path)
    ids = [t.trial_id for t in found]
    assert len(ids) == len(set(ids)) == 6
    assert any(i.endswith("-r1") for i in ids)  # six draws from two values repeat
    both = {t.config_id for t in trials(SweepSpec(tiny_config(FOUR), grid))}
    assert {t.config_id for t in found} == both


def test_bad_storage_creates_no_sweep(tmp_path):
    from trpo.config import ConfigError

    spec = SweepSpec(tiny_config(ONE), storage="sqlite:////no/such/folder/study.db")
    with pytest.raises(ConfigError, match="cannot open it"):
        create_sweep(spec, tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


# --- running sweeps ---------------------------------------------------------------------------


def cli(*args, cwd, monkeypatch, capsys):
    monkeypatch.chdir(cwd)
    try:
        code = main(["sweep", *args, "--runs-dir", "runs", "--workers", "2", "--quiet"])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


TINY_ARGS = ["--total-steps", "512", "--steps-per-iteration", "512", "--vf-epochs", "1",
             "--cg-iters", "3"]  # fmt: skip


@pytest.mark.slow  # multi-process sweeps
@pytest.mark.parametrize(
    ("search", "knobs", "configs"),
    [
        ("grid", ["--delta", "0.005,0.02", "--alpha", "0.8"], 2),
        ("random", ["--delta", "0.001:0.05:log", "--max-backtracks", "5:15", "--trials", "3"], 3),
        ("tpe", ["--delta", "0.001:0.05:log", "--activation", "tanh,relu", "--trials", "3"], 3),
    ],
)
def test_each_search_through_the_cli_fills_a_study_that_optuna_opens(
    tmp_path, monkeypatch, capsys, search, knobs, configs
):
    code, out, err = cli(
        "--env", "CartPole-v1", *knobs, *TINY_ARGS, "--search", search, "--seeds", "0,1",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    (folder,) = (tmp_path / "runs" / "sweeps").iterdir()
    sweep_id = folder.name
    assert f"{2 * configs} trials ({configs} configurations x 2 seeds), {search} search" in out
    assert (folder / "study.db").is_file()
    assert f"optuna-dashboard sqlite:///{folder / 'study.db'}" in out

    study = optuna.load_study(study_name=sweep_id, storage=f"sqlite:///{folder / 'study.db'}")
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == len(done) == 2 * configs
    runs = sweep_runs(tmp_path / "runs", sweep_id)
    assert len(runs) == 2 * configs
    swept = [
        k.lstrip("-").replace("-", "_")
        for k, v in zip(knobs[::2], knobs[1::2], strict=True)
        if k != "--trials" and ("," in v or ":" in v)
    ]
    for trial in done:
        run = runs[trial.user_attrs["trial"]]
        assert run.id == trial.user_attrs["run_id"]
        config = run.config()
        assert set(trial.params) == set(swept)
        for name, value in trial.params.items():
            assert getattr(config, name) == value  # the run trains what the study says
        assert config.seed == trial.user_attrs["seed"]
        frame = load_metrics(run.path)
        assert trial.value == pytest.approx(frame["return_mean"].iloc[-1])  # one iteration
        assert trial.intermediate_values == {1: pytest.approx(trial.value)}
    pairs = {}
    for trial in done:  # both seeds of a configuration have its parameters
        pairs.setdefault(trial.user_attrs["config"], []).append(trial)
    assert len(pairs) == configs
    for group in pairs.values():
        assert sorted(t.user_attrs["seed"] for t in group) == [0, 1]
        assert group[0].params == group[1].params
    if search == "grid":
        assert {(r.config().delta, r.config().alpha) for r in runs.values()} == {
            (0.005, 0.8),
            (0.02, 0.8),
        }


@pytest.mark.slow  # multi-process sweep
def test_the_pruner_stops_a_hopeless_trial_which_ends_pruned(tmp_path):
    """SweepPoor-v0 pays a hundredth of CartPole's reward, slowly: once the CartPole trial has
    finished, the median pruner (one finished run is enough) stops it at its next iteration.
    Without pruning it would run its 8 iterations (over 40 s) and end finished."""
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(
        tiny_config(dict(total_steps=4096, cg_iters=3)),
        {"env_id": ["CartPole-v1", "SweepPoor-v0"]},
        pruner="median",
        pruner_startup=1,
    )
    result = run_sweep(spec, runs_dir, workers=2, worker_init=register_envs)
    assert result.counts == {"finished": 1, "pruned": 1}
    assert result.all_finished and not result.stopped

    table = sweep_trials(runs_dir, result.sweep_id).set_index("env_id")
    poor, good = table.loc["SweepPoor-v0"], table.loc["CartPole-v1"]
    assert (good["status"], good["iterations"]) == ("finished", 8)
    assert poor["status"] == "pruned"
    assert 1 <= poor["iterations"] < 8  # its metrics stop early
    run = open_run(poor["run_dir"])
    assert run.status()["state"] == "pruned" and run.has_checkpoint()
    assert not run.stop_requested()
    assert list(load_metrics(run.path)["iteration"]) == list(range(1, poor["iterations"] + 1))

    study = load(runs_dir, result.sweep_id)
    states = {t.user_attrs["trial"]: t for t in study.trials}
    pruned, complete = states[poor["trial"]], states[good["trial"]]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert complete.state == optuna.trial.TrialState.COMPLETE
    assert max(pruned.intermediate_values) < 8
    assert sweep_state(runs_dir, result.sweep_id) == "finished"
    results = sweep_results(runs_dir, result.sweep_id).set_index("env_id")
    assert results.loc["SweepPoor-v0", "n_pruned"] == 1
    assert results.loc["SweepPoor-v0", "n_seeds"] == 0  # a cut-short return is not a result

    again = run_sweep(None, runs_dir, resume_sweep_id=result.sweep_id, worker_init=register_envs)
    assert sorted(o.state for o in again.outcomes.values() if o.skipped) == ["finished", "pruned"]
    assert len(load(runs_dir, result.sweep_id).trials) == 2


@pytest.mark.slow  # multi-process sweeps
def test_a_stopped_random_search_resumes_without_running_finished_trials_again(tmp_path):
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(
        tiny_config(FOUR, total_steps=1024),
        {"delta": KnobRange(0.001, 0.05, log=True)},
        search="random",
        trials=3,
    )
    stop = threading.Event()

    def on_progress(event):
        if event.kind == "ended":
            stop.set()  # after the first trial: the others never start

    first = run_sweep(spec, runs_dir, workers=1, stop_event=stop, on_progress=on_progress)
    assert first.stopped and not first.all_finished
    assert first.counts == {"finished": 1, "pending": 2}
    sweep_id = first.sweep_id
    (done,) = RunStore(runs_dir).runs()
    before = (done.path / "metrics.jsonl").stat()
    table = sweep_trials(runs_dir, sweep_id)
    assert sorted(table["status"]) == ["finished", "pending", "pending"]
    assert sweep_state(runs_dir, sweep_id) == "stopped"

    again = run_sweep(None, runs_dir, workers=1, resume_sweep_id=sweep_id)
    assert again.all_finished
    assert [o.run_dir for o in again.outcomes.values() if o.skipped] == [str(done.path)]
    now = (done.path / "metrics.jsonl").stat()
    assert (now.st_mtime_ns, now.st_size) == (before.st_mtime_ns, before.st_size)
    runs = RunStore(runs_dir).runs()
    assert len(runs) == 3 and len({r.config().delta for r in runs}) == 3
    study = load(runs_dir, sweep_id)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert {t.user_attrs["run_id"] for t in study.trials} == {r.id for r in runs}
    assert sweep_state(runs_dir, sweep_id) == "finished"
