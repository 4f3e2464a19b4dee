"""Load a trained policy from a run's checkpoint and evaluate it deterministically."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trpo.config import TRPOConfig
from trpo.envs import SpaceInfo, make_env
from trpo.normalization import ObservationNormalizer
from trpo.numpy_actor import NumpyActor
from trpo.policies import Policy, make_policy
from trpo.store import RunStoreError, open_run


@dataclass
class LoadedPolicy:
    """A policy as saved: the network, its observation normaliser, its config and spaces."""

    config: TRPOConfig
    policy: Policy
    normalizer: ObservationNormalizer
    space: SpaceInfo
    iteration: int

    def act(self, obs: np.ndarray, actor: NumpyActor | None = None) -> np.ndarray:
        """The env's deterministic action for one obs: argmax (per component), bits with
        logit > 0, or the mean clipped to the action bounds (see SpaceInfo.env_action)."""
        actor = actor or self.policy.numpy_actor()
        action = actor.deterministic(self.normalizer(np.asarray(obs)[None]))[0]
        return self.space.env_action(action)


def load_policy(run_dir: str | os.PathLike[str]) -> LoadedPolicy:
    """The latest checkpointed policy of a run (RunStoreError if it has none)."""
    run = open_run(run_dir)
    config = run.config()
    checkpoint = run.load_checkpoint()
    env, space = make_env(config.env_id)
    env.close()
    policy = make_policy(
        space,
        config.hidden_sizes,
        config.activation,
        config.log_std_init,
        torch.Generator().manual_seed(0),
    )
    prefix = "policy/"
    weights = {k[len(prefix) :]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix)}
    try:
        policy.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunStoreError(f"checkpoint does not match the run's config: {exc}") from exc
    normalizer = ObservationNormalizer(space.obs_dim, config.normalize_observations)
    stats = {
        k[len("obs_norm/") :]: v.numpy()
        for k, v in checkpoint.tensors.items()
        if k.startswith("obs_norm/")
    }
    if stats:
        normalizer.load(stats)
    return LoadedPolicy(config, policy, normalizer, space, int(checkpoint.meta.get("iteration", 0)))


#: Step cap of one evaluation episode when the env declares no time limit (max_episode_steps):
#: Gymnasium's own default TimeLimit for registered envs without one is unbounded, and an env
#: whose episodes never end would otherwise hang `trpo eval` (measured: 4.2M steps in 60 s).
DEFAULT_MAX_EPISODE_STEPS = 10_000


def episode_step_cap(env: Any, max_steps: int | None = None) -> int:
    """max_steps if given, else the env's max_episode_steps, else DEFAULT_MAX_EPISODE_STEPS."""
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        return int(max_steps)
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if limit else DEFAULT_MAX_EPISODE_STEPS


@dataclass
class EvalResult:
    returns: list[float]
    lengths: list[int]
    cut: list[bool] = field(default_factory=list)  # episode i stopped at the step cap
    max_steps: int = DEFAULT_MAX_EPISODE_STEPS

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))


def evaluate(
    run_dir: str | os.PathLike[str],
    episodes: int = 10,
    seed: int = 10_000,
    max_steps: int | None = None,
) -> EvalResult:
    """Run `episodes` episodes with the deterministic policy; episode i uses seed + i.

    Each episode ends when the env terminates or truncates, or after the step cap
    (`episode_step_cap`: max_steps, else the env's time limit, else 10,000), in which case it
    is reported as cut. Raises ValueError for episodes or max_steps below 1.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    loaded = load_policy(run_dir)
    actor = loaded.policy.numpy_actor()
    env, _ = make_env(loaded.config.env_id)
    returns, lengths, cut = [], [], []
    try:
        cap = episode_step_cap(env, max_steps)
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, length, done = 0.0, 0, False
            while not done and length < cap:
                obs, reward, terminated, truncated, _ = env.step(loaded.act(obs, actor))
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(length)
            cut.append(not done)
    finally:
        env.close()
    return EvalResult(returns, lengths, cut, cap)
