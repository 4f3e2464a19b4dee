"""Records tell the truth: CG residuals named for what they are and checked against an explicit
solve; entropy and log std of one record describe the same policy."""

import math

import numpy as np
import pytest
import torch

import trpo.trainer as trainer_module
from tests.conftest import tiny_config
from trpo.natural import fisher_vector_product
from trpo.trainer import Trainer

# small networks (the explicit Fisher matrix below is n x n) and little damping
SMALL = dict(hidden_sizes=(8, 8), cg_damping=1e-3)


def explicit_damped_fisher(policy, obs, damping):
    """(H + damping I) as a float64 matrix, column by column from autograd's double backward."""
    params = list(policy.parameters())
    with torch.no_grad():
        old = tuple(t.clone() for t in policy.dist_params(obs))
    mean_kl = policy.kl(old, policy.dist_params(obs)).mean()
    product = fisher_vector_product(mean_kl, params, damping)
    n = sum(p.numel() for p in params)
    return torch.stack([product(e).detach() for e in torch.eye(n)], dim=1).double()


def test_true_residual_is_that_of_an_explicit_solve(monkeypatch):
    seen = {}
    real_cg = trainer_module.conjugate_gradient

    def spy(matvec, b, max_iters, tol):
        result = real_cg(matvec, b, max_iters, tol)
        seen.update(g=b.detach().clone(), x=result.x.detach().clone())
        return result

    monkeypatch.setattr(trainer_module, "conjugate_gradient", spy)
    # enough CG iterations (and no early stop) for float32's recurrence to drift below the truth
    trainer = Trainer(tiny_config(SMALL, cg_iters=60, cg_residual_tol=0.0))
    try:
        policy_before = [p.detach().clone() for p in trainer.policy.parameters()]
        batch = trainer.collector.collect(
            trainer.policy.numpy_actor(), trainer.obs_normalizer, 256, np.random.default_rng(0)
        )
        data = trainer._prepare(batch)
        direction = trainer._natural_direction(data)
        for p, p0 in zip(trainer.policy.parameters(), policy_before, strict=True):
            assert torch.equal(p, p0)  # the direction is taken at theta_old, which stays
        a = explicit_damped_fisher(trainer.policy, data.obs, trainer.config.cg_damping)
    finally:
        trainer.close()
    g, x = seen["g"].double(), seen["x"].double()
    want = float(torch.linalg.norm(g - a @ x))
    assert direction.cg_residuals[-1] < 0.1 * want  # the recurrence value is not the residual
    assert direction.cg_true_residual == pytest.approx(want, rel=1e-3, abs=1e-6 * float(g.norm()))
    # the recurrence value is recorded too, under its own name, and is not the true residual
    assert len(direction.cg_residuals) >= 1
    exact = torch.linalg.solve(a, g)
    assert float(torch.linalg.norm(x - exact)) < 1e-2 * float(torch.linalg.norm(exact))


def test_entropy_and_log_std_describe_the_same_policy():
    """Gaussian entropy is sum_i (log std_i + 1/2 log(2 pi e)): both from pi_old."""
    trainer = Trainer(tiny_config("Pendulum-v1", SMALL, total_steps=2048, delta=0.05))
    try:
        records = list(trainer.run())
    finally:
        trainer.close()
    assert any(r.step_accepted for r in records)
    log_stds = [r.log_std_mean for r in records]
    assert len(set(log_stds)) > 1  # the steps did move log std
    for r in records:
        assert r.entropy == pytest.approx(r.log_std_mean + 0.5 * math.log(2 * math.pi * math.e))


def test_old_records_without_the_true_residual_still_load():
    from trpo.record import IterationRecord

    trainer = Trainer(tiny_config(SMALL, total_steps=512))
    try:
        record = next(trainer.run())
    finally:
        trainer.close()
    data = record.to_dict()
    assert data["cg_true_residual"] is not None and data["cg_true_residual"] >= 0
    del data["cg_true_residual"]
    assert IterationRecord.from_dict(data).cg_true_residual is None
