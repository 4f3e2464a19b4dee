"""Sweeps on the local process pool: specs, tags, results, failures, dying workers, stop, resume,
and the `sweep` command."""

import json
import math
import os
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

import optuna
import pytest

from tests.conftest import tiny_config, wait_for
from tests.sweep_helpers import register_envs
from trpo.cli import main
from trpo.config import ConfigError
from trpo.store import RunStore, load_metrics
from trpo.sweep import (
    KnobRange,
    SweepError,
    SweepSpec,
    create_sweep,
    final_return,
    list_sweeps,
    load_sweep,
    run_sweep,
    start_sweep,
    stop_sweep,
    sweep_results,
    sweep_runs,
    sweep_state,
    sweep_trials,
    trials,
)

ROOT = Path(__file__).resolve().parent.parent
FOUR = dict(total_steps=2048, cg_iters=3)  # four iterations of 512 steps


# --- the spec --------------------------------------------------------------------------------


def test_trials_are_the_grid_times_the_seeds_with_stable_ids():
    spec = SweepSpec(
        tiny_config(FOUR), {"alpha": [0.5, 0.8], "delta": [0.01, 0.02, 0.05]}, seeds=[0, 1]
    )
    found = trials(spec)
    assert len(found) == 12
    assert len({t.trial_id for t in found}) == 12
    assert {(t.config.delta, t.config.alpha, t.seed) for t in found} == {
        (d, a, s) for d in (0.01, 0.02, 0.05) for a in (0.5, 0.8) for s in (0, 1)
    }
    for t in found:
        assert t.trial_id == f"{t.config_id}-s{t.seed}"
        assert t.knobs == {"delta": t.config.delta, "alpha": t.config.alpha}
        assert t.config.total_steps == 2048  # the base config's other knobs
    # the same configuration gets the same config id whatever its seed, and in any spec
    by_config = {}
    for t in found:
        by_config.setdefault(t.config_id, set()).add(t.seed)
    assert all(seeds == {0, 1} for seeds in by_config.values())
    again = SweepSpec(
        tiny_config(FOUR), {"delta": [0.05, 0.02, 0.01], "alpha": [0.8, 0.5]}, seeds=[1, 0]
    )
    assert {t.trial_id for t in trials(again)} == {t.trial_id for t in found}


def test_spec_json_round_trip_keeps_the_search():
    spec = SweepSpec(
        tiny_config(FOUR),
        {"hidden_sizes": [(32,), [64, 64]], "delta": KnobRange(0.001, 0.05, log=True)},
        seeds=[3, 4],
        search="tpe",
        trials=3,
        sample_seed=7,
        pruner="median",
        pruner_startup=2,
        pruner_warmup=1,
        storage="sqlite:////tmp/elsewhere.db",
        name="round trip",
    )
    back = SweepSpec.from_json(spec.to_json())
    assert back == spec
    assert (back.n_configs, back.n_trials) == (3, 6)
    data = json.loads(spec.to_json())
    assert data["grid"]["delta"] == {"low": 0.001, "high": 0.05, "log": True}
    assert {k: data[k] for k in ("search", "trials", "pruner", "storage")} == {
        "search": "tpe",
        "trials": 3,
        "pruner": "median",
        "storage": "sqlite:////tmp/elsewhere.db",
    }
    grid = SweepSpec(tiny_config(FOUR), {"delta": [0.01, 0.02]}, seeds=[0, 1])
    back = SweepSpec.from_json(grid.to_json())
    assert [(t.trial_id, t.config) for t in trials(back)] == [
        (t.trial_id, t.config) for t in trials(grid)
    ]


