"""Runs: every run folder (dashboard, CLI or sweep), their curves side by side, CSV export and
deletion. Reads the run store only; live runs refresh through fragments."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from pages.common import (
    DeleteRefused,
    delete_run,
    get_registry,
    metrics,
    metrics_snapshot,
    run_label,
    safe_config,
    show_problems,
    store,
    warn_not_runs,
)
from trpo import analysis, compare, plots
from trpo.compare import (
    METRICS,
    X_AXES,
    color_of,
    default_selection,
    distinguishing_labels,
    with_config_columns,
)
from trpo.config import TRPOConfig
from trpo.export.html_report import report_html
from trpo.metrics_log import flat_frame
from trpo.store import Run

LIVE_EVERY = timedelta(seconds=2)  # while a run is training
IDLE_EVERY = timedelta(seconds=15)  # so an idle tab notices a run started from the CLI


def runs_table(runs: list[Run]) -> pd.DataFrame:
    rows = [analysis.run_row(r.id, r.meta(), r.state(), safe_config(r), metrics(r)) for r in runs]
    return pd.DataFrame(rows, columns=analysis.RUN_COLUMNS)


def any_running(runs: list[Run]) -> bool:
    return any(r.state() == "running" for r in runs)


def table_section(ids: tuple[str, ...], was_running: bool) -> None:
    """The runs table; re-run every few seconds. A new run or a change between training and
    idle reruns the whole page (new options, new refresh rate)."""
    runs = store().runs()
    running = any_running(runs)
    if tuple(r.id for r in runs) != ids or running != was_running:
        st.rerun()
    st.dataframe(
        runs_table(runs),
        hide_index=True,
        key="runs_table",
        column_config={
            "delta": st.column_config.NumberColumn("δ", format="%g"),
            "alpha": st.column_config.NumberColumn("α", format="%g"),
            "K": st.column_config.NumberColumn("K", help="max backtracks"),
            "env steps": st.column_config.NumberColumn(format="localized"),
            "last return": st.column_config.NumberColumn(format="%.1f"),
            "best return": st.column_config.NumberColumn(format="%.1f"),
            "started": st.column_config.DatetimeColumn("started (UTC)", format="MM-DD HH:mm"),
        },
    )
    if running:
        st.caption("Training runs refresh every 2 s.")


# --- comparing runs ------------------------------------------------------------------------


def entries_of(runs: list[Run]) -> dict[str, tuple[str, TRPOConfig | None]]:
    """run id -> (its name, its config or None), what trpo.compare labels and groups."""
    return {run.id: (run.meta().get("name") or "", safe_config(run)) for run in runs}


def labels_of(runs: list[Run]) -> dict[str, str]:
    """run id -> its name plus the knobs that tell it apart from the other runs given."""
    return distinguishing_labels(entries_of(runs))


def seed_groups(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs that differ only in their seed, under one label per group."""
    by_id = {run.id: run for run in runs}
    groups = compare.seed_groups(entries_of(runs))
    return {label: [by_id[i] for i in ids] for label, ids in groups.items()}


def _snapshots(runs: list[Run]) -> tuple[tuple[int, ...], tuple[pd.DataFrame, ...]]:
    """The runs' metrics versions (the cache key) and frames, taken together."""
    pairs = [metrics_snapshot(r) for r in runs]
    return tuple(v for _, v in pairs), tuple(f for f, _ in pairs)


@st.cache_resource(show_spinner=False, max_entries=64)
def _overlay(
    labels: tuple[str, ...],
    colors: tuple[str, ...],
    versions: tuple[int, ...],
    view: tuple[int, str, str, bool],
    _frames: tuple,
) -> Any:
    window, y, x, log_y = view
    curves = dict(zip(labels, _frames, strict=True))
    return plots.overlay_figure(
        curves, window, y, x, log_y, colors=dict(zip(labels, colors, strict=True))
    )


@st.cache_resource(show_spinner=False, max_entries=64)
def _band(
    groups: tuple[tuple[str, tuple[int, ...]], ...],
    view: tuple[int, str, str, bool],
    _frames: tuple,
) -> Any:
    window, y, x, log_y = view
    frames = {label: list(group) for (label, _), group in zip(groups, _frames, strict=True)}
    return plots.seed_band_figure(frames, window, y, x=x, log_y=log_y)


