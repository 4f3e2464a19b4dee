"""Fisher-vector products against an explicit Hessian; conjugate gradient; the step scale."""

import math

import pytest
import torch
from torch.func import functional_call

from trpo.natural import conjugate_gradient, fisher_vector_product, step_scale
from trpo.policies import CategoricalPolicy, GaussianPolicy

# --- Fisher-vector products ------------------------------------------------------------------


def _tiny_policy(kind, seed):
    gen = torch.Generator().manual_seed(seed)
    if kind == "categorical":
        policy = CategoricalPolicy(3, 4, (4,), "tanh", gen)
    else:
        policy = GaussianPolicy(3, 2, (4,), "tanh", -0.3, gen)
    policy = policy.double()
    with torch.no_grad():  # move off the near-zero output init so every parameter matters
        for p in policy.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return policy


def _distribution(kind, policy, flat, obs):
    """torch.distributions object of the policy at flat parameters (independent of trpo)."""
    params, offset = {}, 0
    for name, p in policy.named_parameters():
        params[name] = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    assert offset == flat.numel()
    net_params = {k[len("net.") :]: v for k, v in params.items() if k.startswith("net.")}
    out = functional_call(policy.net, net_params, (obs,))
    if kind == "categorical":
        return torch.distributions.Categorical(logits=out)
    std = params["log_std"].exp().expand_as(out)
    return torch.distributions.Independent(torch.distributions.Normal(out, std), 1)


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
@pytest.mark.parametrize("at_old", [True, False])
def test_fvp_equals_explicit_hessian_of_mean_kl(kind, at_old):
    policy = _tiny_policy(kind, seed=1)
    gen = torch.Generator().manual_seed(2)
    obs = torch.randn(24, 3, generator=gen, dtype=torch.float64)
    params = list(policy.parameters())
    flat_now = torch.cat([p.detach().reshape(-1) for p in params])
    # pi_old: the current parameters (where H is the Fisher matrix), or another point.
    flat_old = flat_now if at_old else flat_now + 0.2 * torch.randn_like(flat_now)
    with torch.no_grad():
        old_dist = _distribution(kind, policy, flat_old, obs)
        if not at_old:
            saved = [p.detach().clone() for p in params]
            offset = 0
            for p in params:
                p.copy_(flat_old[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        # clone: a Gaussian's log std in dist_params is a view of the parameter
        old = tuple(t.detach().clone() for t in policy.dist_params(obs))
        if not at_old:
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)

    def mean_kl_of(flat):
        new_dist = _distribution(kind, policy, flat, obs)
        return torch.distributions.kl_divergence(old_dist, new_dist).mean()

    hessian = torch.autograd.functional.hessian(mean_kl_of, flat_now)
    n = flat_now.numel()
    assert hessian.shape == (n, n)

    damping = 0.07
    mean_kl = policy.kl(old, policy.dist_params(obs)).mean()
    fvp = fisher_vector_product(mean_kl, params, damping)
    fvp_plain = fisher_vector_product(policy.kl(old, policy.dist_params(obs)).mean(), params)
    for _ in range(4):  # the graph is reused by every product
        v = torch.randn(n, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(fvp(v), hessian @ v + damping * v, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(fvp_plain(v), hessian @ v, rtol=1e-9, atol=1e-11)
    assert hessian.abs().max() > 1e-3  # not a trivially zero check

    if at_old:
        # The Fisher matrix: symmetric positive semi-definite.
        torch.testing.assert_close(hessian, hessian.T, rtol=1e-9, atol=1e-12)
        eigenvalues = torch.linalg.eigvalsh(hessian)
        assert eigenvalues.min() > -1e-10 * eigenvalues.max()
        assert eigenvalues.max() > 0


# --- conjugate gradient ----------------------------------------------------------------------


def _spd_system(n=20, seed=0, low=1.0, high=30.0):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    eigenvalues = torch.linspace(low, high, n, dtype=torch.float64)
    a = q @ torch.diag(eigenvalues) @ q.T
    a = 0.5 * (a + a.T)
    b = torch.randn(n, generator=gen, dtype=torch.float64)
    return a, b


def test_cg_converges_to_the_solution():
    a, b = _spd_system()
    result = conjugate_gradient(lambda v: a @ v, b, max_iters=60, residual_tol=1e-10)
    torch.testing.assert_close(result.x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    assert len(result.residual_norms) <= 60
    assert result.residual_norms[-1] <= 1e-10


def test_cg_residual_norms_are_true_residuals_after_each_iteration():
    a, b = _spd_system(seed=3)
    n = b.numel()
    full = conjugate_gradient(lambda v: a @ v, b, max_iters=n, residual_tol=0.0)
    assert len(full.residual_norms) == n
    scale = float(b.norm())
    for k in range(1, n + 1):
        calls = []

        def matvec(v, calls=calls):
            calls.append(1)
            return a @ v

        partial = conjugate_gradient(matvec, b, max_iters=k, residual_tol=0.0)
        assert len(partial.residual_norms) == k
        assert len(calls) == k  # one product per iteration
        true_residual = float(torch.linalg.norm(b - a @ partial.x))
        assert partial.residual_norms[-1] == pytest.approx(
            true_residual, rel=1e-6, abs=1e-9 * scale
        )
        assert full.residual_norms[k - 1] == pytest.approx(
            true_residual, rel=1e-6, abs=1e-9 * scale
        )
        assert partial.residual_norms == full.residual_norms[:k]


def test_cg_first_iterate_starts_from_zero():
    a, b = _spd_system(seed=4)
    # From x0 = 0 the first direction is b, and the exact line minimum along it is
    # (b.b / b.A.b) b.
    one = conjugate_gradient(lambda v: a @ v, b, max_iters=1)
    torch.testing.assert_close(one.x, (b @ b) / (b @ a @ b) * b)


def test_cg_stops_early_once_tolerance_is_reached():
    a, b = _spd_system(seed=5, low=1.0, high=4.0)
    n = b.numel()
    tol = 1e-4 * float(b.norm())
    # The first k at which the true residual |b - A x_k| is below tol.
    expected_k = None
    for k in range(1, n + 1):
        x_k = conjugate_gradient(lambda v: a @ v, b, max_iters=k, residual_tol=0.0).x
        if float(torch.linalg.norm(b - a @ x_k)) <= tol:
            expected_k = k
            break
    assert expected_k is not None and expected_k < n
    result = conjugate_gradient(lambda v: a @ v, b, max_iters=n, residual_tol=tol)
    assert len(result.residual_norms) == expected_k
    assert result.residual_norms[-1] <= tol
    assert all(r > tol for r in result.residual_norms[:-1])


def test_cg_zero_right_hand_side_gives_zero_without_products():
    def matvec(v):
        raise AssertionError("no product is needed for b = 0")

    result = conjugate_gradient(matvec, torch.zeros(7, dtype=torch.float64), max_iters=10)
    assert torch.equal(result.x, torch.zeros(7, dtype=torch.float64))
    assert result.residual_norms == []


@pytest.mark.parametrize(
    "diagonal",
    [
        [-1.0, -2.0, -3.0, -4.0],  # negative definite: stops at once
        [5.0, 1.0, -0.5, -4.0],  # indefinite: positive at first, negative later
        [1.0, 0.0, 0.0, 0.0],  # singular
    ],
)
def test_cg_stops_on_non_positive_curvature_without_nan(diagonal):
    a = torch.diag(torch.tensor(diagonal, dtype=torch.float64))
    b = torch.ones(4, dtype=torch.float64)
    result = conjugate_gradient(lambda v: a @ v, b, max_iters=50, residual_tol=0.0)
    assert torch.isfinite(result.x).all()
    assert all(math.isfinite(r) for r in result.residual_norms)
    assert len(result.residual_norms) < 4
    if diagonal[0] < 0:
        assert result.residual_norms == []
        assert torch.equal(result.x, torch.zeros(4, dtype=torch.float64))


# --- step scale ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_h_x", "delta"), [(1.0, 0.01), (0.02, 0.01), (250.0, 0.05), (3e-7, 1e-3)]
)
def test_step_scale_puts_the_quadratic_kl_at_delta(x_h_x, delta):
    scale = step_scale(x_h_x, delta)
    assert scale > 0
    # 0.5 * (s x)^T H (s x) = delta
    assert 0.5 * scale**2 * x_h_x == pytest.approx(delta, rel=1e-12)
    assert step_scale(1.0, 0.02) == pytest.approx(0.2)


@pytest.mark.parametrize("x_h_x", [0.0, -1.0, -1e-30, float("nan"), float("inf"), float("-inf")])
def test_step_scale_refuses_non_positive_or_non_finite(x_h_x):
    assert step_scale(x_h_x, 0.01) is None


def test_step_scale_refuses_overflow():
    # A positive but subnormal x^T H x would give an infinite scale.
    assert step_scale(5e-324, 0.01) is None
