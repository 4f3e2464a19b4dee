"""Environments that break the usual assumptions, registered by tests (and by the subprocesses
they start) under plain ids: `register_user_envs()`."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class NeverEnds(gym.Env):
    """Box(-1, 1, (2,)) observations, Discrete(2) actions; no episode ever terminates or is
    truncated, and no max_episode_steps is declared."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return obs, float(action), False, False, {}


def register_user_envs() -> None:
    if "NeverEnds-v0" not in gym.registry:
        gym.register(id="NeverEnds-v0", entry_point=NeverEnds, max_episode_steps=None)
    register_contract_envs()


class BoxFour(gym.Env):
    """Declares Box(-1, 1, (4,), float32); `shape` is what it really returns, from step
    `bad_from` on (reset and earlier steps return the declared shape unless bad_from is 0)."""

    observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, shape=(4,), bad_from=0, raise_at=None, nan_reset=False):
        self.shape, self.bad_from, self.raise_at = shape, bad_from, raise_at
        self.nan_reset = nan_reset
        self.t = 0

    def _obs(self):
        shape = self.shape if self.t >= self.bad_from else (4,)
        return np.zeros(shape, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if self.nan_reset:
            return np.full(4, np.nan, np.float32), {}
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        if self.raise_at is not None and self.t >= self.raise_at:
            raise RuntimeError("the simulator lost its licence server")
        return self._obs(), 1.0, False, self.t % 50 == 0, {}


USER_ENVS = {
    "WrongShape-v0": dict(shape=(4, 1)),
    "LongShape-v0": dict(shape=(5,)),
    "WrongLater-v0": dict(shape=(4, 1), bad_from=5),
    "RaisesLater-v0": dict(raise_at=300),
    "NanReset-v0": dict(nan_reset=True),
}


def register_contract_envs() -> None:
    for env_id, kwargs in USER_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=BoxFour, kwargs=kwargs)
