"""Backtracking line search on synthetic models, and the trainer's all-or-nothing policy step."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector

import trpo.trainer as trainer_module
from tests.conftest import tiny_config
from trpo.linesearch import backtracking_line_search
from trpo.natural import CGResult
from trpo.trainer import Trainer

THETA_OLD = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
STEP = torch.tensor([1.0, 2.0, -2.0], dtype=torch.float64)  # |STEP|^2 = 9


class QuadraticModel:
    """KL(theta) = 0.5 c |theta - theta_old|^2; L(theta) = L0 + g.d - 0.5 h |d|^2, d = theta - old.

    Records every theta it is asked about.
    """

    def __init__(self, c, g_dot_step, h, surrogate_old=0.25):
        self.c, self.g_dot_step, self.h, self.surrogate_old = c, g_dot_step, h, surrogate_old
        self.calls = []

    def __call__(self, theta):
        self.calls.append(theta.clone())
        d = theta - THETA_OLD
        f = float(d @ STEP) / float(STEP @ STEP)  # the fraction of the full step
        kl = 0.5 * self.c * float(d @ d)
        surrogate = self.surrogate_old + f * self.g_dot_step - 0.5 * self.h * float(d @ d)
        return surrogate, kl


def _search(model, delta, alpha, k, expected_full=None):
    return backtracking_line_search(
        model,
        THETA_OLD,
        STEP,
        model.g_dot_step if expected_full is None else expected_full,
        model.surrogate_old,
        delta,
        alpha,
        k,
    )


def test_full_step_accepted_when_it_passes():
    model = QuadraticModel(c=0.002, g_dot_step=1.0, h=0.0)  # KL at full step 0.009
    result = _search(model, delta=0.01, alpha=0.8, k=10)
    assert result.accepted and result.accepted_index == 0
    assert len(result.candidates) == 1 and len(model.calls) == 1
    torch.testing.assert_close(result.params, THETA_OLD + STEP, rtol=0, atol=0)
    c = result.candidates[0]
    assert c.fraction == 1.0 and c.kl_ok and c.improved and c.accepted
    assert c.kl == pytest.approx(0.009)


@pytest.mark.parametrize(("c", "alpha"), [(0.05, 0.8), (0.2, 0.5), (1.0, 0.9), (0.01, 0.7)])
def test_shrinks_to_the_first_step_inside_the_kl_limit(c, alpha):
    delta = 0.01
    model = QuadraticModel(c=c, g_dot_step=2.0, h=0.0)
    kl_full = 0.5 * c * 9.0
    # KL(alpha^j step) = alpha^(2j) kl_full <= delta  <=>  j >= log(delta / kl_full) / (2 log alpha)
    expected_j = max(0, math.ceil(math.log(delta / kl_full) / (2.0 * math.log(alpha)) - 1e-12))
    result = _search(model, delta=delta, alpha=alpha, k=40)
    assert result.accepted_index == expected_j
    assert len(result.candidates) == expected_j + 1
    assert [cand.j for cand in result.candidates] == list(range(expected_j + 1))
    assert [cand.accepted for cand in result.candidates] == [False] * expected_j + [True]
    # The evaluated points: theta_old + alpha^j * step, and the accepted one is returned.
    fraction = 1.0
    for j, (cand, theta) in enumerate(zip(result.candidates, model.calls, strict=True)):
        assert cand.fraction == pytest.approx(fraction, rel=1e-12)
        torch.testing.assert_close(theta, THETA_OLD + fraction * STEP)
        assert cand.kl == pytest.approx(kl_full * fraction**2, rel=1e-9)
        assert cand.kl_ok == (j == expected_j)
        assert cand.expected_improvement == pytest.approx(2.0 * fraction, rel=1e-12)
        assert cand.actual_improvement == pytest.approx(2.0 * fraction, rel=1e-9)
        fraction *= alpha
    torch.testing.assert_close(result.params, model.calls[-1], rtol=0, atol=0)


def test_shrinks_until_the_surrogate_improves():
    # Improvement f * g - 0.5 h 9 f^2 with g = 1, h = 1: positive only for f < 2/9.
    model = QuadraticModel(c=0.0, g_dot_step=1.0, h=1.0)
    alpha = 0.6
    expected_j = math.floor(math.log(2.0 / 9.0) / math.log(alpha)) + 1  # first alpha^j < 2/9
    assert alpha**expected_j < 2.0 / 9.0 <= alpha ** (expected_j - 1)
    result = _search(model, delta=0.01, alpha=alpha, k=10, expected_full=3.0)
    assert result.accepted_index == expected_j
    for cand in result.candidates:
        f = cand.fraction
        assert cand.kl_ok
        assert cand.actual_improvement == pytest.approx(f - 4.5 * f * f, rel=1e-9)
        assert cand.improved == (cand.actual_improvement > 0)
        assert cand.expected_improvement == pytest.approx(3.0 * f)


def test_rejection_returns_theta_old_itself():
    model = QuadraticModel(c=100.0, g_dot_step=1.0, h=0.0)  # KL far above delta everywhere
    k = 6
    theta_before = THETA_OLD.clone()
    result = _search(model, delta=0.01, alpha=0.9, k=k)
    assert result.accepted_index is None and not result.accepted
    assert result.params is THETA_OLD
    assert torch.equal(result.params, theta_before)
    assert len(result.candidates) == k + 1 and len(model.calls) == k + 1
    assert not any(c.accepted for c in result.candidates)
    fractions = [c.fraction for c in result.candidates]
    assert fractions[0] == 1.0
    for a, b in itertools.pairwise(fractions):
        assert b == pytest.approx(0.9 * a, rel=1e-12)


def test_no_improvement_anywhere_is_rejected():
    model = QuadraticModel(c=0.0, g_dot_step=-1.0, h=0.0)
    result = _search(model, delta=0.01, alpha=0.5, k=3, expected_full=1.0)
    assert result.accepted_index is None and result.params is THETA_OLD
    assert all(c.kl_ok and not c.improved for c in result.candidates)


@pytest.mark.parametrize(
    "bad",
    [
        (0.5, float("nan")),  # NaN KL
        (float("nan"), 0.0),  # NaN surrogate
        (0.5, float("inf")),  # infinite KL
        (float("inf"), 0.0),  # infinite surrogate
    ],
)
def test_non_finite_values_fail_a_candidate(bad):
    calls = []

    def evaluate(theta):
        calls.append(theta)
        return bad if len(calls) == 1 else (0.5, 0.0)

    result = backtracking_line_search(evaluate, THETA_OLD, STEP, 1.0, 0.0, 0.01, 0.5, 5)
    assert result.accepted_index == 1
    first = result.candidates[0]
    assert not first.accepted
    assert not (first.kl_ok and first.improved)
    torch.testing.assert_close(result.params, THETA_OLD + 0.5 * STEP)


def test_nan_everywhere_is_rejected_after_k_plus_one():
    calls = []

    def evaluate(theta):
        calls.append(theta)
        return float("nan"), float("nan")

    result = backtracking_line_search(evaluate, THETA_OLD, STEP, 1.0, 0.0, 0.01, 0.5, 4)
    assert len(calls) == 5 and result.accepted_index is None and result.params is THETA_OLD


# --- through the real trainer ------------------------------------------------------------------


def _tiny_trainer(**overrides):
    return Trainer(
        tiny_config(steps_per_iteration=256, total_steps=512, hidden_sizes=(16,), **overrides)
    )


def _params(trainer):
    return [p.detach().clone() for p in trainer.policy.parameters()]


def _assert_bit_identical(before, trainer):
    after = list(trainer.policy.parameters())
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
        assert torch.equal(b, a.detach())


def test_trainer_accepted_step_stays_inside_the_trust_region(monkeypatch):
    trainer = _tiny_trainer()
    try:
        batches = []
        collect = trainer.collector.collect

        def spy(*args, **kwargs):
            batches.append(collect(*args, **kwargs))
            return batches[-1]

        monkeypatch.setattr(trainer.collector, "collect", spy)
        net_before = [m for m in trainer.policy.net if isinstance(m, torch.nn.Linear)]
        net_before = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in net_before]
        record = trainer.step()
        assert record.step_accepted and record.reject_reason is None
        assert record.backtrack_index == len(record.line_search) - 1
        # Recompute KL(pi_old || pi_new) on the batch with torch.distributions.
        obs = torch.as_tensor(batches[0].obs.reshape(-1, 4), dtype=torch.float32)

        def logits(layers):
            h = obs
            for i, (w, b) in enumerate(layers):
                h = h @ w.T + b
                if i < len(layers) - 1:
                    h = torch.tanh(h)
            return h

        linears = [m for m in trainer.policy.net if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            new_layers = [(m.weight, m.bias) for m in linears]
            kl = torch.distributions.kl_divergence(
                torch.distributions.Categorical(logits=logits(net_before)),
                torch.distributions.Categorical(logits=logits(new_layers)),
            ).mean()
        assert 0 < record.kl <= trainer.config.delta
        assert float(kl) == pytest.approx(record.kl, rel=1e-3, abs=1e-7)
        assert record.step_norm > 0
    finally:
        trainer.close()


def test_trainer_rejected_step_restores_parameters_bit_for_bit(monkeypatch):
    trainer = _tiny_trainer(max_backtracks=3)
    try:
        policy = trainer.policy
        real_kl = policy.kl
        seen = []

        def kl_plus_one(old, new):
            # A constant offset: same gradient and Fisher matrix, but every candidate's
            # mean KL is above delta, so the line search must reject the step.
            seen.append(parameters_to_vector(policy.parameters()).detach().clone())
            return real_kl(old, new) + 1.0

        monkeypatch.setattr(policy, "kl", kl_plus_one)
        before = _params(trainer)
        flat_before = parameters_to_vector(before)
        record = trainer.step()
        assert record.step_accepted is False
        assert record.backtrack_index is None
        assert record.kl is None
        assert record.reject_reason == "KL above delta"
        assert len(record.line_search) == 3 + 1
        assert all(not c.kl_ok for c in record.line_search)
        assert record.step_norm == 0.0
        assert record.surrogate_after == record.surrogate_before
        # The search did move the policy while evaluating candidates ...
        assert any(not torch.equal(flat, flat_before) for flat in seen)
        # ... and put it back exactly.
        _assert_bit_identical(before, trainer)
    finally:
        trainer.close()


@pytest.mark.parametrize(
    ("target", "replacement", "reason"),
    [
        ("step_scale", lambda x_h_x, delta: None, "x^T H x not a finite positive number"),
        (
            "conjugate_gradient",
            lambda matvec, b, iters, tol: CGResult(torch.full_like(b, float("nan")), [1.0]),
            "non-finite CG solution",
        ),
    ],
)
def test_trainer_non_finite_step_is_rejected_with_a_reason(
    monkeypatch, target, replacement, reason
):
    trainer = _tiny_trainer()
    try:
        monkeypatch.setattr(trainer_module, target, replacement)
        before = _params(trainer)
        record = trainer.step()
        assert record.step_accepted is False and record.backtrack_index is None
        assert record.reject_reason == reason
        assert record.line_search == []
        assert record.surrogate_after == record.surrogate_before
        _assert_bit_identical(before, trainer)
        # The rest of the iteration still ran.
        assert record.env_steps == 256 and np.isfinite(record.value_loss)
    finally:
        trainer.close()
