"""The geometry probe: the true mean KL and surrogate along the step direction, beside TRPO's
quadratic KL model and linear surrogate model (config.probe_geometry)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trpo.record import Geometry


def probe_geometry(
    evaluate: Callable[[torch.Tensor], tuple[float, float]],
    theta_old: torch.Tensor,
    full_step: torch.Tensor,
    surrogate_old: float,
    full_step_quadratic: float,
    full_step_linear: float,
    points: int,
) -> Geometry:
    """True KL and surrogate improvement at f in [0, 1.5] along the full step, and the models
    1/2 f^2 (s x)^T H (s x) and f g^T (s x). The caller restores the parameters afterwards."""
    fractions = [1.5 * i / (points - 1) for i in range(points)]
    kls: list[float | None] = []
    gains: list[float | None] = []
    for f in fractions:
        surrogate, kl = evaluate(theta_old + f * full_step)
        kls.append(kl if math.isfinite(kl) else None)
        gain = surrogate - surrogate_old
        gains.append(gain if math.isfinite(gain) else None)
    return Geometry(
        fractions=fractions,
        kl=kls,
        improvement=gains,
        kl_model=[0.5 * f * f * full_step_quadratic for f in fractions],
        improvement_model=[f * full_step_linear for f in fractions],
    )
