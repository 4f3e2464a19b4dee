"""A sweep's results, read from its trials' runs: one row per trial (`sweep_trials`, for live
tables) or per configuration (`sweep_results`, best first), and their text tables. The final
return of a run is the mean of `return_mean` over the last 10% of its iterations (at least one
iteration; iterations without a finished episode are ignored)."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from trpo.config import ConfigError, TRPOConfig
from trpo.formatting import markdown_table
from trpo.store import Run, RunStoreError, load_metrics
from trpo.sweep.driver import TRIAL_STATES
from trpo.sweep.spec import is_int, show_value
from trpo.sweep.storage import load_sweep, sweep_runs

if TYPE_CHECKING:  # imported where a table is built: sweep trial workers never do
    import pandas as pd

    from trpo.metrics_tail import TailCache

FINAL_FRACTION = 0.1  # final return = mean over the last 10% of iterations


def final_return(frame: pd.DataFrame, fraction: float = FINAL_FRACTION) -> float:
    """Mean return_mean over the last `fraction` of the iterations (at least one); NaN if
    none of those iterations finished an episode."""
    if frame.empty:
        return float("nan")
    tail = max(1, math.ceil(fraction * len(frame)))
    values = frame["return_mean"].iloc[-tail:].dropna()
    return float(values.mean()) if len(values) else float("nan")


def sweep_trials(
    runs_dir: str | os.PathLike[str], sweep_id: str, tails: TailCache | None = None
) -> pd.DataFrame:
    """One row per trial, in the order they were started, then the pending ones: trial,
    config_id, seed, the swept knobs, status, iterations, env_steps, total_steps, progress
    (0-1), current_return (the latest return_mean), final_return, best_return, error, run_id,
    run_dir. Pending trials are known by their configuration in a grid search over the whole
    grid; otherwise the search has yet to choose them, and their rows (trial '(pending N)')
    have no configuration.

    tails: read the metrics logs through these incremental readers (trpo.metrics_tail, one per
    run), so that a live view parses only the records appended since its last call; the table is
    the same as without (every log read whole)."""
    import pandas as pd

    info = load_sweep(runs_dir, sweep_id)
    runs = sweep_runs(runs_dir, sweep_id)
    knob_names = info.spec.knob_names
    rows = []
    for trial_id, run in sorted(runs.items(), key=lambda item: _started(item[1])):
        tags = run.meta().get("tags", {})
        config = _config(run)
        knobs = tags.get("knobs") if isinstance(tags.get("knobs"), dict) else {}
        seed = tags.get("seed", config.seed if config is not None else None)
        total = config.total_steps if config is not None else info.spec.base.total_steps
        row = _row(trial_id, tags.get("config_id"), seed, knob_names, total)
        for name in knob_names:
            value = knobs.get(name, getattr(config, name, None))
            row[name] = show_value(value) if isinstance(value, (list, tuple)) else value
        frame = _metrics(run, tails)
        returns = frame["return_mean"].dropna() if len(frame) else pd.Series(dtype=float)
        steps = int(frame["env_steps"].iloc[-1]) if len(frame) else 0
        row.update(
            status=run.state(),
            iterations=int(frame["iteration"].iloc[-1]) if len(frame) else 0,
            env_steps=steps,
            progress=min(1.0, steps / total) if total else 0.0,
            current_return=float(returns.iloc[-1]) if len(returns) else float("nan"),
            final_return=final_return(frame),
            best_return=float(returns.max()) if len(returns) else float("nan"),
            error=run.status().get("error"),
            run_id=run.id,
            run_dir=str(run.path),
        )
        rows.append(row)
    grid = info.grid_trials()
    if grid is not None:
        for trial in grid:
            if trial.trial_id not in runs:
                row = _row(
                    trial.trial_id, trial.config_id, trial.seed, [], trial.config.total_steps
                )
                for name in knob_names:
                    value = getattr(trial.config, name)
                    row[name] = show_value(value) if isinstance(value, tuple) else value
                rows.append(row)
    else:
        total = info.spec.base.total_steps
        for index in range(max(0, info.spec.n_trials - len(runs))):
            rows.append(_row(f"(pending {index + 1})", None, None, knob_names, total))
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


def _row(
    trial_id: str, cid: Any, seed: Any, knob_names: list[str], total_steps: int
) -> dict[str, Any]:
    """A pending trial's row (knobs unknown)."""
    nan = float("nan")
    row: dict[str, Any] = {"trial": trial_id, "config_id": cid, "seed": seed}
    row.update({name: None for name in knob_names})
    row.update(
        status="pending",
        iterations=0,
        env_steps=0,
        total_steps=total_steps,
        progress=0.0,
        current_return=nan,
        final_return=nan,
        best_return=nan,
        error=None,
        run_id=None,
        run_dir=None,
    )
    return row


