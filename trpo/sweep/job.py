"""One trial of a sweep's launch as the driver and the backends pass it between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trpo.store import Run
from trpo.sweep.spec import Trial


@dataclass
class Job:
    """One trial of this launch: its run (None until it first starts), how often no pool
    worker could start it, its Optuna trial, and how far its metrics log was reported."""

    trial: Trial
    run: Run | None
    attempts: int = 0
    study_trial: Any = None  # optuna.Trial
    offset: int = 0  # bytes of the metrics log read
    reported: int = 0  # the last iteration reported to the study
    prune: bool = False  # the pruner said so: the run was asked to stop
    prune_sent: bool = False  # (Ray) the request went to the task
