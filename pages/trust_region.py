"""Trust region: what the constrained step did in one iteration (CG, step size, line search,
geometry along the step) and, over the whole run, how often and why candidates failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from pages.common import (
    metrics_snapshot,
    pick_run,
    safe_config,
)
from trpo import analysis, trust_region_figures
from trpo.config import TRPOConfig
from trpo.formatting import finite, fmt
from trpo.metrics_log import record_at
from trpo.record import IterationRecord
from trpo.spectrum_plots import spectrum_figure
from trpo.store import Run

LIVE_EVERY = timedelta(seconds=2)


@st.cache_resource(show_spinner=False, max_entries=64)
def iteration_figures(
    version: int,
    iteration: int,
    config: TRPOConfig,
    _frame: pd.DataFrame,
) -> tuple[Any, Any, Any]:
    """(line search, CG residuals, geometry) figures of one iteration, built once per version
    of the metrics."""
    return trust_region_figures.iteration_figures(record_at(_frame, iteration), config)


@st.cache_resource(show_spinner=False, max_entries=32)
def run_summary(version: int, delta: float, _frame: pd.DataFrame) -> tuple[dict, Any, Any]:
    """trust_region_summary over all iterations and its two histograms."""
    summary = analysis.trust_region_summary(_frame, delta)
    return summary, *trust_region_figures.summary_histograms(summary)


def choose_iteration(run: Run, iterations: list[int]) -> int:
    """The iteration slider; it follows the newest iteration while left at the newest."""
    first, last = iterations[0], iterations[-1]
    state = st.session_state
    current = state.get("tr_iteration")
    new_run = state.get("_tr_slider_run") != run.id
    # a link's &iteration=N is read once, for the first run a session shows (the linked one)
    linked = None if state.get("_tr_link_read") else _linked_iteration(first, last)
    state["_tr_link_read"] = True
    if linked is not None:
        current = linked
    follow = linked is None and (
        new_run
        or current is None
        or current == state.get("_tr_slider_last")
        or not first <= current <= last
    )
    # Always written back: the slider's identity changes with its max, and a new widget would
    # otherwise start again from its default.
    state["tr_iteration"] = last if follow else current
    state["_tr_slider_run"], state["_tr_slider_last"] = run.id, last
    if first == last:
        state.pop("tr_iteration", None)
        st.caption(f"Iteration {last} (the only one so far).")
        return last
    value = st.slider(
        "Iteration",
        first,
        last,
        key="tr_iteration",
        help="Left at the newest iteration, it follows a training run.",
    )
    chosen = min(iterations, key=lambda i: abs(i - value))
    st.query_params["iteration"] = str(chosen)
    return chosen


def _linked_iteration(first: int, last: int) -> int | None:
    """The iteration a link names (`&iteration=N`), if it is one of this run's."""
    try:
        wanted = int(st.query_params.get("iteration", ""))
    except ValueError:
        return None
    return wanted if first <= wanted <= last else None


def step_metrics(record: IterationRecord, config: TRPOConfig) -> None:
    delta, alpha = config.delta, config.alpha
    a, b, c, d, e = st.columns(5)
    a.metric("|g|", fmt(record.grad_norm), help="Norm of the surrogate's gradient g.")
    b.metric(
        "gᵀx",
        fmt(record.g_dot_x),
        help="x = H⁻¹g from conjugate gradient; gᵀx = gᵀH⁻¹g.",
    )
    c.metric("xᵀHx", fmt(record.x_h_x), help="Curvature of the KL along x (H damped).")
    d.metric(
        "step scale s",
        fmt(record.step_scale),
        help="s = sqrt(2δ / xᵀHx): the multiple of x whose quadratic KL model equals δ.",
    )
    e.metric(
        "step norm",
        fmt(record.step_norm),
        help="|θ_new − θ_old| = αʲ s |x| (0 when the step was rejected).",
    )
    a, b, c, d, e = st.columns(5)
    kl = record.kl
    a.metric(
        "KL of the step",
        fmt(kl),
        delta=f"{kl / delta:.0%} of δ = {delta:g}" if finite(kl) else f"δ = {delta:g}",
        delta_color="off",
        delta_arrow="off",
        help="Mean KL(π_old ‖ π_new) of the accepted step; it must stay at or below δ.",
    )
    j = record.backtrack_index
    if bool(record.step_accepted) and j is not None:
        b.metric(
            "accepted j",
            str(j),
            help="The accepted candidate: the step is αʲ of the full step s·x.",
            delta=f"αʲ = {alpha**j:.3g}",
            delta_color="off",
            delta_arrow="off",
        )
    else:
        b.metric(
            "step rejected",
            "θ kept",
            delta=str(record.reject_reason or "no candidate passed"),
            delta_color="red",
            delta_arrow="off",
        )
    residuals = record.cg_residuals
    c.metric(
        "CG iterations",
        f"{len(residuals)} / {config.cg_iters}",
        delta=f"residual {fmt(residuals[-1], '.1e')}" if residuals else None,
        delta_color="off",
        delta_arrow="off",
    )
    before, after = record.surrogate_before, record.surrogate_after
    change = after - before if finite(after) and finite(before) else None
    d.metric(
        "surrogate change",
        fmt(change, ".3g"),
        help="L(θ_new) − L(θ_old), with L the importance-weighted advantage.",
    )
    e.metric(
        "iteration time",
        f"{fmt(record.iteration_time_s, '.3g')} s",
    )


