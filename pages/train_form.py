"""The Train page's settings form: one widget per config knob, derived from the knob schema.

What is typed is what runs: numbers are typed as text and read by the knob's own parser
(trpo.knobs), so an out-of-range or malformed value is never replaced: the box keeps it, the
library's message shows under it, and Start stays disabled until every value is valid.
Choosing an environment fills every knob with its preset (or the library defaults); the form
lists the knobs that differ from them and can restore them.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from trpo.config import ConfigError, TRPOConfig, knob_schema
from trpo.presets import PRESETS, preset

SCHEMA = knob_schema()
# The dashboard's defaults: TRPOConfig's, with the geometry probe on (Trust region draws it).
DEFAULT_CONFIG = TRPOConfig(probe_geometry=True)
TRUST_REGION = ("delta", "alpha", "max_backtracks")
MAIN = ("seed", "total_steps")
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
KNOBS = ("env_id", *TRUST_REGION, *MAIN, *ADVANCED)  # every knob has a widget keyed by name
# Knobs that describe the run rather than the algorithm: a preset keeps the user's values.
RUN_KNOBS = ("seed", "probe_geometry", "probe_points", "torch_threads", "checkpoint_every")
TYPED = tuple(k for k in KNOBS if SCHEMA[k].kind in ("int", "float", "sizes"))
# Effect of the three trust-region knobs on the step, appended to the library's help.
EFFECT = {
    "delta": "Effect: the full step is scaled to √(2δ / xᵀHx), so δ sets how far each step "
    "may move the policy.",
    "alpha": "Effect: a smaller α shrinks faster, so fewer tries but a shorter accepted step.",
    "max_backtracks": "Effect: if none of the K+1 candidates keeps KL ≤ δ and improves the "
    "surrogate, the step is rejected and θ is kept.",
}
PROBLEMS = "_form_problems"  # knob -> its problem, for the message under its box


def as_text(key: str, value: Any) -> str:
    """A knob's value as its box shows it: exact (repr of floats), widths as '64,64'."""
    if SCHEMA[key].kind == "sizes":
        return ",".join(str(v) for v in value)
    return repr(float(value)) if SCHEMA[key].kind == "float" else str(value)


def widget_values(config: TRPOConfig) -> dict[str, Any]:
    """The widget values that show config."""
    return {
        key: as_text(key, getattr(config, key)) if key in TYPED else getattr(config, key)
        for key in KNOBS
    }


def base_config(env_id: str, keep: dict[str, Any] | None = None) -> TRPOConfig:
    """What the env starts from: its preset if it has one, else the dashboard's defaults;
    keep holds run knobs (seed, probe settings) that stay as the user set them."""
    # the dashboard's run knobs (the probe on), then the user's
    keep = {k: getattr(DEFAULT_CONFIG, k) for k in RUN_KNOBS} | {
        k: v for k, v in (keep or {}).items() if k in RUN_KNOBS
    }
    try:
        if env_id in PRESETS:
            return preset(env_id, **keep)
        return DEFAULT_CONFIG.replace(env_id=env_id, **keep)
    except ConfigError:
        return preset(env_id) if env_id in PRESETS else DEFAULT_CONFIG.replace(env_id=env_id)


def read_form(state: Any = None) -> tuple[TRPOConfig | None, dict[str, str], list[str]]:
    """(the config the widgets describe or None, knob -> its own problem, problems between
    knobs). Reads only widget values, so equal widgets always give an equal config (the
    registry's idempotent start relies on that)."""
    state = st.session_state if state is None else state
    values: dict[str, Any] = {}
    own: dict[str, str] = {}
    for key in KNOBS:
        value = state[key]
        if key in TYPED:
            try:
                value = SCHEMA[key].parse(value)
            except ValueError as exc:
                own[key] = str(exc)
                continue
        found = SCHEMA[key].problems(value)
        if found:
            own[key] = found[0]
            continue
        values[key] = value
    if own:
        return None, own, []
    try:
        return TRPOConfig(**values), {}, []
    except ConfigError as exc:
        return None, {}, exc.problems


def apply_config(config: TRPOConfig) -> None:
    """Show config in the widgets (from a callback, before the widgets are drawn)."""
    for key, value in widget_values(config).items():
        st.session_state[key] = value


def init_state(env_ids: list[str], demo_env: str, linked: TRPOConfig | None = None) -> None:
    """Widget values on a session's first run (the widgets keep them after): the settings the
    link carries (`?env=..&settings=..`, written by `write_link`), else the linked run's
    config, else the first env's preset or defaults. So a reload or a shared link shows the
    same form."""
    first = "_form_ready" not in st.session_state
    st.session_state["_form_ready"] = True
    env_id = demo_env if demo_env in env_ids else env_ids[0]
    start = base_config(env_id)  # the first env's preset (or defaults), as choosing it gives
    if first and linked is not None:
        start = linked
    for key, value in widget_values(start).items():
        st.session_state.setdefault(key, value)
    if first:
        read_link(env_ids)
    st.session_state.setdefault("run_name", "")
    if st.session_state["env_id"] not in env_ids:
        st.session_state["env_id"] = demo_env if demo_env in env_ids else env_ids[0]
    if "preset" not in st.session_state:  # the box names the preset when the form shows it
        st.session_state["preset"] = shown_preset()
    if st.session_state["preset"] not in (None, *PRESETS):
        st.session_state["preset"] = None


