"""Environment creation: registry ids only, supported spaces only, vectorised.

This is the only module that calls gymnasium.make / make_vec. Ids must already be in
Gymnasium's registry ('module:Name' ids would import a module before any check) and no user
keyword arguments are ever passed to make. Dict and Tuple observations are flattened into one
vector by Gymnasium's own `FlattenObservation` wrapper, the same way for training, evaluation
and replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import FlattenObservation

from trpo.contracts import EnvContractError, check_contract

SUPPORTED = (
    "1-D Box observations (a flat vector of numbers; Dict and Tuple observations are flattened) "
    "with Discrete, MultiDiscrete, MultiBinary or 1-D Box actions"
)

ActionKind = Literal["discrete", "box", "multi_discrete", "multi_binary"]


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
    """What the trainer needs to know of an env's spaces; observations as the policy sees them.

    Policy actions are what the policy samples: an integer in 0..n-1 (Discrete), a vector of
    act_dim floats (Box), of act_dim integers in 0..nvec[k]-1 (MultiDiscrete) or of act_dim
    bits (MultiBinary). `env_action` turns them into the env's actions.
    """

    obs_dim: int  # length of the observation vector (after flattening a Dict or Tuple)
    action_kind: ActionKind
    # Discrete: number of actions; Box: dimensions; MultiDiscrete: components; MultiBinary: bits
    act_dim: int
    action_low: np.ndarray | None = None  # Box bounds [act_dim], float64; None otherwise
    action_high: np.ndarray | None = None
    # Discrete(n, start): env actions are start..start+n-1; MultiDiscrete: start per component
    action_start: int | np.ndarray = 0
    action_nvec: tuple[int, ...] = ()  # MultiDiscrete: number of choices per component
    flattened_from: str | None = None  # 'Dict' or 'Tuple' when observations were flattened

    @property
    def discrete(self) -> bool:
        """A single Discrete action: the policy's action is one integer."""
        return self.action_kind == "discrete"

    @property
    def action_shape(self) -> tuple[int, ...]:
        """Shape of one policy action: () for Discrete, (act_dim,) for the others."""
        return () if self.action_kind == "discrete" else (self.act_dim,)

    @property
    def action_dtype(self) -> type[np.generic]:
        """float64 for Box actions, int64 for the integer kinds."""
        return np.float64 if self.action_kind == "box" else np.int64

    @property
    def policy_outputs(self) -> int:
        """Width of the policy network's output layer (logits, or the Gaussian mean)."""
        return sum(self.action_nvec) if self.action_kind == "multi_discrete" else self.act_dim

    def env_action(self, action: np.ndarray) -> np.ndarray:
        """The env's action for policy action(s) (one, or a batch along leading axes):
        Discrete and MultiDiscrete offset by their start, Box clipped to its bounds,
        MultiBinary unchanged. The policy's log-probabilities are of the unclipped action."""
        kind = self.action_kind
        if kind == "box":
            return np.clip(action, self.action_low, self.action_high)
        if kind == "discrete":  # a plain int: no numpy call in the rollout loop when it is 0
            return action + self.action_start if self.action_start else action
        if kind == "multi_discrete":
            return action + self.action_start
        return action


def _leaves(space: gym.Space) -> Iterator[gym.Space]:
    """The non-composite parts of a (nested) Dict or Tuple space; the space itself otherwise."""
    if isinstance(space, spaces.Dict):
        for part in space.spaces.values():
            yield from _leaves(part)
    elif isinstance(space, spaces.Tuple):
        for part in space.spaces:
            yield from _leaves(part)
    else:
        yield space


def is_image(space: gym.Space) -> bool:
    """A Box of 3 dims (height, width, channels) or a 2-D uint8 Box (a grey image)."""
    return isinstance(space, spaces.Box) and (
        len(space.shape) == 3 or (len(space.shape) == 2 and space.dtype == np.uint8)
    )


def flattens(space: gym.Space) -> bool:
    """Whether observations in `space` are flattened when an env is made: a Dict or Tuple whose
    parts all flatten to numbers (no Sequence or Graph) and none of which is an image."""
    return (
        isinstance(space, (spaces.Dict, spaces.Tuple))
        and space.is_np_flattenable
        and not any(is_image(part) for part in _leaves(space))
    )


def flatten_observations(env: gym.Env) -> gym.Env:
    """`FlattenObservation(env)` if its observation space `flattens`, else env unchanged
    (`space_info` then refuses what cannot be used)."""
    return FlattenObservation(env) if flattens(env.observation_space) else env


