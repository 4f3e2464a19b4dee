"""The one record an iteration yields: what the trainer did, for the CLI, run store and UI."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from trpo.linesearch import Candidate


@dataclass(frozen=True)
class Geometry:
    """True mean KL and surrogate improvement at fractions f of the full step s x, beside
    TRPO's models: KL ~ 1/2 (f s)^2 x^T H x and improvement ~ f s g^T x."""

    fractions: list[float]
    kl: list[float | None]
    improvement: list[float | None]
    kl_model: list[float]
    improvement_model: list[float]


@dataclass(frozen=True)
class IterationRecord:
    """Everything that happened in one TRPO iteration; None = not applicable (NaN in tables)."""

    iteration: int  # 1-based
    env_steps: int  # total env steps so far, after this iteration
    wall_time_s: float  # training wall time so far (across resumes)
    iteration_time_s: float
    steps_per_s: float  # env steps per second in this iteration
    # episodes that finished in this batch (raw, unnormalised rewards)
    episodes: int
    return_mean: float | None
    return_std: float | None
    return_min: float | None
    return_max: float | None
    length_mean: float | None
    # the trust-region step
    step_accepted: bool
    backtrack_index: int | None  # accepted j, None when rejected
    reject_reason: str | None
    kl: float | None  # mean KL(pi_old || pi_new) of the accepted step
    surrogate_before: float
    surrogate_after: float  # equals surrogate_before when rejected
    grad_norm: float  # |g|
    g_dot_x: float  # g^T x, x = H^-1 g from CG
    x_h_x: float | None  # x^T H x (H damped, as solved)
    step_scale: float | None  # sqrt(2 delta / x^T H x)
    step_norm: float  # |theta_new - theta_old| (0 when rejected)
    # CG's recurrence residual |r_k| after each iteration k: |g - (H + damping I) x_k| in exact
    # arithmetic, in float32 it drifts below the true one; the early stop (cg_residual_tol)
    # tests it, as the reference implementations do. The true residual of the x used is below.
    cg_residuals: list[float]
    line_search: list[Candidate]
    # policy and value diagnostics; entropy and log std are pi_old's, the policy that played
    # this iteration's episodes (like the returns above)
    entropy: float
    log_std_mean: float | None  # Gaussian policies only
    value_loss: float
    explained_variance: float | None
    # time split (seconds)
    time_collect_s: float
    time_advantages_s: float
    time_cg_s: float
    time_linesearch_s: float
    time_value_s: float
    time_probe_s: float = 0.0
    # |g - (H + damping I) x| at the x CG returned, from the product x^T H x needs anyway
    cg_true_residual: float | None = None
    # the true KL and surrogate along theta_old + f * s * x (config.probe_geometry), else None
    geometry: Geometry | None = None
    # A = H + damping I (as solved) seen through CG: the extreme eigenvalues of Lanczos's
    # tridiagonal matrix from CG's coefficients (trpo.cg_spectrum). eig max is a lower bound
    # on A's largest eigenvalue, eig min an upper bound on its smallest, so their ratio
    # underestimates A's condition number. cos_g_x = g^T x / (|g| |x|).
    fisher_eig_max: float | None = None
    fisher_eig_min: float | None = None
    fisher_condition: float | None = None
    cos_g_x: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite floats become None)."""
        data = dataclasses.asdict(self)
        return json_safe(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IterationRecord:
        """The record of a to_dict() dict, or of a metrics-log line of any version: a field an
        older version did not write is None (an empty list for the CG residuals and the line
        search); fields a newer version added are ignored."""
        values: dict[str, Any] = {
            f.name: data.get(f.name)
            for f in dataclasses.fields(cls)
            if f.name in data
            or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        }
        values["cg_residuals"] = list(values.get("cg_residuals") or [])
        values["line_search"] = [
            _known(Candidate, c) for c in values.get("line_search") or [] if isinstance(c, dict)
        ]
        if isinstance(values.get("geometry"), dict):
            values["geometry"] = _known(Geometry, values["geometry"])
        return cls(**values)

    def summary(self) -> str:
        """One line for terminals."""
        ret = "   n/a" if self.return_mean is None else f"{self.return_mean:9.2f}"
        step = (
            f"j={self.backtrack_index:<2d} kl={self.kl:.4f}"
            if self.step_accepted and self.kl is not None
            else f"rejected ({self.reject_reason})"
        )
        ev = "n/a" if self.explained_variance is None else f"{self.explained_variance:5.2f}"
        return (
            f"it {self.iteration:4d} | steps {self.env_steps:9,d} | return {ret} "
            f"({self.episodes} ep) | {step} | cg {len(self.cg_residuals)} | "
            f"vloss {self.value_loss:.3g} | ev {ev} | {self.steps_per_s:,.0f} steps/s"
        )


def _known(cls: type, data: dict[str, Any]) -> Any:
    """cls built from the keys of data it has fields for (a newer version's keys ignored)."""
    return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})


def json_safe(value: Any) -> Any:
    """value with every non-finite float replaced by None and dict keys as text, recursively
    (JSON has no NaN or inf)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
