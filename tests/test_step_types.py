"""The typed step results and the record filled from them: timing from the stopwatch's laps,
the rest field by field."""

import numpy as np
import pytest
import torch

from trpo.rollout import Batch
from trpo.step_types import LineSearchOutcome, NaturalDirection, PreparedBatch, iteration_record
from trpo.stopwatch import Stopwatch


def direction(**overrides) -> NaturalDirection:
    values = dict(
        theta_old=torch.zeros(3), old_log_prob=torch.zeros(4), g=torch.ones(3),
        x=torch.tensor([1.0, 2.0, 3.0]), surrogate_before=0.5, grad_norm=3**0.5, g_dot_x=6.0,
        x_h_x=8.0, step_scale=0.05, cg_residuals=[0.1, 0.01], cg_true_residual=0.02,
        problem=None,
    )  # fmt: skip
    values.update(overrides)
    return NaturalDirection(**values)


def test_full_step_and_its_models():
    d = direction()
    assert torch.equal(d.full_step, 0.05 * d.x)
    assert d.full_step_quadratic == 0.05 * 0.05 * 8.0
    assert d.expected_improvement == 0.05 * 6.0
    bad = direction(step_scale=None, x_h_x=None, problem="x^T H x not a finite positive number")
    with pytest.raises(ValueError, match="x\\^T H x"):
        _ = bad.full_step
    outcome = LineSearchOutcome.not_run(bad)
    assert not outcome.accepted and outcome.candidates == [] and outcome.step_norm == 0.0
    assert outcome.reject_reason == bad.problem and outcome.surrogate_after == 0.5


def test_record_takes_its_times_from_the_laps():
    ticks = iter([0.0, 2.0, 2.0, 2.5, 3.0, 4.0, 4.0, 4.5, 5.0, 6.0])
    watch = Stopwatch(lambda: next(ticks))
    for name in ("collect", "advantages", "cg", "linesearch", "value"):
        with watch.lap(name):
            pass
    T, N = 4, 2
    batch = Batch(
        obs=np.zeros((T, N, 1)), raw_obs=np.zeros((T, N, 1)), next_obs=np.zeros((T, N, 1)),
        actions=np.zeros((T, N)), rewards=np.zeros((T, N)), terminated=np.zeros((T, N), bool),
        episode_end=np.zeros((T, N), bool), episode_returns=[1.0, 3.0], episode_lengths=[2, 4],
    )  # fmt: skip
    prepared = PreparedBatch(
        obs=torch.zeros(8, 1), actions=torch.zeros(8), advantages=torch.zeros(8),
        returns=torch.zeros(8), old=(torch.zeros(8, 2),), entropy=0.69, log_std_mean=None,
        explained_variance=0.25,
    )  # fmt: skip
    search = LineSearchOutcome(
        backtrack_index=1, fraction=0.8, kl=0.009, surrogate_after=0.6, step_norm=0.3,
        candidates=[], reject_reason=None,
    )  # fmt: skip
    record = iteration_record(
        iteration=3, env_steps=24, wall_time_s=20.0, batch=batch, prepared=prepared,
        direction=direction(), search=search, geometry=None, value_loss=0.125, watch=watch,
    )  # fmt: skip
    assert (record.time_collect_s, record.time_advantages_s, record.time_cg_s) == (2.0, 0.5, 1.0)
    assert (record.time_linesearch_s, record.time_value_s, record.time_probe_s) == (0.5, 1.0, 0.0)
    assert record.iteration_time_s == 5.0 and record.steps_per_s == 8 / 5.0
    assert record.step_accepted and record.backtrack_index == 1 and record.kl == 0.009
    assert (record.surrogate_before, record.surrogate_after) == (0.5, 0.6)
    assert (record.x_h_x, record.step_scale, record.g_dot_x) == (8.0, 0.05, 6.0)
    assert record.cg_residuals == [0.1, 0.01] and record.cg_true_residual == 0.02
    assert (record.episodes, record.return_mean, record.length_mean) == (2, 2.0, 3.0)
    assert (record.entropy, record.explained_variance, record.value_loss) == (0.69, 0.25, 0.125)