def shown_preset() -> str | None:
    """The env's preset if every knob but the run knobs shows it, else None."""
    env_id = st.session_state.get("env_id")
    if env_id not in PRESETS:
        return None
    expected = widget_values(preset(env_id))
    same = all(
        st.session_state.get(key) == value
        for key, value in expected.items()
        if key not in RUN_KNOBS
    )
    return env_id if same else None


def run_knobs_now() -> dict[str, Any]:
    """The run knobs as typed, those that read as valid."""
    keep = {}
    for key in RUN_KNOBS:
        value = st.session_state.get(key)
        if key in TYPED:
            try:
                value = SCHEMA[key].parse(value)
            except ValueError:
                continue
        keep[key] = value
    return keep


# --- callbacks ---------------------------------------------------------------------------------


def on_preset() -> None:
    """A preset fills every knob and selects its env (run knobs kept)."""
    name = st.session_state.get("preset")
    if name is not None:
        apply_config(base_config(name, run_knobs_now()))


def on_env() -> None:
    """A new env starts from its preset if it has one, else the library defaults: every knob."""
    env_id = st.session_state["env_id"]
    apply_config(base_config(env_id, run_knobs_now()))
    st.session_state["preset"] = env_id if env_id in PRESETS else None


def on_reset() -> None:
    """Restore every knob to the env's preset or defaults (run knobs kept)."""
    on_env()


def changed_knobs(config: TRPOConfig) -> list[str]:
    """The knobs of config that differ from its env's preset or the defaults."""
    base = base_config(config.env_id, {k: getattr(config, k) for k in RUN_KNOBS})
    return [k for k in KNOBS if getattr(config, k) != getattr(base, k)]


# --- widgets -----------------------------------------------------------------------------------


def knob_widget(key: str, problems: dict[str, str]) -> None:
    """The widget of one knob, and its problem (if any) right under it."""
    knob = SCHEMA[key]
    help_text = f"{knob.describe()} {EFFECT.get(key, '')}".strip()
    common = dict(key=key, help=help_text, persist_state="session")
    if knob.kind == "bool":
        st.toggle(knob.label, **common)
    elif knob.kind == "choice":
        st.selectbox(knob.label, knob.choices, **common)
    else:
        placeholder = "64,64" if knob.kind == "sizes" else knob.bounds_text()
        st.text_input(knob.label, placeholder=placeholder, **common)
    if key in problems:
        st.error(problems[key], icon=":material/error:")


def knob_widgets(keys: tuple[str, ...], problems: dict[str, str]) -> None:
    for key in keys:
        knob_widget(key, problems)


def summary(config: TRPOConfig | None, between: list[str]) -> None:
    """Under the form: problems between knobs, what whole iterations train, what differs from
    the env's preset or defaults (with a reset)."""
    for problem in between:
        st.error(problem)
    if config is None:
        return
    if config.planned_steps != config.total_steps:
        st.caption(
            f"Training runs whole iterations: {config.planned_steps:,} steps "
            f"({config.planned_iterations:,} iterations of {config.steps_per_iteration:,}"
            + (", after a warm-up batch)" if config.warmup_steps else ")")
        )
    changed = changed_knobs(config)
    base = "the preset" if config.env_id in PRESETS else "the defaults"
    if changed:
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.caption(f"Changed from {base}: {', '.join(changed)}.")
        right.button(
            "Reset",
            key="reset_knobs",
            icon=":material/restart_alt:",
            on_click=on_reset,
            help=f"Restore every knob to {base} of {config.env_id} (seed and probe kept).",
        )
    else:
        st.caption(f"Every knob is {base} of {config.env_id}.")


# --- the form in the URL ------------------------------------------------------------------------


def _text(key: str, value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def draft(state: Any) -> str:
    """The knobs whose widgets differ from the env's preset or defaults, run knobs (seed,
    probe) included, as typed: 'delta=0.02;seed=3' ('' when none)."""
    base = widget_values(base_config(state["env_id"]))
    return ";".join(
        f"{k}={_text(k, state[k])}" for k in KNOBS[1:] if _text(k, state[k]) != _text(k, base[k])
    )


def write_link() -> None:
    """Keep the form in the page's URL (env and what differs), so that it survives a reload."""
    params = st.query_params
    text = draft(st.session_state)
    if params.get("env") != st.session_state["env_id"]:
        params["env"] = st.session_state["env_id"]
    if text and params.get("settings") != text:
        params["settings"] = text
    elif not text and "settings" in params:
        del params["settings"]


def read_link(env_ids: list[str]) -> None:
    """Fill the form from `?env=..&settings=..` (unknown knobs and env ids are ignored; values
    are kept as typed, so a bad one shows its message)."""
    params = st.query_params
    env_id = params.get("env")
    if env_id not in env_ids:
        return
    apply_config(base_config(env_id))  # the base `draft` wrote the differences against
    st.session_state["preset"] = env_id if env_id in PRESETS else None
    for part in params.get("settings", "").split(";"):
        key, _, text = part.partition("=")
        if key not in KNOBS[1:]:
            continue
        knob = SCHEMA[key]
        if knob.kind == "bool":
            try:
                st.session_state[key] = knob.parse(text)
            except ValueError:
                continue
        elif knob.kind == "choice":
            if text in knob.choices:
                st.session_state[key] = text
        else:
            st.session_state[key] = text
