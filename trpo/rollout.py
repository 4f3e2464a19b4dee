"""Batch collection from a SAME_STEP vector env, with the real last observation for bootstraps.

The loop is kept lean: preallocated arrays, one numpy policy call per vector step, and no
per-step Python objects beyond what Gymnasium returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from trpo.envs import SpaceInfo
from trpo.normalization import ObservationNormalizer
from trpo.numpy_actor import NumpyActor


@dataclass
class Batch:
    """T steps of N envs. next_obs[t] is s_{t+1} of that transition: for an episode end it is the
    real last observation (info['final_obs']), never the reset observation."""

    obs: np.ndarray  # [T, N, obs_dim] policy inputs (normalised with frozen statistics)
    raw_obs: np.ndarray  # [T, N, obs_dim]
    next_obs: np.ndarray  # [T, N, obs_dim] policy inputs of s_{t+1}
    # [T, N] (Discrete) or [T, N, act_dim] (the other kinds): the policy's actions as sampled
    # (Box unclipped, Discrete and MultiDiscrete without their start offset)
    actions: np.ndarray
    rewards: np.ndarray  # [T, N] raw env rewards
    terminated: np.ndarray  # [T, N] bool: true terminal state, no bootstrap
    episode_end: np.ndarray  # [T, N] bool: terminated or truncated
    episode_returns: list[float]
    episode_lengths: list[int]

    @property
    def size(self) -> int:
        return self.rewards.size


def batch_bytes(space: SpaceInfo, steps: int) -> int:
    """Rough peak memory of one iteration's batch: the numpy arrays here plus the float32
    tensors, distribution parameters and autograd buffers of the update (64-wide MLPs)."""
    act = 1 if space.discrete else space.policy_outputs
    per_step = 8 * (3 * space.obs_dim + act + 4) + 4 * (2 * space.obs_dim + 4 * act + 8)
    per_step += 4 * 6 * 64 * 3  # hidden activations kept for gradients and Fisher products
    return steps * per_step


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where it cannot be read)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Collector:
    """Owns the vector env's current observation and the running episode sums across batches."""

    def __init__(self, envs: gym.vector.VectorEnv, space: SpaceInfo, seed: int) -> None:
        self.envs = envs
        self.space = space
        self.n_envs = envs.num_envs
        self.obs, _ = envs.reset(seed=seed)
        self.episode_return = np.zeros(self.n_envs, dtype=np.float64)
        self.episode_length = np.zeros(self.n_envs, dtype=np.int64)

    def state(self) -> dict[str, Any]:
        """The current observation and running episode sums (JSON-able)."""
        return {
            "obs": np.asarray(self.obs, dtype=np.float64).tolist(),
            "episode_return": self.episode_return.tolist(),
            "episode_length": self.episode_length.tolist(),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.obs = np.asarray(state["obs"], dtype=np.asarray(self.obs).dtype)
        self.episode_return = np.asarray(state["episode_return"], dtype=np.float64)
        self.episode_length = np.asarray(state["episode_length"], dtype=np.int64)

    def _finished_episodes(
        self, rewards: np.ndarray, episode_end: np.ndarray
    ) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes that ended in this batch (including the part
        played in earlier batches); carries the unfinished sums over to the next batch."""
        finished: list[tuple[int, int, float, int]] = []  # (end step, env, return, length)
        T = rewards.shape[0]
        for i in range(self.n_envs):
            begin = 0
            for end in np.flatnonzero(episode_end[:, i]):
                total = float(self.episode_return[i] + rewards[begin : end + 1, i].sum())
                finished.append((int(end), i, total, int(self.episode_length[i] + end + 1 - begin)))
                self.episode_return[i] = 0.0
                self.episode_length[i] = 0
                begin = end + 1
            self.episode_return[i] += rewards[begin:, i].sum()
            self.episode_length[i] += T - begin
        finished.sort()  # in the order the episodes ended
        return [f[2] for f in finished], [f[3] for f in finished]

    def collect(
        self,
        actor: NumpyActor,
        normalize: ObservationNormalizer,
        steps_per_env: int,
        rng: np.random.Generator,
    ) -> Batch:
        T, N, space = steps_per_env, self.n_envs, self.space
        obs_dim = space.obs_dim
        raw_obs = np.empty((T, N, obs_dim), dtype=np.float64)
        obs_in = np.empty((T, N, obs_dim), dtype=np.float64) if normalize.enabled else raw_obs
        actions = np.empty((T, N, *space.action_shape), dtype=space.action_dtype)
        rewards = np.empty((T, N), dtype=np.float64)
        terminated = np.empty((T, N), dtype=bool)
        truncated = np.empty((T, N), dtype=bool)
        finals = []  # (t, info["final_obs"], info["_final_obs"]) where episodes ended
        obs = self.obs
        step, sample, env_action = self.envs.step, actor.sample_with, space.env_action
        noise = actor.draw_noise(rng, (T, N))
        # The loop only steps and stores; everything else is done on whole arrays below.
        for t in range(T):
            if normalize.enabled:
                x = obs_in[t] = normalize(obs)
            else:
                x = obs
            action = sample(x, noise[t])
            next_obs, reward, term, trunc, info = step(env_action(action))
            raw_obs[t] = obs
            actions[t] = action
            rewards[t] = reward
            terminated[t] = term
            truncated[t] = trunc
            if "final_obs" in info:
                finals.append((t, info["final_obs"], info["_final_obs"]))
            obs = next_obs
        self.obs = obs
        episode_end = terminated | truncated
        # s_{t+1}: the next row, except where an episode ended (its real last observation)
        next_raw = np.empty_like(raw_obs)
        next_raw[:-1] = raw_obs[1:]
        next_raw[-1] = obs
        for t, final_obs, has_final in finals:
            for i in np.flatnonzero(has_final):
                next_raw[t, i] = final_obs[i]
        returns, lengths = self._finished_episodes(rewards, episode_end)
        return Batch(
            obs=obs_in,
            raw_obs=raw_obs,
            next_obs=normalize(next_raw),
            actions=actions,
            rewards=rewards,
            terminated=terminated,
            episode_end=episode_end,
            episode_returns=returns,
            episode_lengths=lengths,
        )
