"""Comparing runs: which metrics and x-axes can be compared, labels that say what tells runs
apart, one stable colour per run, the default selection, and metrics with their config as
columns (for CSV). Pure functions of configs and metrics frames; no Streamlit here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from trpo.config import TRPOConfig, knob_schema

if TYPE_CHECKING:
    import pandas as pd

#: Record fields that can be drawn over iterations, with their axis titles (units included).
METRICS: dict[str, str] = {
    "return_mean": "episode return (batch mean)",
    "return_max": "episode return (batch max)",
    "return_min": "episode return (batch min)",
    "length_mean": "episode length (steps)",
    "kl": "KL(π_old ‖ π_new) of the accepted step (nats)",
    "backtrack_index": "accepted backtrack index j",
    "step_norm": "|θ_new − θ_old|",
    "grad_norm": "|g|",
    "g_dot_x": "gᵀx",
    "x_h_x": "xᵀHx",
    "step_scale": "step scale √(2δ / xᵀHx)",
    "cg_true_residual": "CG true residual |g − (H + damping I) x|",
    "fisher_eig_max": "largest eigenvalue of H + damping I seen by CG",
    "fisher_eig_min": "smallest eigenvalue of H + damping I seen by CG",
    "fisher_condition": "condition number of H + damping I seen by CG",
    "cos_g_x": "cos(g, x): natural vs plain gradient",
    "entropy": "policy entropy (nats)",
    "log_std_mean": "mean log σ",
    "value_loss": "value loss",
    "explained_variance": "explained variance of V_φ",
    "surrogate_after": "surrogate after the step",
    "steps_per_s": "env steps per second",
    "iteration_time_s": "iteration time (s)",
    "time_collect_s": "time collecting (s)",
    "time_advantages_s": "time on advantages (s)",
    "time_cg_s": "time in conjugate gradient (s)",
    "time_linesearch_s": "time in the line search (s)",
    "time_value_s": "time fitting V_φ (s)",
    "time_probe_s": "time in the geometry probe (s)",
}
#: x-axes: record field -> axis title.
X_AXES: dict[str, str] = {
    "env_steps": "env steps",
    "iteration": "iteration",
    "wall_time_s": "wall time (s)",
}
#: Colours of the runs (plotly's default sequence); a run keeps its colour whatever is selected.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
DEFAULT_SELECTION = 5  # at most this many runs are selected by default


def metric_label(name: str) -> str:
    """The axis title of a metric (its field name if unknown)."""
    return METRICS.get(name, name)


def color_of(run_id: str) -> str:
    """A colour that depends only on the run id: stable across selections and deletions."""
    digest = hashlib.sha256(run_id.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


SYMBOLS = {"delta": "δ", "alpha": "α", "max_backtracks": "K", "gamma": "γ", "gae_lambda": "λ"}


def differing_knobs(configs: Sequence[TRPOConfig]) -> list[str]:
    """The knobs whose values are not the same in all configs, in the config's field order."""
    if len(configs) < 2:
        return []
    return [k for k in knob_schema() if len({getattr(c, k) for c in configs}) > 1]


#: Knobs that change what is recorded or how fast, not what is learned: never in a label.
NOT_LEARNING = ("probe_geometry", "probe_points", "torch_threads", "checkpoint_every")


def distinguishing_labels(
    runs: Mapping[str, tuple[str, TRPOConfig | None]],
) -> dict[str, str]:
    """run id -> a label saying what tells the run apart from the others given: its name (or
    env id; both when the runs span several envs) plus the knobs that differ among the runs of
    its env, e.g. 'cartpole · δ=0.02 seed=1'. A different env brings its own preset, so knobs
    are compared within an env only; NOT_LEARNING knobs are left out. Runs that still read the
    same get their run id appended."""
    by_env: dict[str, list[TRPOConfig]] = {}
    for _, config in runs.values():
        if config is not None:
            by_env.setdefault(config.env_id, []).append(config)
    knobs = {
        env: [k for k in differing_knobs(configs) if k != "env_id" and k not in NOT_LEARNING]
        for env, configs in by_env.items()
    }
    labels: dict[str, str] = {}
    for run_id, (name, config) in runs.items():
        if config is None:
            labels[run_id] = f"{name or run_id} (unreadable config)"
            continue
        head = name or config.env_id
        if name and len(by_env) > 1:
            head = f"{name} · {config.env_id}"
        parts = [f"{SYMBOLS.get(k, k)}={_shown(getattr(config, k))}" for k in knobs[config.env_id]]
        labels[run_id] = " · ".join([head, " ".join(parts)]) if parts else head
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    return {
        run_id: f"{label} ({run_id})" if seen[label] > 1 else label
        for run_id, label in labels.items()
    }


def default_selection(runs: Sequence[tuple[str, str | None]]) -> list[str]:
    """Run ids to compare first: the newest runs of the newest run's env (runs are given newest
    first as (run id, env id or None))."""
    readable = [(run_id, env) for run_id, env in runs if env is not None]
    if not readable:
        return []
    env = readable[0][1]
    return [run_id for run_id, e in readable if e == env][:DEFAULT_SELECTION]


def with_config_columns(frame: pd.DataFrame, config: TRPOConfig | None) -> pd.DataFrame:
    """The metrics with every config knob as a column (hidden_sizes as '64,64'), for CSV."""
    if config is None:
        return frame
    columns = {
        k: _shown(getattr(config, k)) if k == "hidden_sizes" else getattr(config, k)
        for k in knob_schema()
    }
    return frame.assign(**{k: v for k, v in columns.items() if k not in frame.columns})


def config_id(config: TRPOConfig) -> str:
    """A short hash of every knob except the seed: runs (and sweep trials) with the same
    config_id differ only in their seed."""
    data = config.to_dict()
    data.pop("seed")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def seed_groups(
    entries: Mapping[str, tuple[str, TRPOConfig | None]],
) -> dict[str, list[str]]:
    """Run ids that differ only in their seed, under one label per group: what tells the groups
    apart (never a member's seed). entries: run id -> (name, config or None if unreadable); a
    run with no readable config is a group of its own."""
    by_key: dict[str, list[str]] = {}
    for run_id, (_, config) in entries.items():
        key = config_id(config) if config is not None else f"unreadable {run_id}"
        by_key.setdefault(key, []).append(run_id)
    firsts = {}
    for members in by_key.values():
        name, config = entries[members[0]]
        firsts[members[0]] = (name, config.replace(seed=0) if config is not None else None)
    labels = distinguishing_labels(firsts)
    return {labels[members[0]]: members for members in by_key.values()}
