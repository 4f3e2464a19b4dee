"""Which run the Train page shows: the session's, a linked one (`?run=ID`) or the newest
running one; the picker that changes it, and the sidebar note that offers its settings."""

from __future__ import annotations

import streamlit as st

from pages import train_form as form
from pages.common import get_registry, linked_run_id, run_label, runs_dir, safe_config, store
from trpo.presets import PRESETS
from trpo.store import Run


def run_state(run: Run) -> str:
    """The store's state, except that a run whose trainer process this server started is
    'running' for as long as the process lives."""
    handle = get_registry().get(run.id)
    if handle is not None and handle.alive:
        return "running"
    if handle is not None and handle.outcome == "failed" and run.state() == "running":
        return "failed"  # the process failed but status.json could not be written (disk full?)
    return run.state()


def shown_run() -> Run | None:
    """The session's current run; else the newest running run (CLI runs too); else the newest."""
    runs = store().runs()
    current = st.session_state.get("current_run")
    for run in runs:
        if run.id == current:
            return run
    for run in runs:
        if run_state(run) == "running":
            return run
    return runs[0] if runs else None


def linked_run() -> Run | None:
    """The run a link names (`?run=ID`), read on a session's first run: it is shown, and the
    form starts from its settings."""
    if st.session_state.get("_train_link_read"):
        return None
    st.session_state["_train_link_read"] = True
    runs = store().runs()
    wanted = linked_run_id([r.id for r in runs])
    if wanted is None:
        return None
    st.session_state["current_run"] = wanted
    return next(r for r in runs if r.id == wanted)


def on_pick() -> None:
    st.session_state["current_run"] = st.session_state["train_run"]
    st.session_state["selected_run"] = st.session_state["train_run"]


def run_picker(run: Run | None) -> None:
    """Which run the page shows (any run of the store); the URL names it (`?run=ID`)."""
    if run is None:
        return
    runs = store().runs()
    ids = [r.id for r in runs]
    labels = {r.id: run_label(r) for r in runs}
    # always written back: the shown run can change without the picker (Start, demo)
    st.session_state["train_run"] = run.id
    st.selectbox(
        "Run on display",
        ids,
        key="train_run",
        format_func=lambda i: labels.get(i, i),
        on_change=on_pick,
        help="Any run of the runs directory: started here, from the CLI or by a sweep.",
    )
    if st.query_params.get("run") != run.id:
        st.query_params["run"] = run.id


def on_use_settings(run_id: str) -> None:
    config = safe_config(Run(runs_dir() / run_id))
    if config is not None:
        form.apply_config(config)
        st.session_state["preset"] = config.env_id if config.env_id in PRESETS else None


def settings_note(run: Run | None) -> None:
    """In the sidebar: whether its settings are the shown run's, with a button that takes
    them."""
    config = safe_config(run) if run is not None else None
    shown = form.widget_values(config) if config is not None else {}
    differ = [k for k in shown if str(st.session_state.get(k)) != str(shown[k])]
    if not differ:
        return
    names = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
    st.caption(f"These settings differ from the run on display: {names}.")
    st.button(
        "Use this run's settings",
        key="use_settings",
        icon=":material/input:",
        on_click=on_use_settings,
        args=(run.id if run else "",),
        width="stretch",
    )