def geometry_section(record: IterationRecord, frame: pd.DataFrame, figure: Any) -> None:
    st.subheader("Geometry along the step")
    if record.geometry is None:
        st.info(
            "This iteration has no geometry probe. Turn on **probe_geometry** in the config "
            "(on by default for runs started from the dashboard; `--probe-geometry` with "
            "`python -m trpo train`) to record the true KL and surrogate along the step "
            "beside TRPO's quadratic and linear models."
        )
        return
    st.caption(
        "The true mean KL and surrogate improvement at θ_old + f·s·x for f from 0 to 1.5, "
        "against the models TRPO solves with: ½ (f s)² xᵀHx and f s gᵀx. Vertical lines are "
        "the candidates αʲ; the accepted one is drawn in blue."
    )
    st.plotly_chart(figure, key="tr_geometry")
    probe, total = record.time_probe_s, record.iteration_time_s
    probed = frame[frame["geometry"].map(lambda g: isinstance(g, dict))]
    run_share = probed["time_probe_s"].sum() / probed["iteration_time_s"].sum()
    a, b, _ = st.columns([1, 1, 2])
    a.metric(
        "probe cost, this iteration",
        f"{probe * 1000:.1f} ms",
        delta=f"{probe / total:.1%} of {total * 1000:.0f} ms" if total else None,
        delta_color="off",
        delta_arrow="off",
        help="Extra forward passes of the probe (time_probe_s) against the whole iteration.",
    )
    b.metric(
        "probe cost, whole run",
        f"{run_share:.1%}",
        help=f"Probe time over iteration time, summed over {len(probed)} probed iterations.",
    )


def summary_section(frame: pd.DataFrame, version: int, delta: float) -> None:
    st.subheader("Over all iterations")
    summary, kl_hist, ratio_hist = run_summary(version, delta, frame)
    rejected = frame.loc[~frame["step_accepted"], "reject_reason"].fillna("unknown")
    a, b, c, d, e = st.columns(5)
    a.metric(
        "accepted steps",
        f"{summary['acceptance_rate']:.0%}",
        delta=f"{len(frame) - len(rejected)} of {summary['iterations']} iterations",
        delta_color="off",
        delta_arrow="off",
    )
    b.metric("candidates tried", str(summary["candidates"]), help="Line-search candidates j.")
    c.metric(
        "KL check failed",
        str(summary["failed_kl"]),
        help="Candidates whose mean KL exceeded δ (or was not finite).",
    )
    d.metric(
        "no improvement",
        str(summary["failed_improvement"]),
        help="Candidates whose surrogate did not improve. A candidate can fail both checks.",
    )
    e.metric("mean accepted j", fmt(summary["mean_backtrack_index"], ".2f"))
    if len(rejected):
        counts = rejected.value_counts()
        st.caption(
            "Rejected iterations (θ kept): "
            + ", ".join(f"{reason} × {n}" for reason, n in counts.items())
        )
    left, right = st.columns(2)
    left.plotly_chart(kl_hist, key="tr_kl_hist")
    right.plotly_chart(ratio_hist, key="tr_ratio_hist")


@st.cache_resource(show_spinner=False, max_entries=32)
def spectrum_chart(version: int, damping: float, iteration: int, _frame: pd.DataFrame) -> Any:
    """spectrum_figure over all iterations, the chosen one marked."""
    return spectrum_figure(_frame, damping, iteration)


