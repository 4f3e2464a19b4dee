"""Backtracking line search along the natural-gradient step, with a per-candidate trace.

Candidate j = 0..K is theta_old + alpha^j * s * x, s = sqrt(2 delta / x^T H x). The first
candidate whose mean KL(pi_old || pi_new) <= delta and whose surrogate improves is accepted; if
none passes the old parameters are restored exactly. Non-finite KL or surrogate fails a candidate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Given flat policy parameters, return (surrogate L(theta), mean KL(pi_old || pi_theta)).
Evaluate = Callable[[torch.Tensor], tuple[float, float]]


@dataclass(frozen=True)
class Candidate:
    """One tried step: index j, its fraction alpha^j of the full step, and what it gave."""

    j: int
    fraction: float
    kl: float
    actual_improvement: float
    expected_improvement: float
    kl_ok: bool
    improved: bool

    @property
    def accepted(self) -> bool:
        return self.kl_ok and self.improved


@dataclass(frozen=True)
class LineSearchResult:
    """accepted_index is None when no candidate passed; params are then theta_old itself."""

    params: torch.Tensor
    accepted_index: int | None
    candidates: list[Candidate]

    @property
    def accepted(self) -> bool:
        return self.accepted_index is not None


def backtracking_line_search(
    evaluate: Evaluate,
    theta_old: torch.Tensor,
    full_step: torch.Tensor,
    expected_full_improvement: float,
    surrogate_old: float,
    delta: float,
    alpha: float,
    max_backtracks: int,
) -> LineSearchResult:
    """Try theta_old + alpha^j full_step for j = 0..max_backtracks; keep the first that passes.

    full_step is s * x; expected_full_improvement is its linear model g^T (s x). The evaluate
    callback may change the policy; the caller must load result.params afterwards, which is
    theta_old (the same tensor, bit for bit) when nothing was accepted.
    """
    candidates: list[Candidate] = []
    for j in range(max_backtracks + 1):
        fraction = alpha**j
        theta = theta_old + fraction * full_step
        surrogate, kl = evaluate(theta)
        actual = surrogate - surrogate_old
        kl_ok = math.isfinite(kl) and kl <= delta
        improved = math.isfinite(actual) and actual > 0
        candidates.append(
            Candidate(
                j=j,
                fraction=fraction,
                kl=kl,
                actual_improvement=actual,
                expected_improvement=fraction * expected_full_improvement,
                kl_ok=kl_ok,
                improved=improved,
            )
        )
        if kl_ok and improved:
            return LineSearchResult(theta, j, candidates)
    return LineSearchResult(theta_old, None, candidates)
