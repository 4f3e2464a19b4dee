"""The Fisher matrix seen through CG: Lanczos's tridiagonal matrix from CG's coefficients
against a Lanczos run by hand and against numpy.linalg.eigvalsh of explicit matrices (random
SPD ones and the damped Fisher matrices of tiny policies), and the trainer's record of it."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch.nn.utils import vector_to_parameters

from tests.conftest import tiny_config
from trpo.cg_spectrum import CGSpectrum, cg_spectrum, cosine, lanczos_tridiagonal, ritz_values
from trpo.fisher import MLPFisher
from trpo.natural import conjugate_gradient, fisher_vector_product, flat_grad
from trpo.policies import CategoricalPolicy, GaussianPolicy
from trpo.record import IterationRecord
from trpo.spectrum_plots import SPECTRUM_FIELDS
from trpo.trainer import Trainer


def spd_system(n: int = 12, seed: int = 0, low: float = 1.0, high: float = 40.0):
    """A = Q diag(eigenvalues) Q^T with known, distinct eigenvalues, and a random b (float64)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigenvalues = np.geomspace(low, high, n)
    a = q @ np.diag(eigenvalues) @ q.T
    return 0.5 * (a + a.T), rng.standard_normal(n), eigenvalues


def lanczos(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k steps of Lanczos from b with full reorthogonalisation, in float64 and without CG:
    (alpha [k], beta [k - 1], orthonormal basis Q [n, k]) with Q^T A Q tridiagonal."""
    q = [b / np.linalg.norm(b)]
    alpha, beta = [], []
    for j in range(k):
        w = a @ q[j]
        alpha.append(q[j] @ w)
        basis = np.stack(q, axis=1)
        for _ in range(2):  # twice is enough (Giraud et al. 2005)
            w = w - basis @ (basis.T @ w)
        if j + 1 < k:
            beta.append(np.linalg.norm(w))
            q.append(w / beta[-1])
    return np.array(alpha), np.array(beta), np.stack(q, axis=1)


def cg_of(a: np.ndarray, b: np.ndarray, k: int):
    """conjugate_gradient on float64 tensors for exactly k iterations (no early stop)."""
    matrix = torch.from_numpy(a)
    return conjugate_gradient(lambda v: matrix @ v, torch.from_numpy(b), k, residual_tol=0.0)


# --- the tridiagonal matrix and its Ritz values -------------------------------------------------


def test_cg_coefficients_give_lanczos_tridiagonal_and_its_ritz_values():
    a, b, _ = spd_system()
    for k in range(1, b.size + 1):
        cg = cg_of(a, b, k)
        assert len(cg.step_sizes) == len(cg.betas) == len(cg.residual_norms) == k
        diagonal, off = lanczos_tridiagonal(cg.step_sizes, cg.betas)
        alpha, beta, basis = lanczos(a, b, k)
        # Lanczos's vectors are CG's residuals normalised, up to the sign (-1)^j
        np.testing.assert_allclose(diagonal, alpha, rtol=1e-9)
        np.testing.assert_allclose(np.abs(off), beta, rtol=1e-9)
        ritz = np.linalg.eigvalsh(basis.T @ a @ basis)  # A compressed to the Krylov space
        np.testing.assert_allclose(ritz_values(cg.step_sizes, cg.betas), ritz, rtol=1e-9)


def test_after_n_iterations_the_ritz_values_are_all_eigenvalues():
    a, b, eigenvalues = spd_system(n=10, seed=1)
    cg = cg_of(a, b, 10)
    np.testing.assert_allclose(ritz_values(cg.step_sizes, cg.betas), eigenvalues, rtol=1e-8)
    np.testing.assert_allclose(np.linalg.eigvalsh(a), eigenvalues, rtol=1e-12)


def test_ritz_extremes_close_in_on_the_spectrum_from_inside():
    """Cauchy interlacing: eig max rises and eig min falls with k, inside [lambda_min,
    lambda_max], so their ratio stays below the condition number until all are found."""
    a, b, eigenvalues = spd_system(n=30, seed=2, low=0.01, high=100.0)
    low, high = eigenvalues[0], eigenvalues[-1]
    previous = CGSpectrum(eig_max=0.0, eig_min=math.inf)
    for k in range(1, 31):
        spectrum = cg_spectrum(cg_of(a, b, k), torch.from_numpy(b))
        assert low * (1 - 1e-9) <= spectrum.eig_min <= spectrum.eig_max <= high * (1 + 1e-9)
        assert spectrum.eig_max >= previous.eig_max * (1 - 1e-12)
        assert spectrum.eig_min <= previous.eig_min * (1 + 1e-12)
        assert spectrum.condition == pytest.approx(spectrum.eig_max / spectrum.eig_min)
        assert spectrum.condition <= high / low * (1 + 1e-9)
        previous = spectrum
    # after 5 iterations: the largest eigenvalue nearly found, the smallest and the condition
    # number (1e4) far from it
    five = cg_spectrum(cg_of(a, b, 5), torch.from_numpy(b))
    assert five.eig_max > 0.5 * high and five.condition < 0.1 * high / low


def test_bad_coefficients_are_refused():
    with pytest.raises(ValueError, match="at least 2 ratios"):
        lanczos_tridiagonal([1.0, 2.0, 3.0], [0.5])
    with pytest.raises(ValueError, match="step sizes"):
        lanczos_tridiagonal([1.0, 0.0], [0.5])
    with pytest.raises(ValueError, match="ratios"):
        lanczos_tridiagonal([1.0, 2.0], [math.nan])
    assert ritz_values([], []).size == 0
    np.testing.assert_allclose(ritz_values([0.25], []), [4.0])  # 1 / a_0


def test_no_cg_iteration_gives_no_spectrum():
    zero = torch.zeros(5, dtype=torch.float64)
    assert cg_spectrum(conjugate_gradient(lambda v: v, zero, 5), zero) == CGSpectrum()
    # a non-positive curvature at once: no step size, but x = 0 has no angle either
    minus = conjugate_gradient(lambda v: -v, torch.ones(3), 5)
    assert minus.step_sizes == [] and cg_spectrum(minus, torch.ones(3)) == CGSpectrum()


def test_cosine_of_g_and_x():
    rng = np.random.default_rng(3)
    g, x = rng.standard_normal(7), rng.standard_normal(7)
    expected = g @ x / (np.linalg.norm(g) * np.linalg.norm(x))
    assert cosine(torch.from_numpy(g), torch.from_numpy(x)) == pytest.approx(expected, rel=1e-12)
    assert cosine(torch.ones(4), 3 * torch.ones(4)) == pytest.approx(1.0)
    assert cosine(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == 0.0
    assert cosine(torch.zeros(3), torch.ones(3)) is None
    # float32 vectors whose norms overflow in float32 are taken in float64
    big = torch.full((4,), 3e38)
    assert cosine(big, big) == pytest.approx(1.0)


# --- the explicit Fisher matrix of tiny policies ------------------------------------------------


def tiny_policy(kind: str, seed: int):
    gen = torch.Generator().manual_seed(seed)
    if kind == "categorical":
        policy = CategoricalPolicy(3, 4, (5,), "tanh", gen)
    else:
        policy = GaussianPolicy(3, 2, (5,), "tanh", -0.3, gen)
    policy = policy.double()
    with torch.no_grad():  # move off the near-zero output init so every parameter matters
        for p in policy.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return policy


def explicit_fisher(policy, obs: torch.Tensor, old: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """H [P, P], column by column from autograd's double-backward products H e_i
    (natural.fisher_vector_product, checked against torch's Hessian in test_natural.py)."""
    params = list(policy.parameters())
    product = fisher_vector_product(policy.kl(old, policy.dist_params(obs)).mean(), params)
    eye = torch.eye(sum(p.numel() for p in params), dtype=torch.float64)
    h = torch.stack([product(e) for e in eye], dim=1)
    return 0.5 * (h + h.T)


def policy_gradient(policy, obs: torch.Tensor, old: tuple[torch.Tensor, ...], seed: int):
    """g of the surrogate at theta_old for sampled actions and random advantages."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(policy, CategoricalPolicy):
        actions = torch.multinomial(old[0].exp(), 1, generator=gen).squeeze(-1)
    else:
        mean, log_std = old
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=gen, dtype=mean.dtype)
    advantages = torch.randn(obs.shape[0], generator=gen, dtype=torch.float64)
    ratio = torch.exp(
        policy.log_prob(policy.dist_params(obs), actions) - policy.log_prob(old, actions)
    )
    return flat_grad((ratio * advantages).mean(), list(policy.parameters()))


@pytest.mark.parametrize("kind", ["categorical", "gaussian"])
@pytest.mark.parametrize("damping", [0.1, 1e-3])
def test_ritz_extremes_against_eigvalsh_of_the_explicit_fisher_matrix(kind, damping):
    policy = tiny_policy(kind, seed=4)
    obs = torch.randn(64, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        old = tuple(t.clone() for t in policy.dist_params(obs))
    h = explicit_fisher(policy, obs, old)
    n = h.shape[0]
    a = h + damping * torch.eye(n, dtype=torch.float64)
    eigenvalues, vectors = torch.linalg.eigh(a)
    low, high = float(eigenvalues[0]), float(eigenvalues[-1])
    g = policy_gradient(policy, obs, old, seed=6)
    # g has a real component along the top eigenvector: CG can find lambda_max
    assert abs(float(vectors[:, -1] @ g)) > 1e-3 * float(g.norm())

    fvp = MLPFisher(policy, obs, damping)  # the trainer's product
    # CG to convergence: in floating point that can take more than n iterations when the
    # condition number is large (the basis loses orthogonality); the Ritz values stay inside
    # the spectrum all the same, converged ones reappearing as copies (Paige 1980).
    full = conjugate_gradient(fvp, g, max_iters=10 * n, residual_tol=1e-11 * float(g.norm()))
    assert float((g - fvp(full.x)).norm()) < 1e-9 * float(g.norm())
    spectrum = cg_spectrum(full, g)
    ritz = ritz_values(full.step_sizes, full.betas)
    # Every Ritz value inside the spectrum, up to float64 rounding of products of size
    # lambda_max; the largest at lambda_max to 1e-8: the extreme eigenvalue g excites converges
    # first, to rounding, long before CG stops.
    assert low - 1e-10 * high <= ritz.min() and ritz.max() <= high * (1 + 1e-10)
    assert spectrum.eig_max == pytest.approx(high, rel=1e-8)
    assert spectrum.eig_min >= low * (1 - 1e-8)
    assert spectrum.condition <= high / low * (1 + 1e-8)
    assert spectrum.cos_g_x == pytest.approx(cosine(g, torch.linalg.solve(a, g)), rel=1e-6)

    # After 3 iterations: bounds from inside, and the ratio far below the condition number
    few = cg_spectrum(conjugate_gradient(fvp, g, max_iters=3, residual_tol=0.0), g)
    assert low <= few.eig_min and few.eig_max <= high * (1 + 1e-10)
    assert few.condition < 0.5 * high / low


# --- the trainer's record -----------------------------------------------------------------------


def traced_iteration(config) -> tuple[IterationRecord, Trainer, dict]:
    """One trainer iteration and what its CG solved: the prepared batch and the direction."""
    trainer = Trainer(config)
    seen: dict = {}
    natural_direction = trainer._natural_direction

    def traced(prepared):
        seen["prepared"], seen["direction"] = prepared, natural_direction(prepared)
        return seen["direction"]

    trainer._natural_direction = traced
    try:
        return trainer.step(), trainer, seen
    finally:
        trainer.close()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_the_record_carries_the_spectrum_of_its_iteration(env_id):
    config = tiny_config(env_id, hidden_sizes=(8,), total_steps=512)  # 5 CG iterations
    record, trainer, seen = traced_iteration(config)
    values = (record.fisher_eig_max, record.fisher_eig_min, record.fisher_condition)
    assert all(v is not None and math.isfinite(v) and v > 0 for v in values), values
    assert 0 < record.cos_g_x <= 1
    assert record.fisher_condition == pytest.approx(values[0] / values[1], rel=1e-12)

    # the same iteration by hand, in float64: H at theta_old on the batch, damped
    direction, prepared = seen["direction"], seen["prepared"]
    policy = copy.deepcopy(trainer.policy).double()
    vector_to_parameters(direction.theta_old.double(), list(policy.parameters()))
    old = tuple(t.double() for t in prepared.old)
    h = explicit_fisher(policy, prepared.obs.double(), old)
    a = h + config.cg_damping * torch.eye(h.shape[0], dtype=torch.float64)
    eigenvalues = torch.linalg.eigvalsh(a)
    low, high = float(eigenvalues[0]), float(eigenvalues[-1])
    # The exact Ritz values of the k-dimensional Krylov space of g. CG ran in float32: its
    # products carry rounding errors of about 1e-7 lambda_max, which grow once the residual
    # nears float32's resolution (CartPole's H here has only 7 eigenvalues above the damping,
    # and |r_5| ~ 3e-6 |g|). So eig min agrees to 1e-3 lambda_max (measured: 3e-4 CartPole,
    # 1e-7 Pendulum) and eig max, converged first, to 1e-5 relative (measured 1e-7).
    k = len(record.cg_residuals)
    _, _, basis = lanczos(a.numpy(), direction.g.double().numpy(), k)
    exact = np.linalg.eigvalsh(basis.T @ a.numpy() @ basis)
    assert record.fisher_eig_max == pytest.approx(exact[-1], rel=1e-5)
    assert abs(record.fisher_eig_min - exact[0]) <= 1e-3 * high
    assert low * (1 - 1e-6) <= record.fisher_eig_min
    assert record.fisher_eig_max <= high * (1 + 1e-5)
    assert record.cos_g_x == pytest.approx(cosine(direction.g, direction.x), rel=1e-12)
    # written and read back through the metrics log's dict form; an older log has no spectrum
    assert IterationRecord.from_dict(record.to_dict()).fisher_condition == record.fisher_condition
    older = {k: v for k, v in record.to_dict().items() if k not in SPECTRUM_FIELDS}
    assert IterationRecord.from_dict(older).fisher_eig_max is None
