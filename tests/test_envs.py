"""Environment ids, supported spaces and vector env creation."""

import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from trpo.envs import SUPPORTED, EnvError, SpaceInfo, check_env_id, make_vector_env, space_info


def test_module_colon_id_is_refused_without_importing_the_module(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    module = "trpo_marker_module_for_tests"
    (tmp_path / f"{module}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EnvError, match="names a module"):
        check_env_id(f"{module}:Thing-v0")
    assert not marker.exists()
    assert module not in sys.modules


def test_marker_module_would_be_noticed(tmp_path, monkeypatch):
    # The check above can fail: gymnasium itself does import 'module:' ids.
    marker = tmp_path / "imported.txt"
    module = "trpo_marker_module_for_tests_2"
    (tmp_path / f"{module}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(gym.error.Error):
        gym.make(f"{module}:Thing-v0")
    assert marker.exists()
    sys.modules.pop(module, None)


@pytest.mark.parametrize("bad", ["NoSuchEnv-v0", "CartPole", "cartpole-v1", "", None])
def test_unregistered_ids_are_refused_with_a_message(bad):
    with pytest.raises(EnvError) as info:
        check_env_id(bad)
    message = str(info.value)
    assert "CartPole-v1" in message  # says what a valid id looks like
    if bad:
        assert repr(bad) in message and "not a registered" in message


def test_registered_ids_are_accepted():
    spec = check_env_id("CartPole-v1")
    assert spec.id == "CartPole-v1"
    assert check_env_id("Pendulum-v1").id == "Pendulum-v1"


BOX3 = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)


@pytest.mark.parametrize(
    "action_space",
    [
        spaces.Dict({"a": spaces.Discrete(2)}),
        spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))),
        spaces.MultiDiscrete([2, 3]),
        spaces.MultiBinary(4),
        spaces.Box(-1.0, 1.0, (2, 2), dtype=np.float32),
    ],
)
def test_unsupported_action_spaces_are_refused(action_space):
    with pytest.raises(EnvError) as info:
        space_info(BOX3, action_space, "Some-v0")
    message = str(info.value)
    assert SUPPORTED in message and "Discrete" in message and "Some-v0" in message
    assert "action space" in message


@pytest.mark.parametrize(
    "observation_space",
    [
        spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8),  # an image
        spaces.Box(-1.0, 1.0, (4, 4), dtype=np.float32),
        spaces.Discrete(5),
        spaces.Dict({"x": BOX3}),
    ],
)
def test_unsupported_observation_spaces_are_refused(observation_space):
    with pytest.raises(EnvError) as info:
        space_info(observation_space, spaces.Discrete(2))
    message = str(info.value)
    assert SUPPORTED in message and "1-D Box observations" in message
    assert "observation space" in message


def test_supported_spaces():
    info = space_info(BOX3, spaces.Discrete(5))
    assert (info.obs_dim, info.discrete, info.act_dim) == (3, True, 5)
    assert info.action_low is None and info.action_high is None
    box = spaces.Box(
        np.array([-1.0, -2.0], dtype=np.float32), np.array([1.0, 3.0], dtype=np.float32)
    )
    info = space_info(spaces.Box(-np.inf, np.inf, (7,)), box)
    assert (info.obs_dim, info.discrete, info.act_dim) == (7, False, 2)
    np.testing.assert_array_equal(info.action_low, [-1.0, -2.0])
    np.testing.assert_array_equal(info.action_high, [1.0, 3.0])
    assert info.action_low.dtype == np.float64


@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("CartPole-v1", SpaceInfo(4, True, 2, None, None)),
        ("Pendulum-v1", SpaceInfo(3, False, 1, np.array([-2.0]), np.array([2.0]))),
        ("HalfCheetah-v5", SpaceInfo(17, False, 6, -np.ones(6), np.ones(6))),
    ],
)
def test_make_vector_env(env_id, expected):
    if env_id.startswith("HalfCheetah"):
        pytest.importorskip("mujoco")
    envs, info = make_vector_env(env_id, 2)
    try:
        assert envs.num_envs == 2
        assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        assert (info.obs_dim, info.discrete, info.act_dim) == (
            expected.obs_dim,
            expected.discrete,
            expected.act_dim,
        )
        if expected.discrete:
            assert info.action_low is None and info.action_high is None
        else:
            np.testing.assert_array_equal(info.action_low, expected.action_low)
            np.testing.assert_array_equal(info.action_high, expected.action_high)
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, expected.obs_dim)
        obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert obs.shape == (2, expected.obs_dim) and reward.shape == (2,)
        assert terminated.shape == truncated.shape == (2,)
    finally:
        envs.close()


def test_make_vector_env_refuses_module_ids_and_unknown_ids():
    with pytest.raises(EnvError, match="names a module"):
        make_vector_env("os:Thing-v0", 1)
    with pytest.raises(EnvError, match="not a registered"):
        make_vector_env("NoSuchEnv-v0", 1)
