"""A sweep's results, read from its trials' runs: one row per trial (`sweep_trials`, for live
tables) or per configuration (`sweep_results`, best first), and their text tables. The final
return of a run is the mean of `return_mean` over the last 10% of its iterations (at least one
iteration; iterations without a finished episode are ignored)."""

from __future__ import annotations

import math
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

from trpo.formatting import markdown_table
from trpo.store import RunStoreError, load_metrics
from trpo.sweep.spec import show_value
from trpo.sweep.storage import load_sweep, sweep_runs

if TYPE_CHECKING:  # imported where a table is built: sweep trial workers never do
    import pandas as pd

FINAL_FRACTION = 0.1  # final return = mean over the last 10% of iterations


def final_return(frame: pd.DataFrame, fraction: float = FINAL_FRACTION) -> float:
    """Mean return_mean over the last `fraction` of the iterations (at least one); NaN if
    none of those iterations finished an episode."""
    if frame.empty:
        return float("nan")
    tail = max(1, math.ceil(fraction * len(frame)))
    values = frame["return_mean"].iloc[-tail:].dropna()
    return float(values.mean()) if len(values) else float("nan")


def sweep_trials(runs_dir: str | os.PathLike[str], sweep_id: str) -> pd.DataFrame:
    """One row per trial (pending ones included), in trial order: trial, config_id, seed, the
    swept knobs, status, iterations, env_steps, total_steps, progress (0-1), current_return
    (the latest return_mean), final_return, best_return, error, run_id, run_dir."""
    import pandas as pd

    info = load_sweep(runs_dir, sweep_id)
    runs = sweep_runs(runs_dir, sweep_id)
    knob_names = info.spec.knob_names
    rows = []
    for trial in info.trials:
        row: dict[str, Any] = {
            "trial": trial.trial_id,
            "config_id": trial.config_id,
            "seed": trial.seed,
        }
        for name in knob_names:
            value = getattr(trial.config, name)
            row[name] = show_value(value) if isinstance(value, tuple) else value
        row.update(
            status="pending",
            iterations=0,
            env_steps=0,
            total_steps=trial.config.total_steps,
            progress=0.0,
            current_return=float("nan"),
            final_return=float("nan"),
            best_return=float("nan"),
            error=None,
            run_id=None,
            run_dir=None,
        )
        run = runs.get(trial.trial_id)
        if run is not None:
            try:
                frame = load_metrics(run.path)
            except RunStoreError:
                frame = pd.DataFrame(columns=["iteration", "env_steps", "return_mean"])
            returns = frame["return_mean"].dropna() if len(frame) else pd.Series(dtype=float)
            steps = int(frame["env_steps"].iloc[-1]) if len(frame) else 0
            row.update(
                status=run.state(),
                iterations=int(frame["iteration"].iloc[-1]) if len(frame) else 0,
                env_steps=steps,
                progress=min(1.0, steps / trial.config.total_steps),
                current_return=float(returns.iloc[-1]) if len(returns) else float("nan"),
                final_return=final_return(frame),
                best_return=float(returns.max()) if len(returns) else float("nan"),
                error=run.status().get("error"),
                run_id=run.id,
                run_dir=str(run.path),
            )
        rows.append(row)
    columns = [
        "trial",
        "config_id",
        "seed",
        *knob_names,
        "status",
        "iterations",
        "env_steps",
        "total_steps",
        "progress",
        "current_return",
        "final_return",
        "best_return",
        "error",
        "run_id",
        "run_dir",
    ]
    return pd.DataFrame(rows, columns=columns)


def sweep_results(
    runs_dir: str | os.PathLike[str], sweep_id: str, include_unfinished: bool = False
) -> pd.DataFrame:
    """One row per configuration, best first: config_id, the swept knobs, n_trials, n_seeds
    (seeds counted in the statistics: finished trials, or every trial with a final return if
    include_unfinished), final_return_mean / _std (sample std, NaN for one seed) / _min / _max
    across those seeds, best_return (highest iteration return_mean of any seed) and the trial
    counts per status (n_finished, n_running, n_stopped, n_failed, n_interrupted, n_pending)."""
    import pandas as pd

    table = sweep_trials(runs_dir, sweep_id)
    knob_names = load_sweep(runs_dir, sweep_id).spec.knob_names
    rows = []
    for cid, group in table.groupby("config_id", sort=False):
        counted = group if include_unfinished else group[group["status"] == "finished"]
        finals = counted["final_return"].dropna()
        row: dict[str, Any] = {"config_id": cid}
        for name in knob_names:
            row[name] = group[name].iloc[0]
        row.update(
            n_trials=len(group),
            n_seeds=len(finals),
            final_return_mean=float(finals.mean()) if len(finals) else float("nan"),
            final_return_std=float(finals.std(ddof=1)) if len(finals) > 1 else float("nan"),
            final_return_min=float(finals.min()) if len(finals) else float("nan"),
            final_return_max=float(finals.max()) if len(finals) else float("nan"),
            best_return=float(group["best_return"].max()),
        )
        counts = Counter(group["status"])
        for state in ("finished", "running", "stopped", "failed", "interrupted", "pending"):
            row[f"n_{state}"] = counts.get(state, 0)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("final_return_mean", ascending=False, na_position="last")
    return frame.reset_index(drop=True)


def format_table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 2) -> str:
    """A markdown table of frame (floats with `digits` decimals, NaN as '-')."""
    columns = list(frame.columns) if columns is None else columns

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float):
            return f"{value:.{digits}f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"
        return str(value)

    body = [[cell(v) for v in row] for row in frame[columns].itertuples(index=False)]
    return markdown_table(columns, body)


def format_results(frame: pd.DataFrame, knob_names: list[str]) -> str:
    """The results table for terminals: knobs, seeds, final return mean/std/min/max, counts."""
    if frame.empty:
        return "(no configurations)"
    columns = [
        *knob_names,
        "n_seeds",
        "final_return_mean",
        "final_return_std",
        "final_return_min",
        "final_return_max",
        "n_finished",
        "n_failed",
    ]
    extra = [
        c
        for c in ("n_stopped", "n_interrupted", "n_pending", "n_running")
        if c in frame and frame[c].sum() > 0
    ]
    return format_table(frame, [*columns, *extra])
