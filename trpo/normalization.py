"""Running statistics for observation normalisation and reward scaling (like SB3's VecNormalize).

Observation statistics are updated once per iteration, after the update, so the policy is one
fixed function of the raw observation within an iteration (pi_old is exactly what sampled the
batch). Reward statistics do not touch the policy: they are updated with each batch's discounted
returns *before* that batch is scaled, so every batch (the first included) is scaled by a
statistic that has seen it. Before the first iteration the trainer warms both up on one batch of
the initial policy (see `Trainer`), so that iteration 1 neither sees raw observations nor
fits V_phi to unscaled returns.
"""

from __future__ import annotations

import numpy as np

CLIP = 10.0
EPS = 1e-8


class RunningMeanStd:
    """Mean and variance of a stream of arrays, merged batch by batch (Chan et al.)."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64).reshape(-1, *self.mean.shape)
        n = batch.shape[0]
        if n == 0:
            return
        b_mean, b_var = batch.mean(axis=0), batch.var(axis=0)
        total = self.count + n
        diff = b_mean - self.mean
        self.mean = self.mean + diff * n / total
        m2 = self.var * self.count + b_var * n + diff**2 * self.count * n / total
        self.var = m2 / total
        self.count = total

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "var": self.var, "count": np.array([self.count])}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.mean = np.asarray(state["mean"], dtype=np.float64).copy()
        self.var = np.asarray(state["var"], dtype=np.float64).copy()
        self.count = float(np.asarray(state["count"]).reshape(-1)[0])


class ObservationNormalizer:
    """(obs - mean) / sqrt(var + eps), clipped to [-10, 10]; identity when disabled."""

    def __init__(self, obs_dim: int, enabled: bool) -> None:
        self.enabled = enabled
        self.stats = RunningMeanStd((obs_dim,))
        self._refresh()

    def _refresh(self) -> None:
        self._shift = self.stats.mean.copy()
        self._scale = 1.0 / np.sqrt(self.stats.var + EPS)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return obs
        return np.clip((obs - self._shift) * self._scale, -CLIP, CLIP)

    def update(self, raw_obs: np.ndarray) -> None:
        if self.enabled:
            self.stats.update(raw_obs)
            self._refresh()

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.stats.load(state)
        self._refresh()


class RewardScaler:
    """Divide rewards by the running std of the discounted return; identity when disabled.

    The statistics are VecNormalize's (sb3): the running discounted return
    R_t = gamma R_{t-1} + r_t (reset to 0 after an episode end) of each env is fed to a
    RunningMeanStd, and rewards are divided by sqrt(var + 1e-8) and clipped to +-10. Unlike
    VecNormalize, which scales each step by the statistics of the steps before it, a whole
    batch is scaled by one statistic that includes the batch itself.
    """

    def __init__(self, n_envs: int, gamma: float, enabled: bool) -> None:
        self.enabled = enabled
        self.gamma = gamma
        self.stats = RunningMeanStd(())
        self.returns = np.zeros(n_envs, dtype=np.float64)

    def scale_batch(self, rewards: np.ndarray, episode_end: np.ndarray) -> np.ndarray:
        """Update the statistics with a [T, N] batch, then return it scaled by them."""
        if not self.enabled:
            return rewards
        self.update(rewards, episode_end)
        return np.clip(rewards / np.sqrt(self.stats.var + EPS), -CLIP, CLIP)

    def update(self, rewards: np.ndarray, episode_end: np.ndarray) -> None:
        """Feed a [T, N] batch's running discounted returns to the statistics."""
        if not self.enabled:
            return
        discounted = np.empty_like(rewards, dtype=np.float64)
        running = self.returns
        for t in range(rewards.shape[0]):
            running = running * self.gamma + rewards[t]
            discounted[t] = running
            running = np.where(episode_end[t], 0.0, running)
        self.returns = running
        self.stats.update(discounted.reshape(-1))

    def state(self) -> dict[str, np.ndarray]:
        return {**self.stats.state(), "returns": self.returns}

    def load(self, state: dict[str, np.ndarray]) -> None:
        self.stats.load(state)
        self.returns = np.asarray(state["returns"], dtype=np.float64).copy()
