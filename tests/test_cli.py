"""`python -m trpo`: train, eval, list, and clear errors (exit code 2, no traceback)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_config
from trpo.cli import build_parser, config_from_args, main
from trpo.config import TRPOConfig
from trpo.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trpo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def cli_in_process(*args: str, cwd: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    """`python -m trpo ARGS` run by this process in `cwd`: (exit code, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # python -m trpo processes
def test_train_eval_list_end_to_end(tmp_path):
    result = run_cli(
        "train",
        "--env",
        "CartPole-v1",
        "--total-steps",
        "1024",
        "--steps-per-iteration",
        "512",
        "--vf-epochs",
        "2",
        "--seed",
        "5",
        "--name",
        "cli run",
        "--runs-dir",
        "myruns",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "it    2 |" in result.stdout  # one summary line per iteration
    folders = list((tmp_path / "myruns").iterdir())
    assert len(folders) == 1
    assert f"run folder: myruns/{folders[0].name}" in result.stdout

    evaluated = run_cli("eval", str(folders[0]), "--episodes", "3", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    data = json.loads(evaluated.stdout)
    assert len(data["returns"]) == 3
    assert data["mean_return"] == pytest.approx(sum(data["returns"]) / 3)
    assert data["std_return"] >= 0

    listed = run_cli("list", "--runs-dir", "myruns", cwd=tmp_path)
    assert listed.returncode == 0
    assert folders[0].name in listed.stdout and "finished" in listed.stdout
    assert "cli run" in listed.stdout
    assert json.loads((folders[0] / "meta.json").read_text())["launcher"] == "CLI"

    resumed = run_cli(
        "train", "--resume", str(folders[0]), "--total-steps", "1536", "--quiet", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "3 iterations" in resumed.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--delta", "0"], "delta"),
        (["train", "--delta", "nan"], "delta"),
        (["train", "--delta", "inf"], "delta"),
        (["train", "--delta", "abc"], "delta (the KL limit) must be a number, got 'abc'"),
        (["train", "--alpha", "1"], "alpha"),
        (["train", "--max-backtracks", "0"], "max_backtracks"),
        (["train", "--max-backtracks", "2.5"], "max_backtracks (K) must be a whole number"),
        (["train", "--total-steps", "1e3x"], "total_steps must be a whole number"),
        (["train", "--vectorization", "threads"], "invalid choice"),
        (["train", "--env", "os:system"], "module"),
        (["train", "--env", "NotAnEnv-v9"], "not a registered"),
        (["train", "--env", "FrozenLake-v1"], "supported"),
        (["train", "--preset", "Nope-v0"], "no preset"),
        (["train", "--steps-per-iteration", "3", "--n-envs", "2"], "steps_per_iteration"),
        (["train", "--hidden-sizes", "64,x"], "layer widths"),
        (["train", "--no-such-option"], "unrecognized"),
        (["eval", "missing-run-dir"], "not a run folder"),
        (["train", "--resume", "missing-run-dir"], "not a run folder"),
        (["eval", "missing", "--episodes", "0"], "episodes"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_creates_nothing(
    tmp_path, monkeypatch, capsys, args, message
):
    runs = ["--runs-dir", "runs"] if args[0] == "train" else []
    code, _, err = cli_in_process(
        *args, *runs, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # python -m trpo processes
def test_bad_input_in_a_process_of_its_own_exits_2_without_a_traceback(tmp_path):
    """The same through `python -m trpo`, once for a bad value and once for an unknown env."""
    for args, message in [
        (["train", "--delta", "abc"], "delta (the KL limit) must be a number, got 'abc'"),
        (["train", "--env", "NotAnEnv-v9"], "not a registered"),
    ]:
        result = run_cli(*args, "--runs-dir", "runs", cwd=tmp_path)
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "runs").exists()


def test_every_config_knob_is_an_option():
    parser = build_parser()
    args = parser.parse_args(
        [
            "train",
            "--preset",
            "Pendulum-v1",
            "--delta",
            "0.02",
            "--alpha",
            "0.5",
            "--max-backtracks",
            "7",
            "--hidden-sizes",
            "32,16",
            "--normalize-observations",
            "--seed",
            "9",
            "--env",
            "Pendulum-v1",
        ]
    )
    config = config_from_args(args)
    assert config == TRPOConfig(
        **{
            **PRESETS["Pendulum-v1"],
            "env_id": "Pendulum-v1",
            "delta": 0.02,
            "alpha": 0.5,
            "max_backtracks": 7,
            "hidden_sizes": (32, 16),
            "normalize_observations": True,
            "seed": 9,
        }
    )
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for name in TRPOConfig.__dataclass_fields__:
        option = {"env_id": "--env"}.get(name, "--" + name.replace("_", "-"))
        assert option in help_text, option


def test_main_returns_2_on_config_error(capsys):
    assert main(["train", "--delta", "-1"]) == 2
    err = capsys.readouterr().err
    assert "delta (the KL limit) must be > 0" in err


# --- budgets mean what they say ----------------------------------------------------------------


def test_resume_to_a_budget_already_trained_is_refused(tmp_path, monkeypatch, capsys):
    def cli(*args: str) -> tuple[int, str, str]:
        return cli_in_process(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    code, _, err = cli(
        "train", "--preset", "CartPole-v1", "--total-steps", "2048", "--vf-epochs", "1",
        "--quiet", "--runs-dir", "runs",
    )  # fmt: skip
    assert code == 0, err
    (folder,) = (tmp_path / "runs").iterdir()
    config_before = (folder / "config.json").read_text()
    metrics_before = (folder / "metrics.jsonl").read_text()
    for budget in ("1024", "2048"):
        code, _, err = cli("train", "--resume", str(folder), "--total-steps", budget)
        assert code == 2, err
        assert "2,048 steps this run has already trained" in err
        assert "Traceback" not in err
    code, _, err = cli("train", "--resume", str(folder))  # nothing left to do
    assert code == 2
    assert "already trained its 2,048 steps" in err
    assert (folder / "config.json").read_text() == config_before
    assert (folder / "metrics.jsonl").read_text() == metrics_before
    code, out, err = cli("train", "--resume", str(folder), "--total-steps", "3000")
    assert code == 0, err
    assert "finished: 3 iterations, 3,072 steps" in out


def test_budgets_are_rounded_up_to_whole_iterations():
    config = TRPOConfig(total_steps=2500, steps_per_iteration=1024)
    assert (config.planned_iterations, config.planned_steps) == (3, 3072)
    normalised = config.replace(normalize_rewards=True)  # warm-up batch + 2 iterations
    assert (normalised.warmup_steps, normalised.planned_iterations) == (1024, 2)
    assert normalised.planned_steps == 3072
    exact = TRPOConfig(total_steps=4096, steps_per_iteration=1024)
    assert exact.planned_steps == 4096 and exact.planned_iterations == 4
    from trpo.config import knob_help

    assert "whole iterations" in knob_help()["total_steps"]  # the CLI's --help shows this text


# --- loops over a user's env end ---------------------------------------------------------------

USER_ENV_CLI = (
    "import sys; from tests.user_envs import register_user_envs; register_user_envs(); "
    "from trpo.cli import main; sys.exit(main(sys.argv[1:]))"
)


def run_cli_with_user_envs(*args: str, cwd: Path, timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-c", USER_ENV_CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.slow  # python -m trpo processes
def test_eval_of_an_env_whose_episodes_never_end_stops_at_the_cap(tmp_path):
    trained = run_cli_with_user_envs(
        "train", "--env", "NeverEnds-v0", "--total-steps", "512", "--steps-per-iteration",
        "256", "--vf-epochs", "1", "--quiet", "--runs-dir", "runs", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    # no time limit declared: the documented default cap (10,000 steps), well within 30 s
    result = run_cli_with_user_envs("eval", str(folder), "--episodes", "1", "--json",
                                    cwd=tmp_path, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["lengths"] == [10_000] and data["cut"] == [True] and data["max_steps"] == 10_000
    capped = run_cli_with_user_envs("eval", str(folder), "--episodes", "2", "--max-steps", "50",
                                    cwd=tmp_path, timeout=30)  # fmt: skip
    assert capped.returncode == 0, capped.stderr
    assert "2 of 2 episodes cut at the step cap of 50 steps" in capped.stdout
    bad = run_cli_with_user_envs("eval", str(folder), "--max-steps", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--max-steps must be at least 1" in bad.stderr


def test_eval_uses_the_env_time_limit_and_reports_no_cut(tmp_path):
    from trpo.evaluate import evaluate
    from trpo.session import TrainingSession
    from trpo.store import RunStore

    session = TrainingSession.new(tiny_config("Pendulum-v1", total_steps=512), RunStore(tmp_path))
    session.run(None)
    result = evaluate(session.run_folder.path, episodes=2)
    assert result.lengths == [200, 200] and result.cut == [False, False]
    assert result.max_steps == 200


@pytest.mark.slow  # python -m trpo processes
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupting_train_stops_after_the_iteration_with_a_checkpoint(tmp_path, how):
    """The first Ctrl-C (or a SIGTERM) stops the run after its current iteration: state
    'stopped', a checkpoint of the last record, exit 0; the run resumes from there."""
    import signal
    import time

    from trpo.store import RunStore, load_metrics

    runs = tmp_path / "runs"
    knobs = ["--total-steps", "10000000", "--steps-per-iteration", "512", "--vf-epochs", "1"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "trpo", "train", "--runs-dir", str(runs), "--quiet", *knobs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    deadline = time.monotonic() + 120
    while not (RunStore(runs).runs() and len(load_metrics(RunStore(runs).runs()[0].path)) >= 2):
        assert time.monotonic() < deadline and cli.poll() is None, cli.stderr
        time.sleep(0.1)
    cli.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert "stopping after the current iteration" in err and out.startswith("run folder")
    [run] = RunStore(runs).runs()
    assert run.state() == "stopped"
    assert run.load_checkpoint().meta["iteration"] == len(load_metrics(run.path))


def test_eval_and_resume_take_a_run_id_from_the_runs_dir(good_run, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(good_run, runs / good_run.name)
    code = main(["eval", good_run.name, "--runs-dir", str(runs), "--episodes", "1", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["run_dir"] == str(runs / good_run.name)
    # no such id (and no such folder): the message names it, exit 2
    assert main(["eval", "no-such-run", "--runs-dir", str(runs)]) == 2
    assert "no-such-run" in capsys.readouterr().err
    # resume by id: the budget is already spent, so it refuses by name (not "not a run folder")
    assert main(["train", "--resume", good_run.name, "--runs-dir", str(runs), "--quiet"]) == 2
    assert "not a run folder" not in capsys.readouterr().err
