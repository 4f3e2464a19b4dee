"""The environment catalog: what the dashboard offers is what this install can train."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from tests.conftest import tiny_config
from trpo import catalog


class _FlatEnv(gym.Env):
    observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = spaces.Discrete(2)


class _ImageEnv(gym.Env):
    observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = spaces.Discrete(2)


class _DictMultiDiscreteEnv(gym.Env):
    observation_space = spaces.Dict(
        {"pos": spaces.Box(-1.0, 1.0, (3,), np.float32), "mode": spaces.Discrete(4)}
    )
    action_space = spaces.MultiDiscrete([3, 2, 4])


class _TupleMultiBinaryEnv(gym.Env):
    observation_space = spaces.Tuple((spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(3)))
    action_space = spaces.MultiBinary(3)


def test_known_envs_are_listed_in_their_groups() -> None:
    envs = catalog.supported_envs()
    classic = envs["Classic control"]
    for env_id in ("CartPole-v1", "Pendulum-v1", "Acrobot-v1"):
        assert env_id in classic
    pytest.importorskip("mujoco")
    assert {"HalfCheetah-v5", "Hopper-v5"} <= set(envs["MuJoCo"])


def test_lists_are_sorted_grouped_and_non_empty() -> None:
    envs = catalog.supported_envs()
    assert list(envs) == [g for g in catalog.GROUPS if g in envs]
    for ids in envs.values():
        assert ids and ids == sorted(ids, key=str.lower)
    every = catalog.all_supported()
    assert len(every) == len(set(every))
    assert catalog.group_for("CartPole-v1") == "Classic control"
    assert catalog.group_for("FrozenLake-v1") is None


def test_unsupported_spaces_wrappers_and_old_versions_are_absent() -> None:
    every = set(catalog.all_supported())
    assert "FrozenLake-v1" not in every  # Discrete observations
    assert not any(e.startswith("CarRacing") for e in every)  # image observations
    assert not any(":" in e or "/" in e for e in every)  # no module: ids, no jax namespaces
    assert "GymV26Environment-v0" not in every
    assert "CartPole-v0" not in every  # CartPole-v1 is newer
    if "Hopper-v5" in every:
        assert "Hopper-v4" not in every


def test_every_listed_env_can_be_created_here() -> None:
    from trpo.envs import make_env

    for env_id in catalog.all_supported():
        env, info = make_env(env_id)
        env.close()
        assert info.obs_dim >= 1


@pytest.mark.parametrize("group", catalog.GROUPS)
def test_the_first_env_of_each_group_trains_one_iteration(group: str) -> None:
    """What the picker offers really trains: one tiny iteration of each group's first env
    (classic control, MuJoCo, Box2D, others), with finite numbers and the steps it played."""
    from trpo.trainer import Trainer

    envs = catalog.supported_envs()
    if group not in envs:
        pytest.skip(f"no {group} environment can be created here")
    env_id = envs[group][0]
    config = tiny_config(
        env_id, steps_per_iteration=64, total_steps=64, vf_minibatch=32, hidden_sizes=(16,)
    )
    trainer = Trainer(config)
    try:
        records = list(trainer.run())
    finally:
        trainer.close()
    [record] = records
    assert (record.iteration, record.env_steps, trainer.env_steps) == (1, 64, 64), env_id
    for name in ("value_loss", "entropy", "surrogate_before", "surrogate_after", "grad_norm"):
        assert math.isfinite(getattr(record, name)), (env_id, name)
    numbers = {
        f.name: getattr(record, f.name)
        for f in dataclasses.fields(record)
        if isinstance(getattr(record, f.name), float)
    }
    assert all(math.isfinite(v) for v in numbers.values()), (env_id, numbers)
    assert record.cg_residuals and all(math.isfinite(r) for r in record.cg_residuals), env_id
    assert record.line_search, env_id


def test_scan_is_cached_and_timed() -> None:
    first = catalog.supported_envs()
    assert catalog.last_scan_seconds is not None
    assert catalog.supported_envs() == first
    assert catalog.supported_envs() is not first  # callers get their own copy


def test_registered_envs_are_filtered_by_their_spaces() -> None:
    entry = f"{__name__}:"
    gym.register("TrpoTestFlat-v0", entry_point=entry + "_FlatEnv")
    gym.register("TrpoTestFlat-v1", entry_point=entry + "_FlatEnv")
    gym.register("TrpoTestImage-v0", entry_point=entry + "_ImageEnv")
    try:
        catalog.clear_cache()
        envs = catalog.supported_envs()
        assert "TrpoTestFlat-v1" in envs["Other"]
        assert "TrpoTestFlat-v0" not in envs["Other"]
        assert "TrpoTestImage-v0" not in catalog.all_supported()
    finally:
        for env_id in ("TrpoTestFlat-v0", "TrpoTestFlat-v1", "TrpoTestImage-v0"):
            del gym.registry[env_id]
        catalog.clear_cache()
    assert "TrpoTestFlat-v1" not in catalog.all_supported()


def test_describe_names_the_spaces() -> None:
    assert catalog.describe("CartPole-v1") == "4 observations · 2 discrete actions"
    assert "continuous" in catalog.describe("Pendulum-v1")
    assert "supported" in catalog.describe("FrozenLake-v1")
    # Tuple observations (Discrete parts one-hot) are flattened: Blackjack is trainable now
    assert catalog.describe("Blackjack-v1") == (
        "45 observations (flattened from a Tuple space) · 2 discrete actions"
    )
    assert "Blackjack-v1" in catalog.supported_envs()["Other"]


def test_describe_says_observations_were_flattened_and_names_multi_actions() -> None:
    entry = f"{__name__}:"
    ids = {
        "TrpoTestDictMulti-v0": "_DictMultiDiscreteEnv",
        "TrpoTestTupleBits-v0": "_TupleMultiBinaryEnv",
        "TrpoTestPixels-v0": "_ImageEnv",
    }
    for env_id, name in ids.items():
        gym.register(env_id, entry_point=entry + name)
    try:
        assert catalog.describe("TrpoTestDictMulti-v0") == (
            "7 observations (flattened from a Dict space) · "
            "3 discrete action components (3, 2, 4 choices)"
        )
        assert catalog.describe("TrpoTestTupleBits-v0") == (
            "5 observations (flattened from a Tuple space) · 3 binary actions"
        )
        refusal = catalog.describe("TrpoTestPixels-v0")
        assert refusal.startswith("TrpoTestPixels-v0 has observation space Box(0, 255, (8, 8, 3)")
        assert "image observations are not supported" in refusal
    finally:
        for env_id in ids:
            del gym.registry[env_id]
        catalog.clear_cache()
