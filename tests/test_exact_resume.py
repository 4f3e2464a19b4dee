"""Exact resume: N iterations, stop, resume to 2N gives the records of an uninterrupted 2N run
(all RNG states, optimiser state, normaliser statistics and the running episodes are saved)."""

import threading

import pytest

from trpo.config import TRPOConfig
from trpo.env_state import capture_env
from trpo.session import TrainingSession
from trpo.store import RunStore

TIMING = ("wall_time_s", "iteration_time_s", "steps_per_s")


def comparable(rows):
    return [
        {k: v for k, v in row.items() if not (k.startswith("time_") or k in TIMING)} for row in rows
    ]


@pytest.mark.parametrize(
    "env_id, extra",
    [
        ("CartPole-v1", {}),
        ("Pendulum-v1", {"normalize_observations": True, "normalize_rewards": True}),
        pytest.param(  # MuJoCo: the slowest of the three
            "Hopper-v5", {"normalize_observations": True}, marks=pytest.mark.slow
        ),
    ],
)
def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path, env_id, extra):
    warmup = 512 if extra else 0  # the normalisation warm-up plays one batch first
    config = TRPOConfig(
        env_id=env_id,
        total_steps=3072 + warmup,
        steps_per_iteration=512,
        vf_epochs=2,
        cg_iters=5,
        seed=11,
        **extra,
    )
    whole = TrainingSession.new(config, RunStore(tmp_path / "whole"))
    whole.run(None)
    expected = comparable(whole.run_folder.rows())

    stop = threading.Event()
    first = TrainingSession.new(config, RunStore(tmp_path / "split"))

    def stop_after_three(record):
        if record.iteration == 3:
            stop.set()

    assert first.run(stop, on_record=stop_after_three) == "stopped"
    resumed = TrainingSession.resume(str(first.run_folder.path))
    assert resumed.trainer.exact_resume
    assert resumed.run(None) == "finished"
    got = comparable(first.run_folder.rows())
    assert [r["iteration"] for r in got] == [1, 2, 3, 4, 5, 6]
    assert got == expected


def test_env_without_plain_state_is_not_captured():
    class Opaque:
        pass

    import gymnasium as gym
    import numpy as np
    from gymnasium import spaces

    class WithObject(gym.Env):
        observation_space = spaces.Box(-1, 1, (1,), np.float32)
        action_space = spaces.Discrete(2)

        def __init__(self):
            self.world = Opaque()

    assert capture_env(WithObject()) is None