def _metrics(run: Run, tails: TailCache | None) -> pd.DataFrame:
    """The run's metrics table (read whole, or through its tail); empty if unreadable."""
    import pandas as pd

    try:
        return load_metrics(run.path) if tails is None else tails.get(run.path).frame()
    except RunStoreError:
        return pd.DataFrame(columns=["iteration", "env_steps", "return_mean"])


def _started(run: Run) -> tuple[int, str]:
    """Runs in the order the study chose them (their Optuna trial number), else of creation."""
    number = run.meta().get("tags", {}).get("optuna_trial")
    return (number if is_int(number) else -1, run.id)


def _config(run: Run) -> TRPOConfig | None:
    try:
        return run.config()
    except (ConfigError, RunStoreError, OSError):
        return None


def state_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Trials per state (a sweep_trials table's status), every state of TRIAL_STATES in its
    order, then any other status found."""
    counts = Counter(trials["status"]) if len(trials) else Counter()
    out = {state: counts.pop(state, 0) for state in TRIAL_STATES}
    return {**out, **dict(sorted(counts.items()))}


def best_so_far(trials: pd.DataFrame) -> pd.DataFrame:
    """The search's progress: one row per finished trial with a final return, in the order the
    trials were started (a sweep_trials table's order, that of Optuna's trial numbers): number
    (the trial's 1-based position among the sweep's trials), trial, final_return, and best (the
    highest final return of the finished trials up to this one). Pruned trials are left out:
    their return is that of a run cut short."""
    import pandas as pd

    columns = ["number", "trial", "final_return", "best"]
    if not len(trials):
        return pd.DataFrame(columns=columns)
    numbered = trials.assign(number=range(1, len(trials) + 1))
    done = numbered[(numbered["status"] == "finished") & numbered["final_return"].notna()]
    out = done[["number", "trial", "final_return"]].astype({"final_return": float})
    out = out.assign(best=out["final_return"].cummax())
    return out.reset_index(drop=True)[columns]


def sweep_results(
    runs_dir: str | os.PathLike[str],
    sweep_id: str,
    include_unfinished: bool = False,
    tails: TailCache | None = None,
) -> pd.DataFrame:
    """One row per configuration, best first: config_id, the swept knobs, n_trials, n_seeds
    (seeds counted in the statistics: finished trials, or every trial with a final return if
    include_unfinished), final_return_mean / _std (sample std, NaN for one seed) / _min / _max
    across those seeds, best_return (highest iteration return_mean of any seed) and the trial
    counts per status (n_finished, n_pruned, n_running, n_stopped, n_failed, n_interrupted,
    n_pending; pending trials that the search has yet to choose have no configuration and are
    not counted). A pruned trial's return is partial: it counts with include_unfinished only.
    tails: as for sweep_trials."""
    import pandas as pd

    table = sweep_trials(runs_dir, sweep_id, tails)
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
        for state in (
            "finished",
            "pruned",
            "running",
            "stopped",
            "failed",
            "interrupted",
            "pending",
        ):
            row[f"n_{state}"] = counts.get(state, 0)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values("final_return_mean", ascending=False, na_position="last")
    return frame.reset_index(drop=True)


def format_table(
    frame: pd.DataFrame,
    columns: list[str] | None = None,
    digits: int = 2,
    significant: Collection[str] = (),
) -> str:
    """A markdown table of frame (floats with `digits` decimals, NaN as '-'; the floats of the
    `significant` columns, e.g. knob values drawn from a range, with 4 significant digits, so
    that 0.02003 and 0.01769 stay apart)."""
    columns = list(frame.columns) if columns is None else columns

    def cell(value: Any, column: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float) and column in significant:
            return f"{value:.4g}"
        if isinstance(value, float):
            return f"{value:.{digits}f}" if abs(value) >= 0.01 or value == 0 else f"{value:.3g}"
        return str(value)

    body = [
        [cell(v, c) for v, c in zip(row, columns, strict=True)]
        for row in frame[columns].itertuples(index=False)
    ]
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
        for c in ("n_pruned", "n_stopped", "n_interrupted", "n_pending", "n_running")
        if c in frame and frame[c].sum() > 0
    ]
    return format_table(frame, [*columns, *extra], significant=knob_names)
