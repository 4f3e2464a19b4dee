"""Train: pick an environment and the trust-region knobs, start a run, watch it learn.

The page only builds a TRPOConfig from its widgets and asks the server's registry
(pages/common.py) to start, stop or resume runs, each in its own trainer process; the live
panel reads the run store. No training happens in the server.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages import train_form as form
from pages.common import (
    LIBRARY_ERRORS,
    error_text,
    get_registry,
    metrics_snapshot,
    run_label,
    runs_dir,
    safe_config,
    show_problems,
    warn_not_runs,
)
from pages.live.charts import live_charts
from pages.train_run import linked_run, run_picker, run_state, settings_note, shown_run
from trpo import analysis, catalog
from trpo.background import CapacityError
from trpo.config import TRPOConfig
from trpo.live_series import X_AXES
from trpo.presets import PRESET_SOURCES, PRESETS, preset
from trpo.store import Run

DEMO_ENV = "CartPole-v1"
DEMO_NAME = "CartPole demo"
CHART_AXIS = "_train_chart_axis"  # the x axis the charts were last drawn on
FLASH = "_train_flash"  # messages from callbacks, shown once by the next full run


# --- callbacks (run before the script, so button states drawn after them are current) -----


def flash(place: str, kind: str, message: str) -> None:
    st.session_state.setdefault(FLASH, []).append((place, kind, message))


def show_flash(place: str) -> None:
    messages = st.session_state.get(FLASH, [])
    for _, kind, message in [m for m in messages if m[0] == place]:
        getattr(st, kind)(message)
    st.session_state[FLASH] = [m for m in messages if m[0] != place]


def start(config: TRPOConfig, name: str | None, place: str) -> None:
    registry = get_registry()
    live = {h.run_id for h in registry.active()}
    try:
        handle = registry.start(config, name or None)
    except CapacityError as exc:
        flash(place, "error", f"Not started: {exc}.")
        return
    except LIBRARY_ERRORS as exc:
        flash(place, "error", f"Not started: {error_text(exc)}")
        return
    except Exception as exc:  # the trainer could not be built: say why, start nothing
        flash(place, "error", f"Not started: {type(exc).__name__}: {exc}")
        return
    st.session_state["current_run"] = handle.run_id
    st.session_state["selected_run"] = handle.run_id
    st.query_params["run"] = handle.run_id  # the URL names the new run at once
    if handle.run_id in live:
        flash("main", "info", f"This configuration is already training as run {handle.run_id}.")


def on_start() -> None:
    config, own, between = form.read_form()
    if config is None:  # Start is disabled then; a stale click still starts nothing
        problems = [*own.values(), *between]
        flash("sidebar", "error", "Not started: " + "; ".join(problems))
        return
    start(config, st.session_state.get("run_name", "").strip(), "sidebar")


def on_demo() -> None:
    config = preset(DEMO_ENV, probe_geometry=True)
    form.apply_config(config)
    st.session_state["preset"] = DEMO_ENV
    start(config, DEMO_NAME, "main")


def on_stop(run_id: str) -> None:
    if not get_registry().stop(run_id, timeout=2):
        flash("main", "info", "Stop requested: the run stops after its current iteration.")


def on_resume(run_id: str) -> None:
    try:
        handle = get_registry().resume(runs_dir() / run_id)
    except CapacityError as exc:
        flash("main", "error", f"Not resumed: {exc}.")
        return
    except LIBRARY_ERRORS as exc:  # unreadable checkpoint or config, env gone, ...
        flash("main", "error", f"Not resumed: {error_text(exc)}")
        return
    except Exception as exc:  # anything else: a bug, said plainly
        flash("main", "error", f"Not resumed: {type(exc).__name__}: {exc}")
        return
    st.session_state["current_run"] = handle.run_id
    st.session_state["selected_run"] = handle.run_id
    st.query_params["run"] = handle.run_id


def live_panel(run_id: str | None, was_running: bool) -> None:
    """The shown run's name, x-axis choice, progress and metrics (reruns every second).

    Compact, so that all of it and the charts below fit a 1280x720 screen under the page's
    header: the run's name and the charts' x-axis choice, then one row of progress and
    metrics. The charts are another fragment (chart_panel), without a timer: the app reruns
    asked for here (another run, a run started or ended, another x axis) give it new data."""
    run = shown_run()
    running = run is not None and run_state(run) == "running"
    if (run.id if run else None) != run_id or running != was_running:
        st.rerun(scope="app")  # a run started, ended or was stopped: redraw the buttons once
    if run is None:
        st.info("No runs yet: press **Start training** in the sidebar, or try the demo.")
        return
    config = safe_config(run)
    with st.container(key="live_head"):
        name, choice = st.columns([3.4, 1.2], vertical_alignment="center")
        name.subheader(run_label(run, config))
        if config is not None:
            axis, drawn = x_axis_choice(choice), st.session_state.get(CHART_AXIS)
            st.session_state[CHART_AXIS] = axis
            if drawn is not None and axis != drawn:
                st.rerun(scope="app")  # the charts are another fragment: redraw them now
    show_problems(run)
    if config is None:  # the error is shown above
        return
    frame, _ = metrics_snapshot(run)
    with st.container(key="live_status"):
        live_status(run, frame, config, running)


def chart_panel(run: Run | None, drawable: bool, running: bool) -> None:
    """The four live charts of the shown run (pages/live/charts.py, which also styles the rows).

    A fragment without a timer: while the run trains, the charts' own JavaScript fetches new
    records from the dashboard's live-charts route, with no Streamlit rerun per update. It
    reruns with the page, which the status fragment reruns when another run is shown, the run
    starts or ends, or the x axis changes: only then does the component get new data. No
    charts for a run whose config cannot be read (the status fragment says why)."""
    if run is None or not drawable:
        return
    axis = st.session_state.get(CHART_AXIS, "env steps")
    live_charts(run.id, axis, running)


def x_axis_choice(place: Any) -> str:
    """The one x axis of the return, KL and j charts: env steps (the default) or iterations."""
    axis = place.segmented_control(
        "x axis",
        list(X_AXES),
        default="env steps",
        key="live_x_axis",
        label_visibility="collapsed",
        help="The x axis of the return, KL and j charts: env steps or iterations.",
        persist_state="session",
    )
    return axis or "env steps"  # a click on the chosen option clears it: keep the default


def live_status(run: Run, frame: Any, config: TRPOConfig, running: bool) -> None:
    """One row: progress and four metrics; then a failure or an interruption, if any."""
    state = run_state(run)
    bar, *cols = st.columns([1.7, 1.2, 1.0, 1.0, 1.0], vertical_alignment="center")
    fraction, text = analysis.progress(frame, config.planned_steps, running)
    bar.progress(fraction, text=text)
    iterations = max(config.planned_iterations, len(frame))
    returns = frame["return_mean"].dropna() if len(frame) else frame["return_mean"]
    cols[0].metric("Iteration", f"{len(frame):,} / {iterations:,}")
    if len(returns):
        change = float(returns.iloc[-1] - returns.iloc[0]) if len(returns) > 1 else None
        cols[1].metric(
            "Last return",
            f"{returns.iloc[-1]:,.1f}",
            delta=None if change is None else f"{change:+,.1f} since the first",
            help="Mean return of the episodes that finished in the last batch.",
        )
    else:
        cols[1].metric("Last return", "—", help="No episode has finished yet.")
    cols[2].metric("Status", state)
    if len(frame):
        accepted = int(frame["step_accepted"].sum())
        cols[3].metric(
            "Accepted steps",
            f"{accepted / len(frame):.0%}",
            help=f"{accepted} of {len(frame)} line searches found a step with KL ≤ δ that "
            "improved the surrogate.",
        )
    else:
        cols[3].metric("Accepted steps", "—")

    if state == "failed":
        handle = get_registry().get(run.id)
        error = run.status().get("error") or (handle.error if handle else None)
        st.error(f"Training failed: {error or 'unknown error'}")
    elif state == "interrupted":
        st.warning(
            "This run was marked running, but its process is gone (killed or crashed). "
            "**Resume** continues it from its last checkpoint."
        )
    elif state == "pruned":
        st.info(
            "A sweep's pruner stopped this run early: its mean return was behind the other "
            "trials' at the same iteration. It keeps its checkpoint; **Resume** continues it "
            "(the sweep does not)."
        )


# --- the page ------------------------------------------------------------------------------


def sidebar(env_ids: list[str]) -> None:
    """Environment, preset and every knob (trust region first), then Start."""
    groups = {env_id: group for group, ids in catalog.supported_envs().items() for env_id in ids}
    presets = [name for name in PRESETS if name in groups]
    config, problems, between = form.read_form()
    with st.sidebar:
        st.header("Run settings")
        st.selectbox(
            "Environment",
            env_ids,
            key="env_id",
            format_func=lambda e: f"{groups[e]} · {e}",
            on_change=form.on_env,
            help=form.SCHEMA["env_id"].help + " Only ids this install can create and train are "
            "listed. Choosing one fills every knob with its preset (or the library defaults).",
            persist_state="session",
        )
        st.caption(catalog.describe(st.session_state["env_id"]))
        st.selectbox(
            "Preset",
            presets,
            key="preset",
            placeholder="None (library defaults)",
            format_func=lambda p: (
                f"rl-zoo MuJoCo defaults: {p}" if p in PRESET_SOURCES else f"rl-zoo tuned: {p}"
            ),
            on_change=form.on_preset,
            help="Fill every knob with rl-baselines3-zoo's tuned values for that environment "
            "(and select it). Seed and probe settings are kept. For continuous actions δ and "
            "CG damping are the zoo's per-dimension values times the action dimensions, so δ "
            "is the true mean KL of a step.",
            persist_state="session",
        )
        st.subheader("Trust region")
        form.knob_widgets(form.TRUST_REGION, problems)
        form.knob_widgets(form.MAIN, problems)
        with st.expander("Advanced", expanded=any(k in problems for k in form.ADVANCED)):
            form.knob_widgets(form.ADVANCED, problems)
        st.text_input(
            "Run name (optional)",
            key="run_name",
            max_chars=200,
            placeholder="e.g. cartpole delta 0.02",
            persist_state="session",
        )
        if problems:
            st.error(f"Not startable: {len(problems)} value(s) above need fixing.")
        form.summary(config, between)
        st.button(
            "Start training",
            key="start",
            type="primary",
            icon=":material/play_arrow:",
            on_click=on_start,
            disabled=config is None,
            width="stretch",
        )
        show_flash("sidebar")
        form.write_link()
        registry = get_registry()
        st.caption(f"{len(registry.active())} of {registry.max_concurrent} training slots in use.")


def button_note(state: str | None, elsewhere: bool) -> str:
    if elsewhere:
        return (
            "This run is trained by another process (`python -m trpo train` or a sweep); "
            "**Stop** ends it after its current iteration, with a checkpoint."
        )
    if state == "running":
        return "**Stop** ends the run after its current iteration; it keeps a checkpoint."
    if state in ("stopped", "interrupted", "pruned"):
        return "**Resume** continues this run from its last checkpoint."
    return "The demo trains CartPole-v1 with the rl-zoo preset: it learns in under a minute."


def main() -> None:
    envs = catalog.all_supported()
    if not envs:
        st.error("No supported Gymnasium environment can be created in this install.")
        return
    linked = linked_run()
    form.init_state(envs, DEMO_ENV, safe_config(linked) if linked else None)
    sidebar(envs)
    warn_not_runs()

    st.title("Train")
    run = shown_run()
    if run is None:  # the first visit: say what to do (with a run, the panel needs the room)
        st.caption(
            "Choose an environment and the trust-region knobs (δ, α, K) in the sidebar and "
            "press **Start training**, or watch the one-click demo learn CartPole in under a "
            "minute."
        )
    state = run_state(run) if run else None
    handle = get_registry().get(run.id) if run else None
    elsewhere = state == "running" and handle is None

    # one row for the buttons and the run picker: the live panel must fit a 1280x720 screen
    demo, stop, resume, picker = st.columns([1.3, 0.8, 0.9, 3], vertical_alignment="bottom")
    with picker:
        run_picker(run)
    demo.button(
        "One-click demo",
        key="demo",
        icon=":material/rocket_launch:",
        on_click=on_demo,
        width="stretch",
    )
    stop.button(
        "Stop",
        key="stop",
        icon=":material/stop:",
        on_click=on_stop,
        width="stretch",
        args=(run.id if run else "",),
        disabled=state != "running",
    )
    resume.button(
        "Resume",
        key="resume",
        icon=":material/replay:",
        on_click=on_resume,
        width="stretch",
        args=(run.id if run else "",),
        disabled=state not in ("stopped", "interrupted", "pruned"),
    )
    st.caption(button_note(state, elsewhere))
    show_flash("main")
    with st.sidebar:
        settings_note(run)

    running = state == "running"
    shown = run.id if run else None
    st.fragment(live_panel, run_every=1.0 if running else 5.0, key="train_live")(shown, running)
    drawable = run is not None and safe_config(run) is not None
    st.fragment(chart_panel, key="train_charts")(run, drawable, running)


main()
