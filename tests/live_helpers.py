"""Synthetic runs for the live-chart tests, written through the run store (trpo.store).

Records are made up (no training), so a test decides when each one arrives; a few planted
spikes and dips must survive any downsampling.
"""

from __future__ import annotations

import random
from pathlib import Path

from trpo.config import TRPOConfig
from trpo.record import IterationRecord
from trpo.store import Run, RunStore

K = 10
STEPS = 512
# planted extremes: iteration -> (return_mean, kl)
SPIKES = {777: (None, 0.049), 1234: (9_999.0, None), 1500: (-500.0, None)}


def synthetic_record(i: int, seed: int = 0) -> IterationRecord:
    """Iteration i of a made-up run: about 10% rejected steps, a few batches without a
    finished episode, the planted SPIKES."""
    rng = random.Random(seed * 1_000_003 + i)
    accepted = rng.random() > 0.1
    episode = rng.random() > 0.05
    mean = 100.0 + 50 * rng.random()
    kl = 0.002 + 0.006 * rng.random()
    spike_return, spike_kl = SPIKES.get(i, (None, None))
    if spike_return is not None:
        mean, episode = spike_return, True
    if spike_kl is not None:
        kl, accepted = spike_kl, True
    return IterationRecord(
        iteration=i,
        env_steps=i * STEPS,
        wall_time_s=0.5 * i,
        iteration_time_s=0.5,
        steps_per_s=STEPS / 0.5,
        episodes=3 if episode else 0,
        return_mean=mean if episode else None,
        return_std=5.0 if episode else None,
        return_min=mean - 10 if episode else None,
        return_max=mean + 10 if episode else None,
        length_mean=mean if episode else None,
        step_accepted=accepted,
        backtrack_index=rng.randrange(4) if accepted else None,
        reject_reason=None if accepted else "KL above δ",
        kl=kl if accepted else None,
        surrogate_before=0.0,
        surrogate_after=0.01 if accepted else 0.0,
        grad_norm=1.0,
        g_dot_x=1.0,
        x_h_x=1.0,
        step_scale=0.1,
        step_norm=0.1 if accepted else 0.0,
        cg_residuals=[10.0**-k for k in range(1, 2 + rng.randrange(8))],
        line_search=[],
        entropy=0.6,
        log_std_mean=None,
        value_loss=1.0,
        explained_variance=0.5,
        time_collect_s=0.3,
        time_advantages_s=0.01,
        time_cg_s=0.05,
        time_linesearch_s=0.05,
        time_value_s=0.09,
    )


def synthetic_run(root: Path, iterations: int, name: str, seed: int = 0) -> Run:
    """A run folder with `iterations` made-up records, marked running by this process (so a
    dashboard refreshes it every second); Run.set_status ends it."""
    config = TRPOConfig(
        env_id="CartPole-v1",
        steps_per_iteration=STEPS,
        n_envs=1,
        total_steps=10_000 * STEPS,
        max_backtracks=K,
        seed=seed,
    )
    run = RunStore(root).create(config, name)
    for i in range(1, iterations + 1):
        run.append(synthetic_record(i, seed))
    return run
