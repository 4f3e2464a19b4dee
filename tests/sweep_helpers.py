"""Test environments for sweeps, importable in spawned pool workers and Ray workers.

`register_envs` is passed to run_sweep as worker_init, so every worker registers them before it
trains. They are CartPole with a fault: one raises after some steps, one kills its process, one
is slow (so that a sweep can be stopped while its trials run), one is slow and pays a hundredth
of CartPole's reward (a trial a pruner must stop).
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

FAULT_AFTER_STEPS = 300  # per env instance: with 2 envs and 512 steps per iteration, iteration 2


class RaisingCartPole(CartPoleEnv):
    """Raises RuntimeError in step after FAULT_AFTER_STEPS steps."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps > FAULT_AFTER_STEPS:
            raise RuntimeError("test env fault: the simulator exploded")
        return super().step(action)


class DyingCartPole(CartPoleEnv):
    """Kills its whole process (os._exit) after FAULT_AFTER_STEPS steps."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps > FAULT_AFTER_STEPS:
            os._exit(3)
        return super().step(action)


class SlowCartPole(CartPoleEnv):
    """Sleeps 1 ms per step: about 0.5 s per 512-step iteration."""

    def step(self, action: Any) -> Any:
        time.sleep(0.001)
        return super().step(action)


class PoorCartPole(CartPoleEnv):
    """Sleeps 10 ms per step (about 5 s per 512-step iteration) and pays 0.01 per step."""

    def step(self, action: Any) -> Any:
        time.sleep(0.01)
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, 0.01 * reward, terminated, truncated, info


ENVS = {
    "SweepRaise-v0": RaisingCartPole,
    "SweepDie-v0": DyingCartPole,
    "SweepSlow-v0": SlowCartPole,
    "SweepPoor-v0": PoorCartPole,
}


def register_envs() -> None:
    """Register the test envs (idempotent)."""
    for env_id, cls in ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"{__name__}:{cls.__name__}", max_episode_steps=500)