@st.cache_data(show_spinner=False, max_entries=16)
def _csv(versions: tuple[int, ...], ids: tuple[str, ...], _runs: tuple, _frames: tuple) -> str:
    parts = []
    for frame, run in zip(_frames, _runs, strict=True):
        flat = with_config_columns(flat_frame(frame), safe_config(run))
        flat.insert(0, "run_id", run.id)
        flat.insert(1, "run_name", run.meta().get("name") or "")
        parts.append(flat)
    return pd.concat(parts, ignore_index=True).to_csv(index=False) if parts else ""


def default_runs(runs: list[Run]) -> list[str]:
    configs = {r.id: safe_config(r) for r in runs}
    return default_selection([(i, c.env_id if c else None) for i, c in configs.items()])


def chart_controls() -> tuple[int, str, str, bool, bool]:
    """Metric, x-axis, log scale, smoothing and seed grouping, as chosen above the chart."""
    metric, axis, scale = st.columns([2, 2, 1], vertical_alignment="bottom")
    y = metric.selectbox(
        "Metric", list(METRICS), key="runs_metric", format_func=lambda m: METRICS[m]
    )
    x = axis.segmented_control(
        "x-axis", list(X_AXES), key="runs_x", default="env_steps", format_func=X_AXES.get
    )
    log_y = scale.toggle("Log scale", key="runs_log", help="Logarithmic y-axis.")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    window = left.slider("Smoothing (moving average over iterations)", 1, 50, 1, key="smoothing")
    grouped = right.checkbox(
        "Group seeds",
        key="group_seeds",
        help="Runs whose configs differ only in the seed become one curve: the mean over "
        "seeds with a min-max band.",
    )
    return window, y, x or "env_steps", log_y, grouped


def compare_section(was_running: bool) -> None:
    """Overlay any metric of the selected runs (or seed groups as a mean with a band); CSV."""
    runs = store().runs()
    by_id = {r.id: r for r in runs}
    ids = list(by_id)
    everyone = labels_of(runs)
    if "runs_select" in st.session_state:
        st.session_state["runs_select"] = [i for i in st.session_state["runs_select"] if i in ids]
    else:
        st.session_state["runs_select"] = default_runs(runs)
    chosen = st.multiselect(
        "Runs to compare",
        ids,
        key="runs_select",
        format_func=lambda i: everyone.get(i, i),
        placeholder="choose runs",
        help="First shown: the newest runs of the newest run's environment.",
    )
    window, y, x, log_y, grouped = chart_controls()
    selected = [by_id[i] for i in chosen]
    if any_running(selected) != was_running:
        st.rerun()
    if not selected:
        st.info("Choose one or more runs to plot them.")
        return
    versions, frames = _snapshots(selected)
    view = (window, y, x, log_y)
    if grouped:
        groups = [(label, _snapshots(members)) for label, members in seed_groups(selected).items()]
        keys = tuple((label, group_versions) for label, (group_versions, _) in groups)
        fig = _band(keys, view, tuple(group_frames for _, (_, group_frames) in groups))
    else:
        labels = labels_of(selected)
        names = tuple(labels[r.id] for r in selected)
        colors = tuple(color_of(r.id) for r in selected)
        fig = _overlay(names, colors, versions, view, frames)
    st.plotly_chart(fig, key="runs_overlay")
    run_ids = tuple(r.id for r in selected)
    csv = _csv(versions, run_ids, tuple(selected), frames)
    st.download_button(
        f"Download metrics of {len(selected)} run(s) as CSV",
        data=csv,
        file_name="trpo-metrics.csv",
        mime="text/csv",
        key="download_csv",
        icon=":material/download:",
        on_click="ignore",
        help="One row per iteration and run, with every config knob as a column; the "
        "per-candidate line search and the geometry probe are left out, CG residuals are "
        "joined with ';'.",
    )


# --- sharing a run ---------------------------------------------------------------------------


