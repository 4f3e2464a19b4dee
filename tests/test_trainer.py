"""The trainer end to end on tiny budgets: smoke per action type, determinism, stop, records."""

import threading

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config
from trpo.config import TRPOConfig
from trpo.record import IterationRecord
from trpo.trainer import Trainer

# four iterations of 512 steps
FOUR = dict(total_steps=2048, vf_epochs=2, seed=3)


def train(config: TRPOConfig) -> list[IterationRecord]:
    trainer = Trainer(config)
    try:
        return list(trainer.run())
    finally:
        trainer.close()


@pytest.mark.parametrize(
    "env_id, extra",
    [
        ("CartPole-v1", {}),
        ("Pendulum-v1", {"normalize_observations": True, "normalize_rewards": True}),
        ("Acrobot-v1", {"normalize_observations": True}),
        ("InvertedPendulum-v5", {}),
    ],
)
def test_smoke_run_yields_complete_records(env_id, extra):
    warmup = 512 if extra else 0  # normalised runs first play one warm-up batch
    records = train(tiny_config(env_id, FOUR, total_steps=2048 + warmup, **extra))
    assert [r.iteration for r in records] == [1, 2, 3, 4]
    assert [r.env_steps for r in records] == [warmup + s for s in (512, 1024, 1536, 2048)]
    for r in records:
        assert len(r.cg_residuals) >= 1
        assert all(np.isfinite(r.cg_residuals))
        assert len(r.line_search) >= 1
        assert r.time_collect_s > 0 and r.time_cg_s > 0 and r.time_value_s > 0
        assert np.isfinite(r.value_loss) and np.isfinite(r.entropy)
        if r.step_accepted:
            chosen = r.line_search[r.backtrack_index]
            assert r.backtrack_index == len(r.line_search) - 1
            assert r.kl == chosen.kl <= 0.01
            assert chosen.actual_improvement > 0
            assert r.step_norm > 0
        else:
            assert r.backtrack_index is None and r.kl is None and r.step_norm == 0.0
        # the record round-trips through its JSON form
        assert IterationRecord.from_dict(r.to_dict()).to_dict() == r.to_dict()
    assert sum(r.episodes for r in records) > 0


def test_step_scale_puts_quadratic_kl_model_at_delta():
    """Full step s x with s = sqrt(2 delta / x^T H x) has model KL 1/2 s^2 x^T H x = delta,
    and the true KL of candidate j is close to that model times alpha^(2j)."""
    records = train(tiny_config("CartPole-v1", FOUR, total_steps=1024))
    for r in records:
        assert r.step_scale == pytest.approx(np.sqrt(2 * 0.01 / r.x_h_x))
        first = r.line_search[0]
        assert first.fraction == 1.0
        assert first.expected_improvement == pytest.approx(r.step_scale * r.g_dot_x)
        assert 0.2 * 0.01 < first.kl < 5 * 0.01


def test_same_seed_gives_identical_records():
    a = train(tiny_config("Pendulum-v1", FOUR))
    b = train(tiny_config("Pendulum-v1", FOUR))

    def strip(r):
        d = r.to_dict()
        for key in list(d):
            if key.startswith("time_") or key in ("wall_time_s", "iteration_time_s", "steps_per_s"):
                d.pop(key)
        return d

    assert [strip(r) for r in a] == [strip(r) for r in b]
    c = train(tiny_config("Pendulum-v1", FOUR, seed=4))
    assert [strip(r) for r in a] != [strip(r) for r in c]


def test_stop_event_ends_between_iterations():
    trainer = Trainer(tiny_config("CartPole-v1", FOUR, total_steps=100_000))
    stop = threading.Event()
    seen = []
    try:
        for record in trainer.run(stop):
            seen.append(record.iteration)
            if record.iteration == 2:
                stop.set()
    finally:
        trainer.close()
    assert seen == [1, 2]
    assert trainer.iteration == 2 and trainer.env_steps == 1024


def test_state_round_trip_gives_identical_policy_and_next_record():
    config = tiny_config("CartPole-v1", FOUR)
    first = Trainer(config)
    try:
        next(iter(first.run()))
        state = first.state()
        second = Trainer(config, state)
        try:
            for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True):
                assert torch.equal(a, b)
            for a, b in zip(first.value.parameters(), second.value.parameters(), strict=True):
                assert torch.equal(a, b)
            assert second.iteration == 1 and second.env_steps == 512
            assert first.rng.bit_generator.state == second.rng.bit_generator.state
            assert torch.equal(first.generator.get_state(), second.generator.get_state())
        finally:
            second.close()
    finally:
        first.close()
