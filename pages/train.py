"""Train: pick an environment and the trust-region knobs, start a run, watch it learn.

The page only builds a TRPOConfig from its widgets and asks the server's registry
(pages/common.py) to start, stop or resume runs, each in its own trainer process; the live
panel reads the run store. No training happens in the server.
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from pages.common import (
    LIBRARY_ERRORS,
    ensure_app_navigation,
    error_text,
    get_registry,
    metrics_snapshot,
    run_label,
    runs_dir,
    safe_config,
    show_problems,
    store,
    warn_not_runs,
)
from pages.live.charts import live_charts
from trpo import catalog
from trpo.background import CapacityError
from trpo.config import ACTIVATIONS, VECTORIZATIONS, ConfigError, TRPOConfig, knob_help
from trpo.live_series import X_AXES
from trpo.presets import PRESET_SOURCES, PRESETS, preset
from trpo.store import Run

ensure_app_navigation()

DEMO_ENV = "CartPole-v1"
DEMO_NAME = "CartPole demo"
FLASH = "_train_flash"  # messages from callbacks, shown once by the next full run
HELP = knob_help()

# The dashboard's defaults: TRPOConfig's, with the geometry probe on (the Trust region page
# draws it).
DEFAULT_CONFIG = TRPOConfig(probe_geometry=True)

# Effect of the three trust-region knobs on the step, appended to the library's help.
EFFECT = {
    "delta": "Effect: the full step is scaled to sqrt(2δ / xᵀHx), so δ sets how far each "
    "step may move the policy.",
    "alpha": "Effect: a smaller α shrinks faster, so fewer tries but a shorter accepted step.",
    "max_backtracks": "Effect: if none of the K+1 candidates keeps KL ≤ δ and improves the "
    "surrogate, the step is rejected and θ is kept.",
}

# Numeric knobs: key -> (label, min, max, step, format). Ints stay ints, floats stay floats.
NUMBERS: dict[str, tuple[str, Any, Any, Any, str | None]] = {
    "delta": ("δ: KL limit (delta)", 0.0001, 1.0, 0.001, "%.4f"),
    "max_backtracks": ("K: max backtracks", 1, 50, 1, None),
    "seed": ("Seed", 0, 2**32 - 1, 1, None),
    "total_steps": ("Total env steps", 1, 100_000_000, 10_000, None),
    "steps_per_iteration": ("Steps per iteration", 2, 1_000_000, 256, None),
    "n_envs": ("Parallel envs (n_envs)", 1, 64, 1, None),
    "gamma": ("gamma (discount)", 0.5, 1.0, 0.001, "%.3f"),
    "gae_lambda": ("GAE lambda", 0.0, 1.0, 0.01, "%.3f"),
    "cg_iters": ("CG iterations", 1, 200, 1, None),
    "cg_damping": ("CG damping", 0.0, 10.0, 0.001, "%g"),
    "cg_residual_tol": ("CG residual tolerance", 0.0, 1.0, 1e-10, "%.1e"),
    "vf_lr": ("Value learning rate", 1e-6, 1.0, 1e-4, "%g"),
    "vf_epochs": ("Value epochs", 0, 1000, 1, None),
    "vf_minibatch": ("Value minibatch", 1, 1_000_000, 32, None),
    "log_std_init": ("Initial log std", -5.0, 2.0, 0.1, "%.2f"),
    "probe_points": ("Probe points", 3, 101, 1, None),
    "torch_threads": ("torch threads", 1, 64, 1, None),
    "checkpoint_every": ("Checkpoint every (iterations)", 1, 1_000_000, 1, None),
}
CHOICES = {"vectorization": VECTORIZATIONS, "activation": ACTIVATIONS}
TOGGLES = {
    "normalize_advantages": "Normalize advantages",
    "normalize_observations": "Normalize observations",
    "normalize_rewards": "Normalize rewards",
    "probe_geometry": "Probe the step's geometry",
}
ADVANCED = (
    "steps_per_iteration",
    "n_envs",
    "vectorization",
    "gamma",
    "gae_lambda",
    "normalize_advantages",
    "cg_iters",
    "cg_damping",
    "cg_residual_tol",
    "vf_lr",
    "vf_epochs",
    "vf_minibatch",
    "hidden_sizes",
    "activation",
    "log_std_init",
    "normalize_observations",
    "normalize_rewards",
    "probe_geometry",
    "probe_points",
    "torch_threads",
    "checkpoint_every",
)
# Every config knob has a widget whose key is the knob's name.
KNOBS = ("env_id", "delta", "alpha", "max_backtracks", "seed", "total_steps", *ADVANCED)
# Knobs that describe the run rather than the algorithm: a preset keeps the user's values.
RUN_KNOBS = ("seed", "probe_geometry", "probe_points", "torch_threads", "checkpoint_every")


# --- config <-> widgets ------------------------------------------------------------------


def widget_values(config: TRPOConfig) -> dict[str, Any]:
    """The widget values that show config (hidden_sizes as text, numbers in the widget's type)."""
    values: dict[str, Any] = {}
    for key in KNOBS:
        value = getattr(config, key)
        if key == "hidden_sizes":
            value = ",".join(str(h) for h in value)
        elif key in NUMBERS:
            value = float(value) if isinstance(NUMBERS[key][1], float) else int(value)
        elif key == "alpha":
            value = float(value)
        values[key] = value
    return values


def parse_hidden_sizes(text: str) -> tuple[int, ...] | None:
    """'64, 64' -> (64, 64); None if the text is not a comma-separated list of whole numbers."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def build_config(state: Any = None) -> tuple[TRPOConfig | None, list[str]]:
    """The TRPOConfig the widgets describe, or None and every problem in words.

    Reads only widget values, so equal widgets always give an equal config (the registry's
    idempotent start relies on that).
    """
    state = st.session_state if state is None else state
    values = {key: state[key] for key in KNOBS}
    problems: list[str] = []
    hidden = parse_hidden_sizes(values["hidden_sizes"])
    if hidden is None:
        problems.append(
            f"hidden_sizes must be layer widths separated by commas, such as 64,64; "
            f"got {values['hidden_sizes']!r}"
        )
        hidden = DEFAULT_CONFIG.hidden_sizes
    values["hidden_sizes"] = hidden
    try:
        config = TRPOConfig(**values)
    except ConfigError as exc:
        return None, problems + exc.problems
    except TypeError as exc:  # a missing or extra knob: a bug of this page, said plainly
        return None, [*problems, f"could not build the config: {exc}"]
    if problems:
        return None, problems
    return config, []


def apply_config(config: TRPOConfig) -> None:
    """Show config in the widgets (from a callback, before the widgets are drawn)."""
    for key, value in widget_values(config).items():
        st.session_state[key] = value


def init_state(env_ids: list[str]) -> None:
    """Default widget values on the first visit (the widgets keep them across pages)."""
    for key, value in widget_values(DEFAULT_CONFIG).items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault("preset", None)
    st.session_state.setdefault("run_name", "")
    if st.session_state["env_id"] not in env_ids:
        st.session_state["env_id"] = DEMO_ENV if DEMO_ENV in env_ids else env_ids[0]
    if st.session_state["preset"] not in (None, *PRESETS):
        st.session_state["preset"] = None


# --- callbacks (run before the script, so button states drawn after them are current) -----


def flash(place: str, kind: str, message: str) -> None:
    st.session_state.setdefault(FLASH, []).append((place, kind, message))


def show_flash(place: str) -> None:
    messages = st.session_state.get(FLASH, [])
    for _, kind, message in [m for m in messages if m[0] == place]:
        getattr(st, kind)(message)
    st.session_state[FLASH] = [m for m in messages if m[0] != place]


def on_preset() -> None:
    name = st.session_state.get("preset")
    if name is None:
        return
    keep = {key: st.session_state[key] for key in RUN_KNOBS}
    try:
        config = preset(name, **keep)
    except ConfigError:
        config = preset(name, probe_geometry=True)
    apply_config(config)


def on_env() -> None:
    chosen = st.session_state.get("preset")
    if chosen is not None and chosen != st.session_state["env_id"]:
        st.session_state["preset"] = None


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
    if handle.run_id in live:
        flash("main", "info", f"This configuration is already training as run {handle.run_id}.")


def on_start() -> None:
    config, problems = build_config()
    if config is None:  # Start is disabled then; a stale click still starts nothing
        flash("sidebar", "error", "Not started: " + "; ".join(problems))
        return
    start(config, st.session_state.get("run_name", "").strip(), "sidebar")


def on_demo() -> None:
    config = preset(DEMO_ENV, probe_geometry=True)
    apply_config(config)
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


# --- which run is shown -------------------------------------------------------------------


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


def progress_text(frame: Any, total: int, running: bool) -> tuple[float, str]:
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
                parts.append(f"ETA {eta(max(0, total - steps) / rate)}")
    return min(1.0, steps / total if total else 0.0), " · ".join(parts)


def eta(seconds: float) -> str:
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def live_panel(run_id: str | None, was_running: bool) -> None:
    """The shown run's name, progress, metrics and four live charts (reruns on a timer).

    Compact, so that all of it fits a 1280x720 screen below the page's header: the run's name
    and the charts' x-axis choice, one row of progress and metrics, then a 2x2 grid of short
    charts that receive only new points (pages/live/charts.py, which also styles the rows)."""
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
        axis = x_axis_choice(choice) if config is not None else None
    show_problems(run)
    if config is None or axis is None:  # the error is shown above
        return
    frame, version = metrics_snapshot(run)
    with st.container(key="live_status"):
        live_status(run, frame, config, running)
    live_charts(run.id, frame, version, axis, config.delta, config.max_backtracks)


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
    fraction, text = progress_text(frame, config.planned_steps, running)
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


# --- the page ------------------------------------------------------------------------------


def knob_widget(key: str) -> None:
    """The widget of one config knob (value from session_state, kept across page switches)."""
    common = dict(key=key, help=HELP.get(key), persist_state="session")
    if key in NUMBERS:
        label, low, high, step, fmt = NUMBERS[key]
        if key in EFFECT:
            common["help"] = f"{HELP[key]} {EFFECT[key]}"
        st.number_input(label, low, high, step=step, format=fmt, **common)
    elif key in CHOICES:
        st.selectbox(key.replace("_", " ").capitalize(), CHOICES[key], **common)
    elif key in TOGGLES:
        st.toggle(TOGGLES[key], **common)
    elif key == "hidden_sizes":
        st.text_input("Hidden sizes", placeholder="64,64", **common)


def sidebar(env_ids: list[str]) -> None:
    groups = {env_id: group for group, ids in catalog.supported_envs().items() for env_id in ids}
    presets = [name for name in PRESETS if name in groups]
    with st.sidebar:
        st.header("Run settings")
        st.selectbox(
            "Environment",
            env_ids,
            key="env_id",
            format_func=lambda e: f"{groups[e]} · {e}",
            on_change=on_env,
            help=HELP["env_id"] + " Only ids this install can create and train are listed.",
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
            on_change=on_preset,
            help="Fill every knob with rl-baselines3-zoo's tuned values for that environment "
            "(and select it). Seed and probe settings are kept. For continuous actions δ and "
            "CG damping are the zoo's per-dimension values times the action dimensions, so δ "
            "is the true mean KL of a step.",
            persist_state="session",
        )
        st.subheader("Trust region")
        knob_widget("delta")
        st.slider(
            "α: backtracking coefficient (alpha)",
            0.05,
            0.95,
            step=0.05,
            key="alpha",
            help=f"{HELP['alpha']} {EFFECT['alpha']}",
            persist_state="session",
        )
        knob_widget("max_backtracks")
        knob_widget("seed")
        knob_widget("total_steps")
        with st.expander("Advanced"):
            for key in ADVANCED:
                knob_widget(key)
        st.text_input(
            "Run name (optional)",
            key="run_name",
            max_chars=200,
            placeholder="e.g. cartpole delta 0.02",
            persist_state="session",
        )

        config, problems = build_config()
        for problem in problems:
            st.error(problem)
        if config is not None and config.planned_steps != config.total_steps:
            st.caption(
                f"Training runs whole iterations: {config.planned_steps:,} steps "
                f"({config.planned_iterations:,} iterations of {config.steps_per_iteration:,}"
                + (", after a warm-up batch)" if config.warmup_steps else ")")
            )
        if config is not None and st.session_state.get("preset") in PRESETS:
            base = preset(st.session_state["preset"], **{k: getattr(config, k) for k in RUN_KNOBS})
            changed = [k for k in KNOBS if getattr(config, k) != getattr(base, k)]
            if changed:
                st.caption(f"Changed from the preset: {', '.join(changed)}.")
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
    if state in ("stopped", "interrupted"):
        return "**Resume** continues this run from its last checkpoint."
    return "The demo trains CartPole-v1 with the rl-zoo preset: it learns in under a minute."


def main() -> None:
    envs = catalog.all_supported()
    if not envs:
        st.error("No supported Gymnasium environment can be created in this install.")
        return
    init_state(envs)
    sidebar(envs)
    warn_not_runs()

    st.title("Train")
    st.caption(
        "Choose an environment and the trust-region knobs (δ, α, K) in the sidebar and press "
        "**Start training**, or watch the one-click demo learn CartPole in under a minute."
    )
    run = shown_run()
    state = run_state(run) if run else None
    handle = get_registry().get(run.id) if run else None
    elsewhere = state == "running" and handle is None

    demo, stop, resume, note = st.columns([1.3, 0.8, 0.9, 3], vertical_alignment="center")
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
        disabled=state not in ("stopped", "interrupted"),
    )
    note.caption(button_note(state, elsewhere))
    show_flash("main")

    st.fragment(live_panel, run_every=1.0 if state == "running" else 5.0, key="train_live")(
        run.id if run else None, state == "running"
    )


main()
