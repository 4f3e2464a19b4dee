"""Environment creation: registry ids only, supported spaces only, vectorised.

This is the only module that calls gymnasium.make / make_vec. Ids must already be in
Gymnasium's registry ('module:Name' ids would import a module before any check) and no user
keyword arguments are ever passed to make.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from trpo.contracts import EnvContractError, check_contract

SUPPORTED = "1-D Box observations (a flat vector of numbers) with Discrete or 1-D Box actions"


class EnvError(ValueError):
    """An environment id that cannot be used, with the reason in words."""


def _quiet_mujoco_log(spec: gym.envs.registration.EnvSpec) -> None:
    """MuJoCo 4 appends deprecation notes to MUJOCO_LOG.TXT in the working directory.
    Only MuJoCo envs pay for importing mujoco."""
    if "mujoco" not in str(spec.entry_point):
        return
    try:
        import mujoco

        log_config = mujoco.MjLogConfig.get()
        log_config.logto_file = False
        log_config.set()
    except Exception:
        pass


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registry entry for env_id, or EnvError saying why it cannot be used."""
    if not isinstance(env_id, str) or not env_id:
        raise EnvError("the environment id must be a non-empty string such as 'CartPole-v1'")
    if ":" in env_id:
        raise EnvError(
            f"{env_id!r} names a module ('module:Name'); "
            "only ids in Gymnasium's registry are accepted"
        )
    spec = gym.registry.get(env_id)
    if spec is None:
        raise EnvError(
            f"{env_id!r} is not a registered Gymnasium environment (for example: CartPole-v1, "
            "Pendulum-v1, HalfCheetah-v5)"
        )
    return spec


@dataclass(frozen=True)
class SpaceInfo:
    """What the trainer needs to know of an env's spaces."""

    obs_dim: int
    discrete: bool
    act_dim: int  # number of actions (Discrete) or action dimensions (Box)
    action_low: np.ndarray | None
    action_high: np.ndarray | None
    action_start: int = 0  # Discrete(n, start): env actions are start..start+n-1


def space_info(
    observation_space: gym.Space, action_space: gym.Space, env_id: str = ""
) -> SpaceInfo:
    """Check the spaces against what the trainer supports; EnvError names what is supported."""
    name = f"{env_id} " if env_id else ""
    obs = observation_space
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        raise EnvError(f"{name}has observation space {obs}; supported: {SUPPORTED}")
    if isinstance(action_space, spaces.Discrete):
        return SpaceInfo(
            obs.shape[0], True, int(action_space.n), None, None, int(action_space.start)
        )
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return SpaceInfo(
            obs.shape[0],
            False,
            action_space.shape[0],
            action_space.low.astype(np.float64),
            action_space.high.astype(np.float64),
        )
    raise EnvError(f"{name}has action space {action_space}; supported: {SUPPORTED}")


def _make_errors(env_id: str, exc: Exception) -> EnvError:
    if isinstance(exc, gym.error.DependencyNotInstalled):
        return EnvError(f"{env_id} needs an optional dependency that is not installed: {exc}")
    if isinstance(exc, ModuleNotFoundError):
        return EnvError(f"{env_id} needs the Python package {exc.name!r}, which is not installed")
    return EnvError(f"{env_id} could not be created: {type(exc).__name__}: {exc}")


def make_vector_env(
    env_id: str, n_envs: int, vectorization: str = "sync"
) -> tuple[gym.vector.VectorEnv, SpaceInfo]:
    """A vector env in SAME_STEP autoreset mode: the step that ends an episode returns the
    reset observation and the real last one in info['final_obs'] (no fake steps to mask)."""
    _quiet_mujoco_log(check_env_id(env_id))
    try:
        envs = gym.make_vec(
            env_id,
            num_envs=n_envs,
            vectorization_mode=vectorization,
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    try:
        info = space_info(envs.single_observation_space, envs.single_action_space, env_id)
        check_env_contract(env_id)
    except EnvError:
        envs.close()
        raise
    return envs, info


def check_env_contract(env_id: str) -> None:
    """Play one reset and one sample step of a single env (contracts.check_contract); raise
    EnvError naming the env, the declared space and what came back if it breaks its spaces."""
    try:
        env = gym.make(env_id)
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    try:
        check_contract(env, env_id)
    except EnvContractError as exc:
        raise EnvError(str(exc)) from exc
    finally:
        env.close()


def make_env(env_id: str, render_mode: str | None = None) -> tuple[gym.Env, SpaceInfo]:
    """One env (evaluation and replay)."""
    _quiet_mujoco_log(check_env_id(env_id))
    try:
        env = gym.make(env_id) if render_mode is None else gym.make(env_id, render_mode=render_mode)
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    try:
        info = space_info(env.observation_space, env.action_space, env_id)
    except EnvError:
        env.close()
        raise
    return env, info


# MuJoCo walkers: their default camera stays put and the robot walks out of the frame; the
# 'track' camera defined in their models follows the torso.
TRACKED_WALKERS = frozenset({"Ant", "HalfCheetah", "Hopper", "Humanoid", "Swimmer", "Walker2d"})


def make_render_env(env_id: str) -> tuple[gym.Env, SpaceInfo]:
    """One env that renders RGB frames (render_mode='rgb_array'), for replays.

    The MuJoCo walkers get camera_name='track'; nothing else is ever passed to make.
    Create, render and close it in one thread: an OpenGL context belongs to its thread.
    """
    spec = check_env_id(env_id)
    _quiet_mujoco_log(spec)
    kwargs: dict[str, str] = {"render_mode": "rgb_array"}
    entry_point = spec.entry_point if isinstance(spec.entry_point, str) else ""
    if (
        spec.namespace is None
        and spec.name in TRACKED_WALKERS
        and entry_point.startswith("gymnasium.envs.mujoco")
    ):
        kwargs["camera_name"] = "track"
    try:
        env = gym.make(env_id, **kwargs)
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    try:
        info = space_info(env.observation_space, env.action_space, env_id)
    except EnvError:
        env.close()
        raise
    return env, info