def share_section(runs: list[Run]) -> None:
    """One run as a self-contained HTML report (trpo.export.html_report), made on click."""
    by_id = {r.id: r for r in runs}
    current = st.session_state.get("share_target")  # written back, as for delete_target
    st.session_state["share_target"] = current if current in by_id else runs[0].id
    target = st.selectbox(
        "Run to share", list(by_id), key="share_target", format_func=lambda i: run_label(by_id[i])
    )
    run = by_id[target]
    readable = safe_config(run) is not None
    st.download_button(
        "Download an HTML report of this run",
        data=partial(report_html, run.path),
        file_name=f"{run.id}.html",
        mime="text/html",
        key="download_report",
        icon=":material/download:",
        on_click="ignore",
        disabled=not readable,
        help="One file with the run's summary, its training and trust-region charts "
        "(interactive) and its configuration; it opens in any browser, offline."
        if readable
        else "This run's config cannot be read.",
    )


# --- deleting a run ------------------------------------------------------------------------


def _ask_delete(run_id: str) -> None:
    st.session_state["pending_delete"] = run_id
    st.session_state.pop("delete_message", None)


def _cancel_delete() -> None:
    st.session_state.pop("pending_delete", None)


def _confirm_delete(run_id: str) -> None:
    """Runs before the page script (on_click), so the table drawn next is already current."""
    st.session_state.pop("pending_delete", None)
    run = next((r for r in store().runs() if r.id == run_id), None)
    if run is None:
        st.session_state["delete_message"] = ("error", f"{run_id} no longer exists.")
        return
    try:
        delete_run(run)
    except (DeleteRefused, OSError) as exc:
        st.session_state["delete_message"] = ("error", f"Not deleted: {exc}")
    else:
        st.session_state["delete_message"] = ("success", f"Deleted {run_id}.")


def delete_section(runs: list[Run]) -> None:
    message = st.session_state.pop("delete_message", None)
    if message is not None:
        (st.success if message[0] == "success" else st.error)(message[1])
    if not runs:
        return
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    # Always written back: the widget's identity changes with its options (a new or deleted
    # run), and the browser would otherwise keep showing a stale choice.
    current = st.session_state.get("delete_target")
    st.session_state["delete_target"] = current if current in ids else ids[0]
    target = st.selectbox(
        "Run to delete", ids, key="delete_target", format_func=lambda i: run_label(by_id[i])
    )
    run = by_id[target]
    handle = get_registry().get(target)
    training = (handle is not None and handle.alive) or run.state() == "running"
    st.button(
        "Delete this run…",
        key="delete_run",
        icon=":material/delete:",
        disabled=training,
        help="Stop the run before deleting it." if training else "Asks for confirmation.",
        on_click=_ask_delete,
        args=(target,),
    )
    if st.session_state.get("pending_delete") == target:
        st.warning(
            f"Delete **{target}** and everything in it (metrics, checkpoint)? "
            "This cannot be undone."
        )
        yes, no, _ = st.columns([1, 1, 4])
        yes.button(
            "Yes, delete it",
            key="confirm_delete",
            type="primary",
            on_click=_confirm_delete,
            args=(target,),
        )
        no.button("Cancel", key="cancel_delete", on_click=_cancel_delete)


# --- the page ------------------------------------------------------------------------------

st.title("Runs")
st.caption(
    "Every run in the runs directory, whether started here, from the command line "
    "(`python -m trpo train`) or by a sweep."
)
warn_not_runs()
all_runs = store().runs()
if not all_runs:
    st.info("No runs yet: start one on the Train page or with `python -m trpo train`.")
    st.stop()
for listed in all_runs:
    show_problems(listed, name_the_run=True)

live = any_running(all_runs)
st.fragment(table_section, run_every=LIVE_EVERY if live else IDLE_EVERY)(
    tuple(r.id for r in all_runs), live
)

st.subheader("Compare runs")
chosen_ids = st.session_state.get("runs_select", [r.id for r in all_runs[:3]])
selected_live = any_running([r for r in all_runs if r.id in chosen_ids])
st.fragment(compare_section, run_every=LIVE_EVERY if selected_live else None)(selected_live)

with st.expander("Share a run", icon=":material/share:"):
    share_section(all_runs)

with st.expander("Delete a run", icon=":material/delete:"):
    delete_section(all_runs)
