"""Numbers the pages show, computed from a run's metrics: the trust region's record over a run,
one iteration's line search as a table (from its IterationRecord), training progress and its
ETA, the Lagrange multiplier of a step, one run's row of the Runs table. Pure functions of
metrics, records and configs (no Streamlit), tested in tests/test_analysis.py and
tests/test_plots.py."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from trpo.config import TRPOConfig
from trpo.formatting import eta_text, finite
from trpo.record import IterationRecord

#: Columns of the Runs table (`run_row`), in order.
RUN_COLUMNS = [
    "name",
    "env",
    "delta",
    "alpha",
    "K",
    "seed",
    "status",
    "iterations",
    "env steps",
    "last return",
    "best return",
    "started",
    "run id",
]


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def trust_region_summary(frame: pd.DataFrame, delta: float) -> dict[str, Any]:
    """Over all iterations: acceptance rate, why candidates failed, KL/delta and
    actual/expected improvement of the accepted steps."""
    candidates = [
        c for cands in frame.get("line_search", []) if isinstance(cands, list) for c in cands
    ]
    accepted = frame[frame["step_accepted"]] if len(frame) else frame
    ratios = []
    for _, row in accepted.iterrows():
        cands = _list(row.get("line_search"))
        j = row.get("backtrack_index")
        if cands and j is not None and not pd.isna(j) and int(j) < len(cands):
            c = cands[int(j)]
            if c["expected_improvement"]:
                ratios.append(c["actual_improvement"] / c["expected_improvement"])
    return {
        "iterations": len(frame),
        "acceptance_rate": float(frame["step_accepted"].mean()) if len(frame) else float("nan"),
        "candidates": len(candidates),
        "failed_kl": sum(1 for c in candidates if not c["kl_ok"]),
        "failed_improvement": sum(1 for c in candidates if not c["improved"]),
        "kl_over_delta": (accepted["kl"] / delta).dropna().tolist() if len(accepted) else [],
        "improvement_ratio": ratios,
        "mean_backtrack_index": float(accepted["backtrack_index"].mean())
        if len(accepted)
        else float("nan"),
    }


def line_search_table(record: IterationRecord, delta: float) -> pd.DataFrame:
    """One iteration's candidates as a table: j, fraction alpha^j, KL (and KL/delta), actual and
    expected improvement (and their ratio), which checks passed, and the accepted one."""
    columns = [
        "j",
        "fraction",
        "KL",
        "KL / delta",
        "actual improvement",
        "expected improvement",
        "actual / expected",
        "KL ok",
        "improved",
        "accepted",
    ]
    if not record.line_search:
        return pd.DataFrame(columns=columns)
    rows = []
    for c in record.line_search:
        kl = _number(c.kl)
        actual = _number(c.actual_improvement)
        expected = _number(c.expected_improvement)
        rows.append(
            [
                c.j,
                _number(c.fraction),
                kl,
                kl / delta if delta else float("nan"),
                actual,
                expected,
                actual / expected if expected else float("nan"),
                bool(c.kl_ok),
                bool(c.improved),
                c.j == record.backtrack_index,
            ]
        )
    return pd.DataFrame(rows, columns=columns)


def _number(value: Any) -> float:
    """A float, NaN for None (JSON null) or anything non-numeric."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def lagrange_multiplier(g_dot_x: Any, delta: float) -> float:
    """The step's Lagrange multiplier sqrt(g^T x / (2 delta)) (Schulman et al. 2015, appendix
    C: the full step is x / multiplier); NaN unless g^T x > 0 and finite."""
    return math.sqrt(g_dot_x / (2 * delta)) if finite(g_dot_x) and g_dot_x > 0 else math.nan


def progress(frame: pd.DataFrame, total: int, running: bool) -> tuple[float, str]:
    """(fraction done in [0, 1], text): env steps of total, the recent rate (env steps over the
    last five iterations' iteration_time_s) and, while running, the time left at that rate."""
    steps = int(frame["env_steps"].iloc[-1]) if len(frame) else 0
    parts = [f"{steps:,} / {total:,} steps"]
    if len(frame) and "iteration_time_s" in frame:
        recent = frame.tail(5)
        batch = frame["env_steps"].diff().fillna(frame["env_steps"]).tail(5)
        seconds = float(recent["iteration_time_s"].sum())
        if seconds > 0:
            rate = float(batch.sum()) / seconds
            parts.append(f"{rate:,.0f} steps/s")
            if running and rate > 0:
                parts.append(f"ETA {eta_text(max(0, total - steps) / rate)}")
    return min(1.0, steps / total if total else 0.0), " · ".join(parts)


def shown_name(meta: dict[str, Any]) -> str:
    """A run's name from its meta.json, else who launched it in brackets ("" if neither)."""
    launcher = meta.get("launcher")
    return meta.get("name") or (f"({launcher})" if launcher else "")


def run_row(
    run_id: str,
    meta: dict[str, Any],
    state: str,
    config: TRPOConfig | None,
    frame: pd.DataFrame,
) -> dict[str, Any]:
    """One run's row of the Runs table (RUN_COLUMNS): its name (else who launched it, in
    brackets, or "(unnamed)"), env and knobs (None when the config cannot be read), status,
    progress, the last and best mean episode return (NaN before an episode ends) and its start
    time (UTC)."""
    returns = frame["return_mean"].dropna() if len(frame) else pd.Series(dtype=float)
    return {
        "name": shown_name(meta) or "(unnamed)",
        "env": config.env_id if config else None,
        "delta": config.delta if config else None,
        "alpha": config.alpha if config else None,
        "K": config.max_backtracks if config else None,
        "seed": config.seed if config else None,
        "status": state,
        "iterations": len(frame),
        "env steps": int(frame["env_steps"].iloc[-1]) if len(frame) else 0,
        "last return": float(returns.iloc[-1]) if len(returns) else math.nan,
        "best return": float(returns.max()) if len(returns) else math.nan,
        "started": pd.to_datetime(meta.get("created"), errors="coerce", utc=True),
        "run id": run_id,
    }