def test_a_sweep_json_written_before_optuna_still_loads():
    """No search, trials, pruner or storage: a grid search (a random one if it had samples),
    no pruner, the study in the sweep folder."""
    old = {"base": tiny_config(FOUR).to_dict(), "grid": {"delta": [0.01, 0.02]}, "seeds": [0]}
    spec = SweepSpec.from_dict({**old, "samples": None, "sample_seed": 0, "name": "old"})
    assert (spec.search, spec.trials, spec.pruner, spec.storage) == ("grid", None, "none", None)
    assert len(trials(spec)) == 2
    sampled = SweepSpec.from_dict({**old, "samples": 1, "sample_seed": 3})
    assert (sampled.search, sampled.trials, sampled.sample_seed) == ("random", 1, 3)
    assert sampled.n_trials == 1
    with pytest.raises(SweepError, match="chooses its trials as it runs"):
        trials(sampled)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(grid={"deltaa": [0.01]}), "unknown knob 'deltaa' (did you mean delta?)"),
        (dict(grid={"delta": [-1, 0.01]}), "delta=-1: delta (the KL limit) must be > 0"),
        (dict(grid={"alpha": [0.5, 1.5]}), "alpha=1.5: alpha"),
        (dict(grid={"delta": []}), "delta: the list of values is empty"),
        (dict(grid={"delta": [0.01, 0.01]}), "listed twice"),
        (dict(grid={"seed": [1, 2]}), "seed is not a knob to sweep"),
        (dict(seeds=[]), "seeds is empty"),
        (dict(seeds=[0, 0]), "seeds lists a seed twice"),
        (dict(seeds=[-1]), "seeds must be whole numbers"),
        (dict(grid={"delta": KnobRange(0.001, 0.1)}), "grid search takes lists of values"),
        (
            dict(grid={"delta": KnobRange(0.001, 0.1)}, search="tpe"),
            "tpe search over a range (delta) needs the number of configurations",
        ),
        (
            dict(grid={"delta": KnobRange(0.1, 0.01)}, search="random", trials=2),
            "range low must be below high",
        ),
        (
            dict(grid={"activation": KnobRange(0, 1)}, search="random", trials=2),
            "activation is not numeric",
        ),
        (dict(trials=0), "trials must be a whole number from 1"),
        (dict(search="bayes"), "search must be one of grid, random, tpe, got 'bayes'"),
        (dict(pruner="asha"), "pruner must be one of none, median, hyperband, got 'asha'"),
        (dict(pruner_warmup=-1), "pruner_warmup must be a whole number >= 0"),
        (dict(storage="study.db"), "storage must be a database URL"),
        (
            dict(grid={"n_envs": [2, 3]}, search="random", trials=1),
            "n_envs=3: steps_per_iteration (512) must be a multiple of n_envs (3)",
        ),
        (
            dict(grid={"n_envs": [2, 3]}),
            "n_envs=3: steps_per_iteration (512) must be a multiple of n_envs (3)",
        ),
        (
            dict(grid={"alpha": [0.001 + 0.009 * i for i in range(101)]}, seeds=list(range(100))),
            "the limit is 10,000",
        ),
    ],
)
def test_bad_specs_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError) as info:
        SweepSpec(tiny_config(FOUR), **kwargs)
    assert message in str(info.value)


def test_bad_launches_start_nothing(tmp_path):
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(tiny_config(FOUR), {"delta": [0.01, 0.02]}, seeds=[0])
    with pytest.raises(ConfigError, match="workers"):
        run_sweep(spec, runs_dir, workers=0)
    with pytest.raises(ConfigError, match="backend"):
        run_sweep(spec, runs_dir, backend="slurm")
    bad_env = SweepSpec(tiny_config(FOUR), {"env_id": ["CartPole-v1", "NoSuchEnv-v9"]}, seeds=[0])
    with pytest.raises(ConfigError, match="NoSuchEnv-v9"):
        run_sweep(bad_env, runs_dir)
    with pytest.raises(SweepError, match="not a sweep id"):
        run_sweep(None, runs_dir, resume_sweep_id="../../etc")
    with pytest.raises(SweepError, match="no sweep"):
        run_sweep(None, runs_dir, resume_sweep_id="nosuch")
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


IMPORT_STARTS_NOTHING = """
import multiprocessing.spawn, os, sys
before = multiprocessing.spawn.get_preparation_data
import trpo.sweep
assert multiprocessing.spawn.get_preparation_data is before, "the spawn hook is installed"
heavy = ("ray", "optuna", "sqlalchemy", "trpo.sweep.local", "trpo.sweep.ray_backend")
loaded = [m for m in heavy if m in sys.modules]
assert not loaded, loaded
assert not [k for k in os.environ if k.startswith("RAY_")], "RAY_* variables are set"
"""


