"""The natural-gradient direction: Fisher-vector products and conjugate gradient.

H is the Hessian of the mean KL(pi_old || pi_theta) at theta = theta_old (the Fisher matrix);
it is only used through products H v, each one a second backward pass. Conjugate gradient
solves (H + damping I) x = g for the search direction x without ever forming H.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]


def flat_grad(
    output: torch.Tensor,
    params: Sequence[torch.Tensor],
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> torch.Tensor:
    """d output / d params, flattened into one vector (zeros for unused params)."""
    grads = torch.autograd.grad(
        output, params, retain_graph=retain_graph, create_graph=create_graph, allow_unused=True
    )
    return torch.cat(
        [
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]
    )


def fisher_vector_product(
    mean_kl: torch.Tensor, params: Sequence[torch.Tensor], damping: float = 0.0
) -> MatVec:
    """Return v -> (H + damping I) v, H the Hessian of mean_kl with respect to params.

    mean_kl must be the mean KL(pi_old || pi_theta) with pi_old detached, built from params
    (its gradient is zero at theta_old, its Hessian is the Fisher matrix). The gradient graph is
    built once here and reused by every product.
    """
    grad_kl = flat_grad(mean_kl, params, retain_graph=True, create_graph=True)

    def product(v: torch.Tensor) -> torch.Tensor:
        hv = flat_grad(grad_kl @ v.detach(), params, retain_graph=True)
        return hv + damping * v if damping else hv

    return product


@dataclass(frozen=True)
class CGResult:
    """x ~ A^-1 b and the residual norm |b - A x| after every iteration done, with CG's
    coefficients of each iteration k done: the step size a_k = r_k^T r_k / p_k^T A p_k and the
    ratio b_k = r_{k+1}^T r_{k+1} / r_k^T r_k (Lanczos's tridiagonal matrix of A is built from
    them: trpo.cg_spectrum)."""

    x: torch.Tensor
    residual_norms: list[float]
    step_sizes: list[float] = field(default_factory=list)  # a_k, one per iteration done
    betas: list[float] = field(default_factory=list)  # b_k, one per iteration done


def conjugate_gradient(
    matvec: MatVec, b: torch.Tensor, max_iters: int, residual_tol: float = 1e-10
) -> CGResult:
    """Solve A x = b for symmetric positive-definite A given only v -> A v.

    Starts from x = 0 (no randomness); stops after max_iters or once |r| <= residual_tol.
    Stops early as well if the curvature p^T A p is not positive (A is then not SPD along p).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    r_dot_r = float(r @ r)
    norms: list[float] = []
    steps: list[float] = []
    betas: list[float] = []
    if math.sqrt(r_dot_r) <= residual_tol:
        return CGResult(x, norms, steps, betas)
    for _ in range(max_iters):
        ap = matvec(p)
        curvature = float(p @ ap)
        if not math.isfinite(curvature) or curvature <= 0:
            break
        step = r_dot_r / curvature
        x = x + step * p
        r = r - step * ap
        new_r_dot_r = float(r @ r)
        norms.append(math.sqrt(new_r_dot_r))
        steps.append(step)
        betas.append(new_r_dot_r / r_dot_r)
        if norms[-1] <= residual_tol:
            break
        p = r + betas[-1] * p
        r_dot_r = new_r_dot_r
    return CGResult(x, norms, steps, betas)


def step_scale(x_h_x: float, delta: float) -> float | None:
    """sqrt(2 delta / x^T H x): the largest multiple of x whose quadratic KL model equals delta.

    Returns None when x^T H x is not a finite positive number (the step must then be rejected).
    """
    if not math.isfinite(x_h_x) or x_h_x <= 0:
        return None
    scale = math.sqrt(2.0 * delta / x_h_x)
    return scale if math.isfinite(scale) else None
