"""Rewards-to-go and generalised advantage estimation (GAE) on a [T, N] batch of N envs.

Pure numpy; no environments or config. The caller supplies, for every step t, V(s_t) and the
value of the state that follows, V(s_{t+1}): for a time-limit truncation that is V(s_final)
(the real last observation), for the last step of the batch the value of the current state.
"""

from __future__ import annotations

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    episode_end: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (advantages A_t, returns A_t + V(s_t)), all of shape [T, N].

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
    A_t     = delta_t + gamma * lam * (1 - episode_end_t) * A_{t+1}
    A termination does not bootstrap; a truncation bootstraps from next_values (V(s_final)).
    With lam = 1 this is exactly A_t = G_t - V(s_t), G_t the (bootstrapped) reward-to-go.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    next_values = np.asarray(next_values, dtype=np.float64)
    not_terminated = 1.0 - np.asarray(terminated, dtype=np.float64)
    continues = 1.0 - np.asarray(episode_end, dtype=np.float64)
    deltas = rewards + gamma * next_values * not_terminated - values
    advantages = np.empty_like(deltas)
    running = np.zeros(deltas.shape[1:], dtype=np.float64)
    decay = gamma * lam
    for t in range(deltas.shape[0] - 1, -1, -1):
        running = deltas[t] + decay * continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


def rewards_to_go(rewards: np.ndarray, gamma: float, bootstrap: float = 0.0) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1} for one episode (1-D), G_T = bootstrap."""
    out = np.empty(len(rewards), dtype=np.float64)
    running = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


#: Relative spread below which a batch's advantages are taken as constant (see `standardize`).
DEGENERATE_SPREAD = 1e-6


def standardize(advantages: np.ndarray, rel_tol: float = DEGENERATE_SPREAD) -> np.ndarray:
    """(A - mean A) / std A over the whole batch (std with Bessel's correction, as sb3), in
    float64; shape is kept. Non-finite input is returned unchanged for the caller's checks.

    A batch whose spread is degenerate relative to its scale (std A <= rel_tol * max |A|, which
    includes every constant batch and the all-zero one) carries no information about which
    actions were better: it standardises to zeros, so g = 0 and no step is taken. Dividing by a
    round-off std instead (float32: about 1e-8 for a constant c) would turn pure score noise into
    a full trust-region step. rel_tol = 1e-6 sits far above float64 round-off (1e-16) and far
    below the spread of any batch a value function leaves behind.
    """
    a = np.asarray(advantages, dtype=np.float64)
    if a.size < 2:
        return np.zeros_like(a)
    if not np.isfinite(a).all():
        return a
    std = float(a.std(ddof=1))
    if not std > rel_tol * float(np.abs(a).max()):
        return np.zeros_like(a)
    return (a - a.mean()) / std