def _observation_dim(obs: gym.Space, name: str) -> tuple[int, str | None]:
    """(length of the policy's observation vector, 'Dict'/'Tuple' if flattened) or EnvError."""
    if isinstance(obs, spaces.Box) and len(obs.shape) == 1:
        return obs.shape[0], None
    if flattens(obs):
        return spaces.flatdim(obs), type(obs).__name__
    if any(is_image(part) for part in _leaves(obs)):
        raise EnvError(
            f"{name}has observation space {obs}: image observations are not supported; "
            f"supported: {SUPPORTED}"
        )
    raise EnvError(f"{name}has observation space {obs}; supported: {SUPPORTED}")


def space_info(
    observation_space: gym.Space, action_space: gym.Space, env_id: str = ""
) -> SpaceInfo:
    """Check the spaces (observations before any flattening) against what the trainer
    supports; EnvError names what is supported."""
    name = f"{env_id} " if env_id else ""
    obs_dim, flattened_from = _observation_dim(observation_space, name)
    act = action_space
    if isinstance(act, spaces.Discrete):
        return SpaceInfo(
            obs_dim,
            "discrete",
            int(act.n),
            action_start=int(act.start),
            flattened_from=flattened_from,
        )
    if isinstance(act, spaces.Box) and len(act.shape) == 1:
        return SpaceInfo(
            obs_dim,
            "box",
            act.shape[0],
            act.low.astype(np.float64),
            act.high.astype(np.float64),
            flattened_from=flattened_from,
        )
    if isinstance(act, spaces.MultiDiscrete) and act.nvec.ndim == 1:
        return SpaceInfo(
            obs_dim,
            "multi_discrete",
            len(act.nvec),
            action_start=act.start.astype(np.int64),
            action_nvec=tuple(int(n) for n in act.nvec),
            flattened_from=flattened_from,
        )
    if isinstance(act, spaces.MultiBinary) and len(act.shape) == 1:
        return SpaceInfo(obs_dim, "multi_binary", act.shape[0], flattened_from=flattened_from)
    raise EnvError(f"{name}has action space {act}; supported: {SUPPORTED}")


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
    reset observation and the real last one in info['final_obs'] (no fake steps to mask).
    Each sub-env's Dict or Tuple observations are flattened (`flatten_observations`)."""
    _quiet_mujoco_log(check_env_id(env_id))
    # The sub-envs' observation spaces before flattening, for space_info: SyncVectorEnv makes
    # its envs in this process, AsyncVectorEnv one dummy env here to read the spaces.
    original: list[gym.Space] = []

    def flatten(env: gym.Env) -> gym.Env:
        original.append(env.observation_space)
        return flatten_observations(env)

    wrappers: list[Callable[[gym.Env], gym.Env]] = [flatten]
    try:
        envs = gym.make_vec(
            env_id,
            num_envs=n_envs,
            vectorization_mode=vectorization,
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
            wrappers=wrappers,
        )
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    observation_space = original[0] if original else envs.single_observation_space
    try:
        info = space_info(observation_space, envs.single_action_space, env_id)
        check_env_contract(env_id)
    except EnvError:
        envs.close()
        raise
    return envs, info


def check_env_contract(env_id: str) -> None:
    """Play one reset and one sample step of a single env, its observations flattened as the
    trainer's are (contracts.check_contract); raise EnvError naming the env, the declared space
    and what came back if it breaks its spaces."""
    try:
        env = flatten_observations(gym.make(env_id))
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    try:
        check_contract(env, env_id)
    except EnvContractError as exc:
        raise EnvError(str(exc)) from exc
    finally:
        env.close()


def _checked(env: gym.Env, env_id: str) -> tuple[gym.Env, SpaceInfo]:
    """The env with its observations flattened if need be, and its SpaceInfo (or EnvError,
    the env closed)."""
    try:
        info = space_info(env.observation_space, env.action_space, env_id)
    except EnvError:
        env.close()
        raise
    return flatten_observations(env), info


def make_env(env_id: str, render_mode: str | None = None) -> tuple[gym.Env, SpaceInfo]:
    """One env (evaluation and replay), its observations flattened like the trainer's."""
    _quiet_mujoco_log(check_env_id(env_id))
    try:
        env = gym.make(env_id) if render_mode is None else gym.make(env_id, render_mode=render_mode)
    except Exception as exc:
        raise _make_errors(env_id, exc) from exc
    return _checked(env, env_id)


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
    return _checked(env, env_id)
