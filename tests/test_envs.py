"""Environment ids, supported spaces and vector env creation."""

import sys
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import FlattenObservation

from trpo.envs import (
    SUPPORTED,
    EnvError,
    SpaceInfo,
    check_env_id,
    make_env,
    make_render_env,
    make_vector_env,
    space_info,
)


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
        spaces.MultiDiscrete([[2, 3], [4, 5]]),  # a grid of components
        spaces.MultiBinary([2, 2]),
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
        spaces.Box(-1.0, 1.0, (4, 4), dtype=np.float32),
        spaces.Discrete(5),
        spaces.Dict({"x": spaces.Sequence(spaces.Discrete(2))}),  # no fixed length
    ],
)
def test_unsupported_observation_spaces_are_refused(observation_space):
    with pytest.raises(EnvError) as info:
        space_info(observation_space, spaces.Discrete(2))
    message = str(info.value)
    assert SUPPORTED in message and "1-D Box observations" in message
    assert "observation space" in message
    assert "image" not in message


@pytest.mark.parametrize(
    "observation_space",
    [
        spaces.Box(0, 255, (84, 84, 3), dtype=np.uint8),
        spaces.Box(0.0, 1.0, (3, 64, 64), dtype=np.float32),
        spaces.Box(0, 255, (84, 84), dtype=np.uint8),  # grey
        spaces.Dict({"pos": BOX3, "camera": spaces.Box(0, 255, (8, 8, 3), dtype=np.uint8)}),
        spaces.Tuple((BOX3, spaces.Box(0, 255, (8, 8), dtype=np.uint8))),
    ],
)
def test_image_observations_are_refused_by_name(observation_space):
    with pytest.raises(EnvError) as info:
        space_info(observation_space, spaces.Discrete(2), "Pixels-v0")
    message = str(info.value)
    assert "Pixels-v0 has observation space" in message
    assert "image observations are not supported" in message and SUPPORTED in message


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
    assert info.flattened_from is None


def test_multi_discrete_and_multi_binary_actions():
    info = space_info(BOX3, spaces.MultiDiscrete([3, 2, 4], start=[1, 0, -2]))
    assert (info.action_kind, info.act_dim, info.action_nvec) == ("multi_discrete", 3, (3, 2, 4))
    assert info.action_shape == (3,) and info.policy_outputs == 9 and not info.discrete
    np.testing.assert_array_equal(info.action_start, [1, 0, -2])
    np.testing.assert_array_equal(info.env_action(np.array([[0, 1, 3]])), [[1, 1, 1]])
    info = space_info(BOX3, spaces.MultiBinary(5))
    assert (info.action_kind, info.act_dim, info.policy_outputs) == ("multi_binary", 5, 5)
    assert info.action_dtype is np.int64 and info.action_low is None
    bits = np.array([1, 0, 1, 1, 0])
    assert info.env_action(bits) is bits


def test_env_action_offsets_discrete_and_clips_box():
    info = space_info(BOX3, spaces.Discrete(3, start=-1))
    assert info.env_action(np.array([0, 2])).tolist() == [-1, 1]
    box = space_info(BOX3, spaces.Box(-1.0, 2.0, (2,)))
    np.testing.assert_array_equal(box.env_action(np.array([-3.0, 2.5])), [-1.0, 2.0])


@pytest.mark.parametrize(
    ("observation_space", "dim", "kind"),
    [
        (spaces.Dict({"x": BOX3}), 3, "Dict"),
        (spaces.Dict({"pos": BOX3, "mode": spaces.Discrete(4)}), 7, "Dict"),
        (spaces.Tuple((spaces.Discrete(32), spaces.Discrete(11), spaces.Discrete(2))), 45, "Tuple"),
        (spaces.Tuple((BOX3, spaces.Dict({"bits": spaces.MultiBinary(2)}))), 5, "Tuple"),
    ],
)
def test_dict_and_tuple_observations_are_flattened(observation_space, dim, kind):
    info = space_info(observation_space, spaces.Discrete(2))
    assert (info.obs_dim, info.flattened_from) == (dim, kind)
    assert dim == spaces.flatdim(observation_space)


@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("CartPole-v1", SpaceInfo(4, "discrete", 2)),
        ("Pendulum-v1", SpaceInfo(3, "box", 1, np.array([-2.0]), np.array([2.0]))),
        ("HalfCheetah-v5", SpaceInfo(17, "box", 6, -np.ones(6), np.ones(6))),
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


class _DictObsEnv(gym.Env):
    """Dict observations (a Box and a Discrete), Discrete actions, renders a tiny RGB frame."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 30}
    observation_space = spaces.Dict(
        {"pos": spaces.Box(-1.0, 1.0, (2,), np.float32), "mode": spaces.Discrete(3)}
    )
    action_space = spaces.Discrete(2)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def _obs(self):
        return {"pos": np.array([0.5, -0.25], np.float32), "mode": 2}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), 1.0, False, False, {}

    def render(self):
        return np.zeros((4, 4, 3), np.uint8)


@pytest.fixture
def dict_env_id():
    env_id = "TrpoTestDictObs-v0"
    gym.register(env_id, entry_point=_DictObsEnv, max_episode_steps=5)
    yield env_id
    gym.registry.pop(env_id, None)


def test_every_way_of_making_an_env_flattens_dict_observations(dict_env_id):
    expected = [0.0, 0.0, 1.0, 0.5, -0.25]  # Dict keys sorted: mode 2 one-hot, then pos
    env, info = make_env(dict_env_id)
    assert isinstance(env, FlattenObservation)
    assert (info.obs_dim, info.flattened_from) == (5, "Dict")
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, expected)
    env.close()
    env, info = make_render_env(dict_env_id)
    assert isinstance(env, FlattenObservation) and info.flattened_from == "Dict"
    np.testing.assert_allclose(env.reset(seed=0)[0], expected)
    assert env.render().shape == (4, 4, 3)
    env.close()
    for mode in ("sync", "async"):
        envs, info = make_vector_env(dict_env_id, 2, mode)
        try:
            assert (info.obs_dim, info.flattened_from) == (5, "Dict")
            assert envs.single_observation_space.shape == (5,)
            obs, _ = envs.reset(seed=0)
            np.testing.assert_allclose(obs, [expected, expected])
            obs, *_ = envs.step(np.array([0, 1]))
            assert obs.shape == (2, 5)
        finally:
            envs.close()


def test_flat_box_envs_are_not_wrapped():
    env, info = make_env("CartPole-v1")
    assert not isinstance(env, FlattenObservation) and info.flattened_from is None
    env.close()
