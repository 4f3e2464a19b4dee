"""`python -m trpo`: train, eval, list, and clear errors (exit code 2, no traceback)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trpo.cli import build_parser, config_from_args, main
from trpo.config import PRESETS, TRPOConfig

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
        (["train", "--delta", "abc"], "expected a number"),
        (["train", "--alpha", "1"], "alpha"),
        (["train", "--max-backtracks", "0"], "max_backtracks"),
        (["train", "--max-backtracks", "2.5"], "invalid int"),
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
def test_bad_input_exits_2_with_a_message_and_creates_nothing(tmp_path, args, message):
    result = (
        run_cli(*args, "--runs-dir", "runs", cwd=tmp_path)
        if args[0] == "train"
        else (run_cli(*args, cwd=tmp_path))
    )
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
