"""Environments that break the contract of their declared spaces: a clear error at creation
(exit 2, no run folder), or a failed run naming the iteration, the env and the problem."""

import json

import pytest

from tests.test_cli import run_cli_with_user_envs
from tests.user_envs import BoxFour, register_contract_envs
from trpo.contracts import check_contract
from trpo.envs import EnvError, make_vector_env

register_contract_envs()


@pytest.mark.slow  # python -m trpo processes
@pytest.mark.parametrize("env_id, shape", [("WrongShape-v0", "(4, 1)"), ("LongShape-v0", "(5,)")])
def test_wrong_observation_shape_is_refused_at_creation(tmp_path, env_id, shape):
    result = run_cli_with_user_envs(
        "train", "--env", env_id, "--total-steps", "512", "--steps-per-iteration", "256",
        "--runs-dir", "runs", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr
    assert f"environment '{env_id}'" in message
    assert f"shape {shape}" in message and "Box(-1.0, 1.0, (4,), float32)" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_non_finite_reset_observation_is_refused():
    with pytest.raises(EnvError, match=r"NanReset-v0.*non-finite"):
        make_vector_env("NanReset-v0", 2)


def test_contract_check_names_reward_and_flags_problems():
    class BadReward(BoxFour):
        def step(self, action):
            return self._obs(), float("nan"), False, False, {}

    class BadFlag(BoxFour):
        def step(self, action):
            return self._obs(), 0.0, 0, False, {}

    with pytest.raises(ValueError, match="reward nan"):
        check_contract(BadReward(), "BadReward-v0")
    with pytest.raises(ValueError, match="terminated=0"):
        check_contract(BadFlag(), "BadFlag-v0")
    check_contract(BoxFour(), "Fine-v0")  # the declared shape passes


@pytest.mark.slow  # python -m trpo processes
@pytest.mark.parametrize(
    "env_id, problem",
    [
        ("WrongLater-v0", "ValueError"),
        ("RaisesLater-v0", "RuntimeError: the simulator lost its licence server"),
    ],
)
def test_violation_during_training_fails_the_run_with_a_message(tmp_path, env_id, problem):
    result = run_cli_with_user_envs(
        "train", "--env", env_id, "--total-steps", "2048", "--steps-per-iteration", "256",
        "--vf-epochs", "1", "--quiet", "--runs-dir", "runs", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "failed"
    error = status["error"]
    iteration = 1 if env_id == "WrongLater-v0" else 3  # steps 5 and 300 of each env
    assert error.startswith(f"iteration {iteration}: environment '{env_id}' failed while stepping")
    assert problem in error and "Box(-1.0, 1.0, (4,), float32)" in error
    assert f"error: run failed: {error}" in result.stderr
