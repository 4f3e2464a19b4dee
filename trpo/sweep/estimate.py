"""How long a sweep will take, said before it is launched.

The sweep's env steps (trials x env steps per trial) divided by the speed of one trial, in
waves of as many trials as run at once. The speed is measured where possible: env steps over
training wall time of the newest finished runs of the same env in the run store (their last
record; sweep trials count, and they ran beside other trials as these will). Without such a
run it is DEFAULT_STEPS_PER_S, a rough figure: the trainer runs about 1.3k (HalfCheetah-v5) to
2k (CartPole-v1) env steps per second on one core (benchmarks/README.md), and a sweep's trials
share the machine. With a pruner, the estimate is an upper bound. Reads the run store only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from trpo.config import ConfigError
from trpo.formatting import eta_text, plural
from trpo.metrics_log import parse_record
from trpo.store import METRICS, Run, RunStore, RunStoreError
from trpo.sweep.spec import KnobRange, SweepSpec, is_int

DEFAULT_STEPS_PER_S = 1000.0  # one trial's env steps per second when no run was measured
NEWEST_RUNS = 5  # finished runs of the env measured
SCAN_RUNS = 500  # newest runs of the store looked at for them
_TAIL_BYTES = 1 << 16  # the end of a metrics log read for its last record


@dataclass(frozen=True)
class SweepEstimate:
    """A sweep's expected duration and what it is based on."""

    trials: int
    steps_per_trial: int
    env_steps: int  # of the whole sweep
    steps_per_s: float  # of one trial
    parallel: int  # trials at once
    seconds: float
    measured_runs: tuple[str, ...]  # run ids measured; empty: DEFAULT_STEPS_PER_S
    pruner: str = "none"

    @property
    def basis(self) -> str:
        """Where steps_per_s comes from, in words."""
        if self.measured_runs:
            return f"measured on the {plural(len(self.measured_runs), 'newest finished run')}"
        return "a rough default (no finished run of this env to measure)"

    def text(self, env_id: str) -> str:
        out = (
            f"Estimated time: about {eta_text(self.seconds)} "
            f"({self.env_steps:,} env steps: {plural(self.trials, 'trial')} x "
            f"{self.steps_per_trial:,}; {plural(self.parallel, 'trial')} at a time at "
            f"{self.steps_per_s:,.0f} env steps/s each, "
        )
        if self.measured_runs:
            out += f"{self.basis} of {env_id})."
        else:
            out += f"{self.basis})."
        if self.pruner != "none":
            out += f" The {self.pruner} pruner can only shorten it."
        return out


def measured_steps_per_s(
    runs_dir: str | os.PathLike[str], env_id: str, newest: int = NEWEST_RUNS
) -> tuple[float, tuple[str, ...]] | None:
    """(env steps per second, the run ids) of the newest finished runs of env_id: their total
    env steps over their total training wall time (from each log's last record); None if no
    such run (among the SCAN_RUNS newest of the store) has both."""
    steps = wall = 0.0
    ids: list[str] = []
    for run in RunStore(runs_dir).runs()[:SCAN_RUNS]:
        if len(ids) >= newest:
            break
        try:
            if run.state() != "finished" or run.config().env_id != env_id:
                continue
        except (ConfigError, RunStoreError, OSError):
            continue
        last = last_record(run)
        if last is None:
            continue
        run_steps, run_wall = last.get("env_steps"), last.get("wall_time_s")
        if not (is_int(run_steps) and isinstance(run_wall, (int, float))):
            continue
        if run_steps <= 0 or not math.isfinite(run_wall) or run_wall <= 0:
            continue
        steps += run_steps
        wall += run_wall
        ids.append(run.id)
    return (steps / wall, tuple(ids)) if ids else None


def last_record(run: Run) -> dict[str, object] | None:
    """The last record of a run's metrics log (read from its end), or None."""
    try:
        with open(run.path / METRICS, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL_BYTES))
            data = handle.read()
    except OSError:
        return None
    for line in reversed(data.splitlines()):
        row = parse_record(line)
        if row is not None:
            return row
    return None


def steps_per_trial(spec: SweepSpec) -> int:
    """A trial's env steps: the base config's, or, when total_steps is swept, the mean of its
    values (the middle of its range)."""
    values = spec.grid.get("total_steps")
    if isinstance(values, KnobRange):
        return int((values.low + values.high) / 2)
    if values:
        return int(sum(values) / len(values))
    return spec.base.total_steps


def estimate_sweep(
    spec: SweepSpec,
    runs_dir: str | os.PathLike[str],
    workers: int,
    cpus: int | None = None,
) -> SweepEstimate:
    """The sweep's duration with `workers` parallel trials on `cpus` cores (default: this
    machine's; for a Ray cluster, its cores): ceil(trials / parallel) waves
    of one trial's env steps at the measured (or default) speed, parallel = min(workers,
    trials, cpus)."""
    measured = measured_steps_per_s(runs_dir, spec.base.env_id)
    rate, ids = measured if measured is not None else (DEFAULT_STEPS_PER_S, ())
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    trials = spec.n_trials
    parallel = max(1, min(workers, trials, cores))
    per_trial = steps_per_trial(spec)
    waves = math.ceil(trials / parallel)
    return SweepEstimate(
        trials=trials,
        steps_per_trial=per_trial,
        env_steps=trials * per_trial,
        steps_per_s=rate,
        parallel=parallel,
        seconds=waves * per_trial / rate,
        measured_runs=ids,
        pruner=spec.pruner,
    )