def test_importing_the_package_starts_nothing():
    """The backends, Optuna, Ray's environment variables and the spawn hook wait for a sweep
    to start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_STARTS_NOTHING],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# --- running -----------------------------------------------------------------------------------


def expected_results(runs):
    """Per configuration (delta): final returns of its runs, from load_metrics directly."""
    finals = {}
    for run in runs:
        frame = load_metrics(run.path)
        tail = max(1, math.ceil(0.1 * len(frame)))
        finals.setdefault(run.config().delta, []).append(
            frame["return_mean"].iloc[-tail:].dropna().mean()
        )
    return finals


@pytest.mark.slow  # multi-process sweep
def test_tiny_local_sweep_makes_tagged_runs_and_a_results_table(tmp_path):
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(tiny_config(FOUR), {"delta": [0.005, 0.02]}, seeds=[0, 1], name="tiny")
    events = []
    result = run_sweep(spec, runs_dir, workers=2, on_progress=events.append)

    assert result.all_finished and not result.stopped and result.workers == 2
    assert result.counts == {"finished": 4}
    runs = RunStore(runs_dir).runs()  # the sweeps/ folder is not a run
    assert len(runs) == 4
    assert (runs_dir / "sweeps" / result.sweep_id / "sweep.json").is_file()
    by_trial = {t.trial_id: t for t in trials(spec)}
    for run in runs:
        tags = run.meta()["tags"]
        assert tags["sweep"] == result.sweep_id
        trial = by_trial[tags["trial"]]
        assert tags["knobs"] == {"delta": trial.config.delta}
        assert run.config() == trial.config
        assert run.status()["state"] == "finished"
        assert run.has_checkpoint()
        assert len(load_metrics(run.path)) == 4
    assert set(sweep_runs(runs_dir, result.sweep_id)) == set(by_trial)
    assert [e.kind for e in events].count("ended") == 4
    assert events[-1].done == 4 and events[-1].total == 4

    table = sweep_results(runs_dir, result.sweep_id)
    assert len(table) == 2
    assert list(table["n_seeds"]) == [2, 2]
    assert list(table["n_finished"]) == [2, 2]
    finals = expected_results(runs)
    for _, row in table.iterrows():
        values = finals[row["delta"]]
        assert row["final_return_mean"] == pytest.approx(sum(values) / 2)
        assert row["final_return_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
        assert row["final_return_max"] == pytest.approx(max(values))
    assert table["final_return_mean"].is_monotonic_decreasing

    per_trial = sweep_trials(runs_dir, result.sweep_id)
    assert len(per_trial) == 4
    assert set(per_trial["status"]) == {"finished"}
    assert set(per_trial["iterations"]) == {4} and set(per_trial["env_steps"]) == {2048}
    for _, row in per_trial.iterrows():
        assert row["final_return"] == pytest.approx(final_return(load_metrics(row["run_dir"])))
    assert sweep_state(runs_dir, result.sweep_id) == "finished"
    assert [s.sweep_id for s in list_sweeps(runs_dir)] == [result.sweep_id]


@pytest.mark.slow  # multi-process sweep
def test_pool_workers_do_not_rerun_the_main_script(tmp_path, monkeypatch):
    """In a Streamlit server __main__ is the page script that ran last: spawned workers must
    not execute it (it would launch sweeps of its own)."""
    marker = tmp_path / "page-ran"
    page = tmp_path / "page.py"
    page.write_text(f"open({str(marker)!r}, 'w').write('the page ran')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    result = run_sweep(
        SweepSpec(tiny_config(FOUR, total_steps=512), seeds=[0]), tmp_path / "runs", workers=1
    )
    assert result.all_finished
    assert not marker.exists()


@pytest.mark.slow  # multi-process sweep
def test_failing_and_dying_trials_do_not_stop_the_others(tmp_path):
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(
        tiny_config(FOUR), {"env_id": ["CartPole-v1", "SweepRaise-v0", "SweepDie-v0"]}, seeds=[0, 1]
    )
    result = run_sweep(spec, runs_dir, workers=2, worker_init=register_envs)

    table = sweep_trials(runs_dir, result.sweep_id)
    assert len(RunStore(runs_dir).runs()) == 6  # one run per trial, even after pool restarts
    states = dict(zip(table["trial"], table["status"], strict=True))
    for trial in trials(spec):
        row = table[table["trial"] == trial.trial_id].iloc[0]
        if trial.config.env_id == "CartPole-v1":
            assert states[trial.trial_id] == "finished"
            assert row["iterations"] == 4  # complete, even if resumed after a pool restart
            assert list(load_metrics(row["run_dir"])["iteration"]) == [1, 2, 3, 4]
        elif trial.config.env_id == "SweepRaise-v0":
            assert states[trial.trial_id] == "failed"
            assert "RuntimeError: test env fault" in row["error"]
        else:
            assert states[trial.trial_id] == "failed"
            assert "worker process died" in row["error"]
    assert result.counts == {"finished": 2, "failed": 4}
    assert sweep_state(runs_dir, result.sweep_id) == "failed"
    # failed trials stay running in the study (a resume retries them), saying why
    study = optuna.load_study(
        study_name=result.sweep_id, storage=load_sweep(runs_dir, result.sweep_id).study_url
    )
    by_state = {}
    for t in study.trials:
        by_state.setdefault(t.state.name, []).append(t.user_attrs.get("run_state"))
    assert by_state == {"COMPLETE": [None] * 2, "RUNNING": ["failed"] * 4}
    results = sweep_results(runs_dir, result.sweep_id)
    assert results.iloc[0]["env_id"] == "CartPole-v1" and results.iloc[0]["n_seeds"] == 2
    assert list(results["n_failed"]) == [0, 2, 2]


@pytest.mark.slow  # multi-process sweep
def test_stop_stops_every_trial_and_leaves_the_rest_pending(tmp_path):
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(tiny_config(FOUR, total_steps=51_200, env_id="SweepSlow-v0"), seeds=[0, 1, 2])
    handle = start_sweep(spec, runs_dir, workers=2, worker_init=register_envs)
    assert (runs_dir / "sweeps" / handle.sweep_id / "sweep.json").is_file()

    def both_training():
        table = sweep_trials(runs_dir, handle.sweep_id)
        return (table["iterations"] >= 1).sum() == 2

    assert wait_for(both_training)
    assert sweep_state(runs_dir, handle.sweep_id) == "running"
    with pytest.raises(SweepError, match="already running"):
        run_sweep(None, runs_dir, resume_sweep_id=handle.sweep_id)
    stop_sweep(runs_dir, handle.sweep_id)  # the way another process would stop it
    handle.thread.join(60)
    assert not handle.alive and handle.error is None
    result = handle.result
    assert result.stopped
    table = sweep_trials(runs_dir, handle.sweep_id)
    assert sorted(table["status"]) == ["pending", "stopped", "stopped"]
    assert (table[table["status"] == "stopped"]["iterations"] < 100).all()
    assert len(RunStore(runs_dir).runs()) == 2  # the pending trial has no run yet
    assert sweep_state(runs_dir, handle.sweep_id) == "stopped"


@pytest.mark.slow  # multi-process sweep
def test_resume_skips_finished_trials_and_continues_stopped_ones(tmp_path):
    runs_dir = tmp_path / "runs"
    base = tiny_config(FOUR, total_steps=3072)  # six iterations
    # every trial at once (the seeds of a configuration run one after the other): the slow
    # trials (5 s an iteration) are still going when the fast ones have finished
    spec = SweepSpec(base, {"env_id": ["CartPole-v1", "SweepPoor-v0"]}, seeds=[0, 1])
    stop = threading.Event()
    ended = []

    def on_progress(event):
        if event.kind == "ended":
            ended.append(event.trial.trial_id)

    def slow_runs_training():
        table = sweep_trials(runs_dir, sweep_id)
        slow = table[table["env_id"] == "SweepPoor-v0"]
        fast = table[table["env_id"] == "CartPole-v1"]
        return (fast["status"] == "finished").all() and (slow["iterations"] >= 2).all()

    register_envs()  # here too: create_sweep checks the env ids in this process
    sweep_id = create_sweep(spec, runs_dir)
    thread = threading.Thread(
        target=run_sweep,
        args=(None, runs_dir),
        kwargs=dict(
            workers=4,
            stop_event=stop,
            on_progress=on_progress,
            resume_sweep_id=sweep_id,
            worker_init=register_envs,
        ),
    )
    thread.start()
    assert wait_for(slow_runs_training)
    stop.set()
    thread.join(60)
    before = sweep_trials(runs_dir, sweep_id).set_index("trial")
    slow = before[before["env_id"] == "SweepPoor-v0"]
    fast = before[before["env_id"] == "CartPole-v1"]
    assert set(slow["status"]) == {"stopped"} and (slow["iterations"] < 6).all()
    fast_files = {
        trial: (Path(row["run_dir"]) / "metrics.jsonl").stat() for trial, row in fast.iterrows()
    }
    slow_records = {trial: load_metrics(row["run_dir"]) for trial, row in slow.iterrows()}

    result = run_sweep(
        None, runs_dir, workers=2, resume_sweep_id=sweep_id, worker_init=register_envs
    )
    assert result.all_finished
    assert sorted(o.trial_id for o in result.outcomes.values() if o.skipped) == sorted(fast.index)
    after = sweep_trials(runs_dir, sweep_id).set_index("trial")
    assert len(RunStore(runs_dir).runs()) == 4  # the same runs, continued
    for trial, stat in fast_files.items():
        now = (Path(after.loc[trial, "run_dir"]) / "metrics.jsonl").stat()
        assert (now.st_mtime_ns, now.st_size) == (stat.st_mtime_ns, stat.st_size)
    for trial, old in slow_records.items():
        assert after.loc[trial, "run_dir"] == before.loc[trial, "run_dir"]
        frame = load_metrics(after.loc[trial, "run_dir"])
        assert list(frame["iteration"]) == list(range(1, 7))
        kept = len(old)  # every record up to the stop was checkpointed (checkpoint_every 1)
        assert frame["env_steps"].iloc[:kept].tolist() == old["env_steps"].tolist()
        assert frame["return_mean"].iloc[:kept].equals(old["return_mean"])
    assert sweep_state(runs_dir, sweep_id) == "finished"
    # the study agrees: one Optuna trial per run, none asked twice, each with its value
    info = load_sweep(runs_dir, sweep_id)
    study = optuna.load_study(study_name=sweep_id, storage=info.study_url)
    assert len(study.trials) == 4
    assert {t.state for t in study.trials} == {optuna.trial.TrialState.COMPLETE}
    assert {t.user_attrs["trial"] for t in study.trials} == set(after.index)
    for t in study.trials:
        frame = load_metrics(after.loc[t.user_attrs["trial"], "run_dir"])
        assert t.value == pytest.approx(final_return(frame))
    launches = load_sweep(runs_dir, sweep_id).launches
    assert len(launches) == 2 and launches[0]["stopped"] and not launches[1]["stopped"]


# --- the command line ----------------------------------------------------------------------------


def run_cli(*args, cwd, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "trpo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        **kwargs,
    )


TINY_ARGS = ["--total-steps", "2048", "--steps-per-iteration", "512", "--vf-epochs", "1",
             "--cg-iters", "3"]  # fmt: skip


@pytest.mark.slow  # multi-process sweep
def test_cli_sweep_end_to_end(tmp_path):
    result = run_cli(
        "sweep", "--env", "CartPole-v1", "--delta", "0.005,0.02", "--seeds", "0,1",
        *TINY_ARGS, "--workers", "2", "--runs-dir", "myruns", "--name", "cli sweep",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    sweeps = list((tmp_path / "myruns" / "sweeps").iterdir())
    assert len(sweeps) == 1
    sweep_id = sweeps[0].name
    assert f"sweep {sweep_id}: 4 trials (2 configurations x 2 seeds)" in out
    assert f"sweep folder: myruns/sweeps/{sweep_id}" in out
    assert out.count("] finished ") == 4  # one line per finished trial
    assert "[4/4] finished" in out
    table = [line for line in out.splitlines() if line.startswith("| 0.0")]
    assert len(table) == 2  # the results table, one row per configuration
    assert "4 finished" in out
    assert len(RunStore(tmp_path / "myruns").runs()) == 4
    frame = sweep_results(tmp_path / "myruns", sweep_id)
    assert list(frame["n_seeds"]) == [2, 2]

    again = run_cli("sweep", "--resume", sweep_id, "--runs-dir", "myruns", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "4 trials had finished before and were not run again" in again.stdout
    assert len(RunStore(tmp_path / "myruns").runs()) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--delta=-1,0.01"], "delta=-1.0: delta (the KL limit) must be > 0"),
        (["--delta", "0.01,abc"], "--delta: delta (the KL limit) must be a number, got 'abc'"),
        (["--max-backtracks", "5,7.5"], "--max-backtracks: max_backtracks (K) must be a whole"),
        (["--normalize-rewards", "true,maybe"], "normalize_rewards must be true or false"),
        (["--seeds", "0,x"], "--seeds: expected whole numbers"),
        (["--seeds", ","], "seeds is empty"),
        (["--delta", "0.001:0.1"], "--delta: a range (LOW:HIGH) is searched by --search random"),
        (["--delta", "0.001:0.1", "--search", "tpe"], "--search tpe over a range needs --trials"),
        (["--trials", "0"], "--trials must be at least 1, got 0"),
        (["--search", "bayes"], "--search must be one of grid, random, tpe, got 'bayes'"),
        (["--pruner", "asha"], "--pruner must be one of none, median, hyperband, got 'asha'"),
        (["--pruner-warmup", "2"], "--pruner-startup and --pruner-warmup need --pruner"),
        (["--pruner", "hyperband", "--pruner-startup", "2"], "a setting of --pruner median"),
        (["--storage", "study.db"], "--storage: a database URL such as sqlite:///"),
        (["--storage", "nosuchdb://x/y"], "--storage: storage nosuchdb://x/y: cannot open it"),
        (["--storage", "sqlite:////no/such/folder/s.db"], "--storage: storage sqlite:////no/such"),
        (["--resume", "x", "--search", "tpe"], "--resume takes only"),
        (["--delta", "0.01,,0.02"], "an empty value"),
        (["--env", "CartPole-v1,NoSuchEnv-v9"], "NoSuchEnv-v9"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--preset", "Nope-v1"], "no preset for 'Nope-v1'"),
        (["--resume", "nosuch"], "no sweep at"),
        (["--resume", "x", "--delta", "0.1"], "--resume takes only"),
        (["--deltaa", "0.1"], "unrecognized arguments"),
    ],
)
def test_cli_sweep_bad_input_exits_2_and_starts_nothing(tmp_path, capsys, args, message):
    runs_dir = str(tmp_path / "runs")
    try:
        code = main(["sweep", *args, "--runs-dir", runs_dir])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # multi-process sweep
def test_cli_sweep_bad_value_in_a_subprocess(tmp_path):
    result = run_cli("sweep", "--alpha", "0.5,1.5", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: invalid configuration:\n  - alpha=1.5: alpha" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # multi-process sweep
def test_cli_sweep_ctrl_c_stops_the_trials(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trpo",
            "sweep",
            "--env",
            "CartPole-v1",
            "--delta",
            "0.01,0.02",
            "--total-steps",
            "5000000",
            "--steps-per-iteration",
            "512",
            "--vf-epochs",
            "1",
            "--cg-iters",
            "3",
            "--workers",
            "2",
            "--runs-dir",
            "runs",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:

        def training():
            runs = RunStore(tmp_path / "runs").runs()
            return len(runs) == 2 and all(len(load_metrics(r.path)) >= 2 for r in runs)

        assert wait_for(training)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the driver and its workers
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert "stopping" in err
    assert "resume with: python -m trpo sweep --resume" in out
    states = [r.status()["state"] for r in RunStore(tmp_path / "runs").runs()]
    assert states == ["stopped", "stopped"]
