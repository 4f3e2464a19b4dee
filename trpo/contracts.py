"""Checks that an environment keeps the contract its declared spaces make.

Gymnasium's vector envs copy observations into arrays shaped by the declared space, so an env
that returns something else fails deep inside them ("Output array has wrong dimensionality")
without naming the env or the shapes. `check_contract` plays one reset and one step of a single
env before training and says, in words, what was declared and what came back.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class EnvContractError(ValueError):
    """An environment whose reset/step results do not match its declared spaces."""


def describe_value(value: Any) -> str:
    """A short description of what an env returned: shape and dtype for arrays."""
    array = np.asarray(value) if not isinstance(value, (dict, tuple)) else None
    if array is None or array.dtype == object:
        return f"a {type(value).__name__}"
    return f"an array of shape {array.shape} and dtype {array.dtype}"


def observation_problem(obs: Any, space: gym.Space) -> str | None:
    """What is wrong with obs for space (None if it fits): shape, a dtype that does not cast,
    non-finite values; other spaces through space.contains."""
    if not isinstance(space, spaces.Box):
        return None if space.contains(obs) else f"{describe_value(obs)} outside it"
    try:
        array = np.asarray(obs)
    except Exception:  # a ragged or exotic object
        return f"{describe_value(obs)}, not an array"
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        return f"{describe_value(obs)}, not numbers"
    if array.shape != space.shape:
        return f"{describe_value(obs)} instead of shape {space.shape}"
    if not np.can_cast(array.dtype, space.dtype, casting="same_kind"):
        return f"{describe_value(obs)}, which does not cast to {space.dtype}"
    if not np.isfinite(array).all():
        return f"{describe_value(obs)} with non-finite values (NaN or inf)"
    return None


def check_contract(env: gym.Env, env_id: str, seed: int = 0) -> None:
    """One reset and one step with a sample action: raise EnvContractError naming env_id, the
    declared space and what came back, if the observation, reward or flags break the contract,
    or if the env raises."""
    obs_space, act_space = env.observation_space, env.action_space
    where = f"environment {env_id!r}"
    try:
        obs, _ = env.reset(seed=seed)
    except Exception as exc:
        raise EnvContractError(f"{where}: reset() raised {type(exc).__name__}: {exc}") from exc
    problem = observation_problem(obs, obs_space)
    if problem is not None:
        raise EnvContractError(
            f"{where}: reset() returned {problem}; its declared observation space is {obs_space}"
        )
    act_space.seed(seed)
    action = act_space.sample()
    try:
        result = env.step(action)
    except Exception as exc:
        raise EnvContractError(
            f"{where}: step() with an action sampled from its declared action space "
            f"{act_space} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(result, tuple) or len(result) != 5:
        raise EnvContractError(
            f"{where}: step() must return (obs, reward, terminated, truncated, info), "
            f"got {describe_value(result)}"
        )
    obs, reward, terminated, truncated, _ = result
    problem = observation_problem(obs, obs_space)
    if problem is not None:
        raise EnvContractError(
            f"{where}: step() returned {problem}; its declared observation space is {obs_space}"
        )
    if not _is_real(reward):
        raise EnvContractError(
            f"{where}: step() returned the reward {reward!r}; it must be a finite real number"
        )
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(flag, (bool, np.bool_)):
            raise EnvContractError(
                f"{where}: step() returned {name}={flag!r}; it must be True or False"
            )


def _is_real(value: Any) -> bool:
    try:
        number = float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and not isinstance(value, (bool, np.bool_))
