"""Normalisation statistics against independent computations, the warm-up before iteration 1,
and batches whose advantages carry no signal."""

import numpy as np
import pytest
import torch
from stable_baselines3.common.running_mean_std import RunningMeanStd as SB3RunningMeanStd

import trpo.trainer as trainer_module
from tests.conftest import tiny_config
from trpo.advantages import standardize
from trpo.config import ConfigError
from trpo.normalization import ObservationNormalizer, RewardScaler
from trpo.trainer import Trainer

PENDULUM = "Pendulum-v1"


def reward_stream(seed, batches=4, T=50, N=3):
    """Pendulum-like rewards (-16..0) with random episode ends, as a list of [T, N] batches."""
    rng = np.random.default_rng(seed)
    return [
        (rng.uniform(-16.2, 0.0, size=(T, N)), rng.random((T, N)) < 0.03) for _ in range(batches)
    ]


def test_reward_statistics_equal_vecnormalize_step_by_step():
    """VecNormalize: R = gamma R + r; ret_rms.update(R); R[done] = 0, one env-vector a step."""
    gamma, N = 0.9, 3
    ours = RewardScaler(N, gamma, enabled=True)
    ref, running = SB3RunningMeanStd(shape=()), np.zeros(N)
    for rewards, ends in reward_stream(0, N=N):
        scaled = ours.scale_batch(rewards, ends)
        for t in range(rewards.shape[0]):
            running = running * gamma + rewards[t]
            ref.update(running)
            running[ends[t]] = 0.0
        assert ours.stats.mean == pytest.approx(ref.mean, rel=1e-9)
        assert ours.stats.var == pytest.approx(ref.var, rel=1e-9)
        # the whole batch is scaled by the statistics that include it
        want = np.clip(rewards / np.sqrt(ref.var + 1e-8), -10, 10)
        np.testing.assert_allclose(scaled, want, rtol=1e-9)


def test_first_batch_is_scaled_not_clipped():
    """Prior statistics (var 1) must not reach the first batch: Pendulum's -16 stays in range."""
    rewards, ends = reward_stream(1, batches=1, T=200)[0]
    scaler = RewardScaler(3, 0.9, enabled=True)
    scaled = scaler.scale_batch(rewards, ends)
    assert np.abs(scaled).max() < 10  # nothing at the clip
    assert np.std(scaled) < 0.5 * np.std(rewards)


def test_disabled_scalers_are_identity_and_keep_no_statistics():
    rewards, ends = reward_stream(2, batches=1)[0]
    scaler = RewardScaler(3, 0.99, enabled=False)
    assert scaler.scale_batch(rewards, ends) is rewards
    scaler.update(rewards, ends)
    assert scaler.stats.count == pytest.approx(1e-4)
    norm = ObservationNormalizer(3, enabled=False)
    norm.update(rewards)
    assert norm(rewards) is rewards and norm.stats.count == pytest.approx(1e-4)


def test_observation_normalizer_matches_numpy_and_clips():
    rng = np.random.default_rng(3)
    data = rng.normal(5.0, 3.0, size=(1000, 4))
    norm = ObservationNormalizer(4, enabled=True)
    norm.update(data[:400])
    norm.update(data[400:])
    x = rng.normal(5.0, 3.0, size=(7, 4))
    want = np.clip((x - data.mean(0)) / np.sqrt(data.var(0) + 1e-8), -10, 10)
    np.testing.assert_allclose(norm(x), want, rtol=1e-6, atol=1e-5)  # prior count 1e-4
    assert (np.abs(norm(np.full((1, 4), 1e6))) == 10).all()


# --- the warm-up before iteration 1 -------------------------------------------------------------


def test_normalised_run_warms_its_statistics_on_one_batch_before_iteration_one():
    trainer = Trainer(
        tiny_config(PENDULUM, total_steps=1536, normalize_observations=True, normalize_rewards=True)
    )
    try:
        # one batch of the initial policy, counted as env steps, trained on not at all
        assert trainer.env_steps == 512 and trainer.iteration == 0
        assert trainer.obs_normalizer.stats.count == pytest.approx(512 + 1e-4)
        assert trainer.reward_scaler.stats.count == pytest.approx(512 + 1e-4)
        # Pendulum's observation is (cos, sin, angular velocity): the warmed statistics are
        # those of real states, not the prior (mean 0, var 1)
        assert trainer.obs_normalizer.stats.var[2] > 1.5
        records = list(trainer.run())
    finally:
        trainer.close()
    assert [r.env_steps for r in records] == [1024, 1536]


def test_unnormalised_run_has_no_warm_up():
    trainer = Trainer(tiny_config(PENDULUM))
    try:
        assert trainer.env_steps == 0
        assert [r.env_steps for r in trainer.run()] == [512, 1024]
    finally:
        trainer.close()


def test_budget_must_leave_an_iteration_after_the_warm_up():
    with pytest.raises(ConfigError, match="warm-up"):
        tiny_config(PENDULUM, total_steps=512, normalize_rewards=True)
    tiny_config(PENDULUM, total_steps=512)  # no normalisation: one iteration is enough


# --- batches whose advantages carry no signal ----------------------------------------------


@pytest.mark.parametrize("c", [0.0, 1.0, -3.7, 1e-9, 12345.678, np.float32(0.3)])
def test_constant_advantages_standardise_to_zero(c):
    a = np.full((64, 2), c, dtype=np.float64)
    # float32 round trip: the value the trainer used to standardise in
    a32 = np.full((64, 2), c, dtype=np.float32).astype(np.float64)
    np.testing.assert_array_equal(standardize(a), np.zeros_like(a))
    np.testing.assert_array_equal(standardize(a32), np.zeros_like(a))


def test_degenerate_spread_relative_to_scale_is_zero():
    rng = np.random.default_rng(0)
    a = 250.0 + 1e-6 * rng.normal(size=1000)  # spread 4e-9 of the scale: round-off, not signal
    np.testing.assert_array_equal(standardize(a), np.zeros_like(a))


def test_standardise_equals_the_textbook_formula():
    rng = np.random.default_rng(1)
    a = rng.normal(3.0, 2.0, size=(256, 4))
    want = (a - a.mean()) / a.std(ddof=1)
    np.testing.assert_allclose(standardize(a), want, rtol=1e-12)
    assert standardize(np.array([5.0])).tolist() == [0.0]
    bad = np.array([1.0, np.nan])
    assert np.isnan(standardize(bad)).any()  # left for the trainer's non-finite checks


def test_constant_advantage_batch_takes_no_step(monkeypatch):
    real_gae = trainer_module.gae

    def constant_gae(*args, **kwargs):
        advantages, returns = real_gae(*args, **kwargs)
        return np.full_like(advantages, 0.73), returns

    monkeypatch.setattr(trainer_module, "gae", constant_gae)
    trainer = Trainer(tiny_config(total_steps=512))
    try:
        before = [p.detach().clone() for p in trainer.policy.parameters()]
        record = trainer.step()
        after = list(trainer.policy.parameters())
    finally:
        trainer.close()
    assert record.grad_norm == 0.0
    assert not record.step_accepted and record.line_search == []
    assert record.reject_reason.startswith("zero policy gradient")
    for p0, p1 in zip(before, after, strict=True):
        assert torch.equal(p0, p1)
