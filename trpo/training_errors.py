"""Why a run cannot go on: errors whose messages are whole sentences naming the iteration and
the cause, and the checks on a collected batch that raise them."""

from __future__ import annotations

import numpy as np

from trpo.rollout import Batch


class StateMismatchError(ValueError):
    """A saved trainer state that does not fit the config (other network sizes, env...)."""


class TrainingError(RuntimeError):
    """A run cannot go on; the message is a whole sentence naming the iteration and the cause."""


class NonFiniteDataError(TrainingError):
    """The environment produced NaN or inf; the update is skipped and the run must stop."""


class EnvStepError(TrainingError):
    """The environment raised while being stepped (for example an observation that does not
    fit its declared space); no update is made and the run must stop."""


def where(iteration: int) -> str:
    """'iteration N', or 'the normalisation warm-up' for iteration 0."""
    return "the normalisation warm-up" if iteration == 0 else f"iteration {iteration}"


def check_finite(batch: Batch, iteration: int) -> None:
    """Refuse a batch with non-finite observations or rewards before it touches any network."""
    problems = []
    if not np.isfinite(batch.raw_obs).all() or not np.isfinite(batch.next_obs).all():
        problems.append("observations")
    if not np.isfinite(batch.rewards).all():
        problems.append("rewards")
    if problems:
        raise NonFiniteDataError(
            f"{where(iteration)}: the environment returned non-finite (NaN or inf) "
            f"{' and '.join(problems)}; the update was skipped"
        )
