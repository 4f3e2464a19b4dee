"""What conjugate gradient saw of A = H + damping I: the extreme eigenvalues of A on the Krylov
space CG explored, their ratio, and the angle between g and x.

k CG iterations on A x = g from x_0 = 0 explore the Krylov space K_k = span{g, A g, ...,
A^(k-1) g}, with the orthonormal basis v_j = r_j / |r_j| (CG's residuals are mutually
orthogonal). In that basis A is Lanczos's tridiagonal matrix T_k = V_k^T A V_k, and CG's
coefficients give it without another product (Saad, "Iterative Methods for Sparse Linear
Systems", 2nd ed., sec. 6.7.3; Golub & Van Loan, "Matrix Computations", 4th ed., sec. 11.3):
with the step sizes a_j and the ratios b_j of squared residual norms (`natural.CGResult`),

    T[0, 0] = 1 / a_0,   T[j, j] = 1 / a_j + b_(j-1) / a_(j-1),   T[j, j+1] = -sqrt(b_j) / a_j.

Its eigenvalues, the Ritz values, lie in [lambda_min(A), lambda_max(A)] (T_k is A compressed
to a subspace: Cauchy interlacing), and the extreme ones converge first. So:
  - eig_max, the largest Ritz value, is a lower bound on lambda_max(A); it rises with k;
  - eig_min, the smallest, is an upper bound on lambda_min(A); it falls with k, and it only
    reaches the directions g excites (never, for one, the null space of a rank-deficient H,
    where lambda_min(A) = damping);
  - their ratio is a lower bound on the condition number lambda_max / lambda_min of A, well
    below it after a few iterations.
In floating point the basis slowly loses orthogonality and converged Ritz values reappear as
copies, but all stay in the spectrum up to rounding (Paige 1980, "Accuracy and effectiveness
of the Lanczos algorithm for the symmetric eigenproblem").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from trpo.natural import CGResult


def lanczos_tridiagonal(
    step_sizes: Sequence[float], betas: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """(diagonal [k], off-diagonal [k - 1]) of Lanczos's T_k, float64, from k CG step sizes a_j
    and at least k - 1 ratios b_j (later ones are ignored: T_k does not use b_(k-1)).

    Raises ValueError if a step size is not finite and positive, a ratio not finite and
    non-negative, or fewer than k - 1 ratios are given."""
    a = np.asarray(step_sizes, dtype=np.float64)
    k = a.size
    b = np.asarray(betas, dtype=np.float64)[: max(k - 1, 0)]
    if b.size < k - 1:
        raise ValueError(f"{k} step sizes need at least {k - 1} ratios b_j, got {b.size}")
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise ValueError("CG step sizes a_j must be finite and positive")
    if not (np.isfinite(b).all() and (b >= 0).all()):
        raise ValueError("CG ratios b_j must be finite and non-negative")
    diagonal = 1.0 / a
    diagonal[1:] += b / a[:-1]
    return diagonal, -np.sqrt(b) / a[:-1]


def ritz_values(step_sizes: Sequence[float], betas: Sequence[float]) -> np.ndarray:
    """The eigenvalues of T_k, ascending, float64 [k] (empty for k = 0); ValueError as
    `lanczos_tridiagonal`."""
    diagonal, off = lanczos_tridiagonal(step_sizes, betas)
    t = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    return np.linalg.eigvalsh(t)


@dataclass(frozen=True)
class CGSpectrum:
    """One iteration's view of A = H + damping I through CG; None = not available (no CG
    iteration, or non-finite or non-positive coefficients)."""

    eig_max: float | None = None  # largest Ritz value: a lower bound on lambda_max(A)
    eig_min: float | None = None  # smallest Ritz value: an upper bound on lambda_min(A)
    condition: float | None = None  # eig_max / eig_min: a lower bound on A's condition number
    cos_g_x: float | None = None  # g^T x / (|g| |x|): 1 when x is parallel to g


def cosine(g: torch.Tensor, x: torch.Tensor) -> float | None:
    """g^T x / (|g| |x|) in float64 for vectors g, x [P]; None when either is zero or the
    result is not finite."""
    g64, x64 = g.detach().double(), x.detach().double()
    norms = float(g64.norm()) * float(x64.norm())
    if not math.isfinite(norms) or norms == 0:
        return None
    value = float(g64 @ x64) / norms
    return value if math.isfinite(value) else None


def cg_spectrum(result: CGResult, g: torch.Tensor) -> CGSpectrum:
    """The Ritz extremes of CG's T_k, their ratio, and cos(g, x) for x = result.x, the
    solution of A x = g."""
    cos_g_x = cosine(g, result.x)
    try:
        ritz = ritz_values(result.step_sizes, result.betas)
    except (ValueError, np.linalg.LinAlgError):
        return CGSpectrum(cos_g_x=cos_g_x)
    if ritz.size == 0:
        return CGSpectrum(cos_g_x=cos_g_x)
    eig_min, eig_max = float(ritz[0]), float(ritz[-1])
    condition = eig_max / eig_min if eig_min > 0 else None
    return CGSpectrum(eig_max, eig_min, condition, cos_g_x)
