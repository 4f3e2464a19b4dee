"""The typed results of one TRPO iteration's steps, and the record filled from them.

The trainer composes: a PreparedBatch (advantages, returns, pi_old) -> a NaturalDirection
(g, x = H^-1 g by CG, x^T H x) -> a LineSearchOutcome (accepted j, KL, improvement). Shapes
below use M = T * N, the batch's samples flattened time-major, and P, the number of policy
parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trpo.cg_spectrum import CGSpectrum
from trpo.linesearch import Candidate
from trpo.record import Geometry, IterationRecord
from trpo.rollout import Batch
from trpo.stopwatch import Stopwatch


@dataclass(frozen=True)
class PreparedBatch:
    """One batch ready for the policy and value updates, and pi_old's diagnostics."""

    obs: torch.Tensor  # [M, obs_dim] float32, the (normalised) observations the policy saw
    # [M] int64 (Discrete), [M, act_dim] int64 (MultiDiscrete, MultiBinary) or float32 (Box)
    actions: torch.Tensor
    advantages: torch.Tensor  # [M] float32, GAE(gamma, lambda), standardised if configured
    returns: torch.Tensor  # [M] float32, advantages + V(s): the value function's targets
    # pi_old's distribution parameters on obs, cloned: (log probs [M, n],) for the categorical
    # kinds, (logits [M, n],) for MultiBinary, (mean [M, d], log std [M, d]) for Box
    old: tuple[torch.Tensor, ...]
    entropy: float  # mean entropy of pi_old on obs
    log_std_mean: float | None  # pi_old's mean Gaussian log std; None for other policies
    explained_variance: float | None  # 1 - Var(returns - V) / Var(returns); None if Var = 0


@dataclass(frozen=True)
class NaturalDirection:
    """The step direction at theta_old: g, x = (H + damping I)^-1 g by CG, and its scale."""

    theta_old: torch.Tensor  # [P] the policy's flat parameters when g was taken
    old_log_prob: torch.Tensor  # [M] log pi_old(a|s), shared by every candidate's ratio
    g: torch.Tensor  # [P] gradient of the surrogate L at theta_old
    x: torch.Tensor  # [P] CG's solution
    surrogate_before: float  # L(theta_old)
    grad_norm: float  # |g|
    g_dot_x: float  # g^T x
    x_h_x: float | None  # x^T H x (H damped, as solved); None unless finite
    step_scale: float | None  # s = sqrt(2 delta / x^T H x); None unless finite positive
    cg_residuals: list[float]  # CG's recurrence |r_k| after each iteration k
    cg_true_residual: float | None  # |g - (H + damping I) x|; None unless finite
    problem: str | None  # why no step can be taken (non-finite or degenerate), else None
    spectrum: CGSpectrum | None = None  # A = H + damping I through CG's coefficients; cos(g, x)

    @property
    def full_step(self) -> torch.Tensor:
        """s x: the step whose quadratic KL model equals delta (only when problem is None)."""
        if self.step_scale is None:
            raise ValueError(f"no full step: {self.problem}")
        return self.step_scale * self.x

    @property
    def full_step_quadratic(self) -> float:
        """(s x)^T H (s x) = s^2 x^T H x: twice the quadratic KL model of the full step."""
        if self.step_scale is None or self.x_h_x is None:
            raise ValueError(f"no full step: {self.problem}")
        return self.step_scale * self.step_scale * self.x_h_x

    @property
    def expected_improvement(self) -> float:
        """g^T (s x): the linear model's surrogate improvement of the full step."""
        if self.step_scale is None:
            raise ValueError(f"no full step: {self.problem}")
        return self.step_scale * self.g_dot_x


@dataclass(frozen=True)
class LineSearchOutcome:
    """What the backtracking line search chose; when nothing was accepted the policy is
    theta_old exactly and surrogate_after is surrogate_before."""

    backtrack_index: int | None  # accepted j, None when rejected
    fraction: float | None  # alpha^j of the accepted step
    kl: float | None  # mean KL(pi_old || pi_new) of the accepted step
    surrogate_after: float
    step_norm: float  # |theta_new - theta_old|, 0 when rejected
    candidates: list[Candidate]  # every j tried ([] when the search did not run)
    reject_reason: str | None

    @property
    def accepted(self) -> bool:
        return self.backtrack_index is not None

    @classmethod
    def not_run(cls, direction: NaturalDirection) -> LineSearchOutcome:
        """No search: the direction itself has a problem, which becomes the reason."""
        return cls(None, None, None, direction.surrogate_before, 0.0, [], direction.problem)


def iteration_record(
    *,
    iteration: int,
    env_steps: int,
    wall_time_s: float,
    batch: Batch,
    prepared: PreparedBatch,
    direction: NaturalDirection,
    search: LineSearchOutcome,
    geometry: Geometry | None,
    value_loss: float,
    watch: Stopwatch,
) -> IterationRecord:
    """The record of one iteration, field by field from its steps' results; iteration_time_s
    is the stopwatch's total, its laps the time split."""
    returns = np.asarray(batch.episode_returns, dtype=np.float64)
    spectrum = direction.spectrum or CGSpectrum()
    has_episodes = returns.size > 0
    elapsed = watch.total
    return IterationRecord(
        iteration=iteration,
        env_steps=env_steps,
        wall_time_s=wall_time_s,
        iteration_time_s=elapsed,
        steps_per_s=batch.size / elapsed if elapsed > 0 else 0.0,
        episodes=int(returns.size),
        return_mean=float(returns.mean()) if has_episodes else None,
        return_std=float(returns.std()) if has_episodes else None,
        return_min=float(returns.min()) if has_episodes else None,
        return_max=float(returns.max()) if has_episodes else None,
        length_mean=float(np.mean(batch.episode_lengths)) if has_episodes else None,
        step_accepted=search.accepted,
        backtrack_index=search.backtrack_index,
        reject_reason=search.reject_reason,
        kl=search.kl,
        surrogate_before=direction.surrogate_before,
        surrogate_after=search.surrogate_after,
        grad_norm=direction.grad_norm,
        g_dot_x=direction.g_dot_x,
        x_h_x=direction.x_h_x,
        step_scale=direction.step_scale,
        step_norm=search.step_norm,
        cg_residuals=direction.cg_residuals,
        line_search=search.candidates,
        entropy=prepared.entropy,
        log_std_mean=prepared.log_std_mean,
        value_loss=value_loss,
        explained_variance=prepared.explained_variance,
        time_collect_s=watch["collect"],
        time_advantages_s=watch["advantages"],
        time_cg_s=watch["cg"],
        time_linesearch_s=watch["linesearch"],
        time_value_s=watch["value"],
        time_probe_s=watch["probe"],
        cg_true_residual=direction.cg_true_residual,
        geometry=geometry,
        fisher_eig_max=spectrum.eig_max,
        fisher_eig_min=spectrum.eig_min,
        fisher_condition=spectrum.condition,
        cos_g_x=spectrum.cos_g_x,
    )