def spectrum_section(
    record: IterationRecord, frame: pd.DataFrame, version: int, config: TRPOConfig
) -> None:
    st.subheader("The Fisher matrix seen through CG")
    st.caption(
        "CG's step sizes and ratios are those of the Lanczos method: the eigenvalues θ of the "
        "small tridiagonal matrix they form are H + cI's eigenvalues as seen from the "
        f"{len(record.cg_residuals)} directions CG explored (c = cg_damping = "
        f"{config.cg_damping:g}). θ_max rises towards λ_max and θ_min falls towards λ_min as CG "
        "goes on, so their ratio understates the condition number. See How TRPO works, "
        "section 4."
    )
    a, b, c, d, _ = st.columns(5)
    a.metric(
        "largest θ_max", fmt(record.fisher_eig_max), help="fisher_eig_max: a lower bound on λ_max."
    )
    b.metric(
        "smallest θ_min",
        fmt(record.fisher_eig_min),
        help="fisher_eig_min: an upper bound on λ_min, which is at least the damping c.",
    )
    c.metric(
        "θ_max / θ_min",
        fmt(record.fisher_condition, ".3g"),
        help="fisher_condition: a lower bound on the condition number of H + cI.",
    )
    d.metric(
        "cos(g, x)",
        fmt(record.cos_g_x, ".3f"),
        help="gᵀx / (|g| |x|): 1 when the natural gradient x points along the plain gradient g.",
    )
    st.plotly_chart(
        spectrum_chart(version, config.cg_damping, record.iteration, frame), key="tr_spectrum"
    )


def body(run: Run, config: TRPOConfig, was_running: bool) -> None:
    """Everything below the run picker; re-run every 2 s while the run trains."""
    if (run.state() == "running") != was_running:
        st.rerun()
    frame, version = metrics_snapshot(run)
    if frame.empty:
        st.info("No iteration recorded yet.")
        return
    iterations = [int(i) for i in frame["iteration"]]
    iteration = choose_iteration(run, iterations)
    record = record_at(frame, iteration)
    line_search, cg, geometry = iteration_figures(version, iteration, config, frame)
    st.subheader(f"Iteration {iteration}")
    step_metrics(record, config)
    left, right = st.columns([3, 2])
    left.plotly_chart(line_search, key="tr_line_search")
    right.plotly_chart(cg, key="tr_cg")
    st.caption(
        f"Candidates j = 0..{config.max_backtracks}, each a fraction αʲ (α = {config.alpha:g}) "
        "of the full step s·x. The first with KL ≤ δ and a positive improvement is accepted; "
        "the search stops there. If none passes, θ is kept."
    )
    st.dataframe(
        analysis.line_search_table(record, config.delta),
        hide_index=True,
        key="tr_candidates",
        column_config={
            "fraction": st.column_config.NumberColumn("αʲ", format="%.4g"),
            "KL": st.column_config.NumberColumn(format="%.4g"),
            "KL / delta": st.column_config.NumberColumn("KL / δ", format="%.4g"),
            "actual improvement": st.column_config.NumberColumn("actual Δ L", format="%.4g"),
            "expected improvement": st.column_config.NumberColumn(
                "expected Δ L", format="%.4g", help="The linear model: αʲ s gᵀx."
            ),
            "actual / expected": st.column_config.NumberColumn("actual / expected", format="%.3g"),
            "j": st.column_config.NumberColumn(width="small"),
            "KL ok": st.column_config.CheckboxColumn(width="small"),
            "improved": st.column_config.CheckboxColumn(width="small"),
            "accepted": st.column_config.CheckboxColumn(width="small"),
        },
    )
    geometry_section(record, frame, geometry)
    spectrum_section(record, frame, version, config)
    summary_section(frame, version, config.delta)


st.title("Trust region")
st.caption(
    "Each TRPO iteration solves Hx = g by conjugate gradient, scales x so that the quadratic "
    "KL model equals δ, then backtracks until the true KL is within δ and the surrogate improves."
)
chosen = pick_run("tr_run")
if chosen is None:
    st.stop()
run_config = safe_config(chosen)
if run_config is None:  # pick_run has shown why
    st.stop()
live = chosen.state() == "running"
st.fragment(body, run_every=LIVE_EVERY if live else None)(chosen, run_config, live)
