"""Sweeps: tune delta, alpha, K (or any knob) across seeds, locally or on a Ray cluster.

The page builds a trpo.sweep.SweepSpec from its widgets (the search, grid, random or TPE, and
the pruner are Optuna's) and starts it through the process-wide launcher (pages/common.py);
trials are ordinary runs in the run store, so the live table and the results are read from the
store like everything else (each trial's log through its incremental reader). Before a launch the
form says how long the sweep should take; while it runs, the trial states and the best final
return so far; after, Optuna's own figures of the study, which is in the sweep's database (named
on the page, for optuna-dashboard).
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from pages.common import (
    get_sweep_launches,
    runs_dir,
    show_problems,
    warn_not_runs,
)
from trpo import catalog, sweep_plots
from trpo.cli_options import CliError
from trpo.cli_sweep import knob_values
from trpo.config import ConfigError, TRPOConfig, knob_help, knob_schema
from trpo.envs import EnvError
from trpo.formatting import plural
from trpo.metrics_tail import shared_tails
from trpo.presets import PRESETS, preset
from trpo.sweep import (
    PRUNERS,
    SEARCHES,
    SweepError,
    SweepSpec,
    estimate_sweep,
    list_sweeps,
    state_counts,
    stop_sweep,
    sweep_results,
    sweep_runs,
    sweep_state,
    sweep_trials,
    unreadable_sweeps,
)

SWEEPABLE = [
    name
    for name in TRPOConfig.__dataclass_fields__
    if name not in ("env_id", "seed", "total_steps")
]
DEFAULT_VALUES = {"delta": "0.005, 0.01, 0.02", "alpha": "0.5, 0.8", "max_backtracks": "5, 10"}
HELP = knob_help()
SCHEMA = knob_schema()
RETURN = "%.1f"


def knob_columns(knobs: list[str]) -> dict[str, Any]:
    """Column titles of swept knobs: the schema's labels ('δ: KL limit (delta)')."""
    return {
        k: st.column_config.NumberColumn(SCHEMA[k].label, format="%g")
        if SCHEMA[k].kind in ("int", "float")
        else st.column_config.TextColumn(SCHEMA[k].label)
        for k in knobs
        if k in SCHEMA
    }


RESULT_COLUMNS = {
    "n_trials": st.column_config.NumberColumn("trials"),
    "n_seeds": st.column_config.NumberColumn("seeds counted", help="Finished trials."),
    "final_return_mean": st.column_config.NumberColumn("final return (mean)", format=RETURN),
    "final_return_std": st.column_config.NumberColumn("± std", format=RETURN),
    "final_return_min": st.column_config.NumberColumn("min", format=RETURN),
    "final_return_max": st.column_config.NumberColumn("max", format=RETURN),
    "best_return": st.column_config.NumberColumn("best iteration return", format=RETURN),
    "n_finished": st.column_config.NumberColumn("finished"),
    "n_pruned": st.column_config.NumberColumn("pruned", help="Stopped early by the pruner."),
    "n_running": st.column_config.NumberColumn("running"),
    "n_stopped": st.column_config.NumberColumn("stopped"),
    "n_failed": st.column_config.NumberColumn("failed"),
    "n_interrupted": st.column_config.NumberColumn("interrupted"),
    "n_pending": st.column_config.NumberColumn("pending"),
}


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise ConfigError(
            [f"seeds must be whole numbers separated by commas, got {text!r}"]
        ) from exc


def build_spec() -> tuple[SweepSpec | None, list[str]]:
    """The sweep the widgets describe, or the problems that prevent it."""
    s = st.session_state
    env_id = s["sweep_env"]
    try:
        overrides: dict[str, Any] = {"total_steps": int(s["sweep_total_steps"])}
        base = (
            preset(env_id, **overrides)
            if s.get("sweep_use_preset") and env_id in PRESETS
            else TRPOConfig(env_id=env_id, **overrides)
        )
        grid = {}
        for knob in s["sweep_knobs"]:
            text = s.get(f"sweep_values_{knob}", "")
            if not text.strip():
                raise ConfigError([f"give comma-separated values for {knob}"])
            grid[knob] = knob_values(knob, text)
        spec = SweepSpec(
            base=base,
            grid=grid,
            seeds=parse_seeds(s["sweep_seeds"]),
            search=s["sweep_search"],
            trials=int(s["sweep_trials"]) or None,
            pruner=s["sweep_pruner"],
            name=s.get("sweep_name", ""),
        )
        return spec, []
    except ConfigError as exc:
        return None, exc.problems
    except (CliError, ValueError, TypeError) as exc:
        return None, [str(exc)]


def on_launch() -> None:
    spec, problems = build_spec()
    if spec is None:
        st.session_state["sweep_flash"] = ("error", "; ".join(problems))
        return
    s = st.session_state
    kwargs: dict[str, Any] = {"workers": int(s["sweep_workers"]), "backend": s["sweep_backend"]}
    if s["sweep_backend"] == "ray" and s.get("sweep_ray_address", "").strip():
        kwargs["ray_address"] = s["sweep_ray_address"].strip()
    try:
        handle = get_sweep_launches().start(spec, **kwargs)
    except (ConfigError, EnvError, SweepError) as exc:
        message = "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
        st.session_state["sweep_flash"] = ("error", message)
        return
    s["sweep_pick"] = handle.sweep_id
    s["sweep_flash"] = (
        "success",
        f"Sweep {handle.sweep_id} started: {plural(spec.n_trials, 'trial')}.",
    )


def on_stop(sweep_id: str) -> None:
    stop_sweep(runs_dir(), sweep_id)
    st.session_state["sweep_flash"] = (
        "info",
        f"Stopping sweep {sweep_id} after the current iterations.",
    )


def on_resume(sweep_id: str) -> None:
    s = st.session_state
    try:
        get_sweep_launches().resume(
            sweep_id, workers=int(s["sweep_workers"]), backend=s["sweep_backend"]
        )
    except (ConfigError, EnvError, SweepError) as exc:
        st.session_state["sweep_flash"] = ("error", str(exc))


def define_sweep() -> None:
    s = st.session_state
    envs = catalog.all_supported()
    s.setdefault("sweep_env", "CartPole-v1" if "CartPole-v1" in envs else envs[0])
    s.setdefault("sweep_knobs", ["delta", "alpha", "max_backtracks"])
    s.setdefault("sweep_seeds", "0, 1, 2")
    s.setdefault("sweep_total_steps", 50_000)
    s.setdefault("sweep_search", "grid")
    s.setdefault("sweep_trials", 0)
    s.setdefault("sweep_pruner", "none")
    s.setdefault("sweep_workers", os.cpu_count() or 1)
    s.setdefault("sweep_backend", "local")
    s.setdefault("sweep_use_preset", True)
    with st.expander("Define a sweep", expanded=not list_sweeps(runs_dir())):
        left, right = st.columns(2)
        left.selectbox("Environment", envs, key="sweep_env")
        left.toggle(
            "Start from the env's rl-zoo preset",
            key="sweep_use_preset",
            help="Base values of the knobs not swept: the preset if the env has one.",
        )
        left.number_input(
            "Env steps per trial", 1, 100_000_000, step=10_000, key="sweep_total_steps"
        )
        left.text_input("Seeds", key="sweep_seeds", help="Comma-separated, e.g. 0, 1, 2.")
        left.text_input("Sweep name (optional)", key="sweep_name", max_chars=100)
        right.multiselect(
            "Knobs to sweep", SWEEPABLE, key="sweep_knobs", format_func=lambda k: SCHEMA[k].label
        )
        for knob in s["sweep_knobs"]:
            s.setdefault(f"sweep_values_{knob}", DEFAULT_VALUES.get(knob, ""))
            right.text_input(
                f"{SCHEMA[knob].label}: values",
                key=f"sweep_values_{knob}",
                help=f"{HELP.get(knob)} Comma-separated values, or LOW:HIGH[:log] with random "
                "or TPE search.",
            )
        search, count, prune = right.columns(3)
        search.selectbox(
            "Search",
            SEARCHES,
            key="sweep_search",
            help="How Optuna chooses the configurations: grid (every combination), random, or "
            "tpe (learns from the results so far). Ranges need random or tpe.",
        )
        count.number_input(
            "Configurations (0 = the whole grid)",
            0,
            10_000,
            key="sweep_trials",
            help="How many configurations to run, each with every seed.",
        )
        prune.selectbox(
            "Pruner",
            PRUNERS,
            key="sweep_pruner",
            help="Stop hopeless runs early, judging each run's mean return iteration by "
            "iteration against the others (Optuna's median or hyperband pruner).",
        )
        right.number_input("Workers (parallel trials)", 1, 64, key="sweep_workers")
        right.radio(
            "Backend",
            ["local", "ray"],
            key="sweep_backend",
            horizontal=True,
            help="local: a process pool here; ray: Ray tasks (a local Ray instance, or "
            "a running cluster at the address below).",
        )
        if s["sweep_backend"] == "ray":
            right.text_input("Ray address (empty: start a local Ray)", key="sweep_ray_address")
        spec, problems = build_spec()
        for problem in problems:
            st.error(problem)
        if spec is not None:
            st.caption(
                f"{plural(spec.n_trials, 'trial')}: {plural(spec.n_configs, 'configuration')} x "
                f"{plural(len(spec.seeds), 'seed')}, {spec.search} search."
            )
            workers = int(s["sweep_workers"])
            cpus = workers if s["sweep_backend"] == "ray" else None  # a cluster's: unknown
            estimate = estimate_sweep(spec, runs_dir(), workers, cpus=cpus)
            st.caption(estimate.text(spec.base.env_id))
        st.button(
            "Launch sweep",
            key="sweep_launch",
            type="primary",
            on_click=on_launch,
            disabled=spec is None,
            icon=":material/rocket_launch:",
        )


def show_flash() -> None:
    flash = st.session_state.pop("sweep_flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])


def trials_panel(sweep_id: str, shown_state: str) -> None:
    state = sweep_state(runs_dir(), sweep_id)
    trials = sweep_trials(runs_dir(), sweep_id, tails=shared_tails())
    counts = state_counts(trials)
    cols = st.columns(5)
    cols[0].metric("Sweep", state)
    cols[1].metric("Trials finished", f"{counts.get('finished', 0)} / {len(trials)}")
    cols[2].metric("Running", counts.get("running", 0))
    cols[3].metric("Pruned", counts.get("pruned", 0))
    cols[4].metric("Failed", counts.get("failed", 0))
    st.caption("Trial states: " + " · ".join(f"{n} {state}" for state, n in counts.items() if n))
    shown = trials.drop(columns=[c for c in ("run_dir", "config_id") if c in trials])
    if "error" in shown:
        shown = shown.assign(error=shown["error"].fillna(""))
    knobs = [c for c in shown.columns if c in SCHEMA and c != "seed"]
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            **knob_columns(knobs),
            "run_id": st.column_config.TextColumn("run id"),
            "env_steps": st.column_config.NumberColumn("env steps", format="localized"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
            "current_return": st.column_config.NumberColumn("current return", format="%.1f"),
            "final_return": st.column_config.NumberColumn("final return", format="%.1f"),
            "best_return": st.column_config.NumberColumn("best return", format="%.1f"),
        },
        key="sweep_trials_table",
    )
    st.plotly_chart(sweep_plots.best_so_far_figure(trials), key="sweep_best_so_far")
    failed = trials[trials["status"] == "failed"]
    for _, row in failed.iterrows():
        st.error(f"Trial {row['trial']} failed: {row.get('error') or 'unknown error'}")
    if state != shown_state:
        st.rerun(scope="app")  # started or ended: redraw the buttons and the results


def results_panel(sweep_id: str) -> None:
    info = next((i for i in list_sweeps(runs_dir()) if i.sweep_id == sweep_id), None)
    knobs = info.spec.knob_names if info else []
    results = sweep_results(runs_dir(), sweep_id, tails=shared_tails())
    if results.empty or results["n_seeds"].sum() == 0:
        st.info("Results appear here as trials finish.")
        return
    st.subheader("Results: final return per configuration across seeds")
    single_seed = results["final_return_std"].isna().all()  # no spread to show
    st.dataframe(
        results.drop(columns=["config_id", *(["final_return_std"] if single_seed else [])]),
        hide_index=True,
        width="stretch",
        key="sweep_results_table",
        column_config={**knob_columns(knobs), **RESULT_COLUMNS},
    )
    st.download_button(
        "Download results as CSV",
        results.to_csv(index=False).encode(),
        file_name=f"{sweep_id}-results.csv",
        mime="text/csv",
        key="sweep_csv",
    )
    trials = sweep_trials(runs_dir(), sweep_id, tails=shared_tails())
    for row_start in range(0, len(knobs), 2):
        for col, knob in zip(st.columns(2), knobs[row_start : row_start + 2], strict=False):
            with col:
                st.plotly_chart(
                    sweep_plots.sweep_knob_figure(trials, knob), key=f"sweep_knob_{knob}"
                )
    if knobs:
        st.plotly_chart(
            sweep_plots.parallel_coordinates_figure(results, knobs), key="sweep_parcoords"
        )


@st.cache_data(max_entries=16, show_spinner=False)
def study_figures(url: str, sweep_id: str, counts: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    """Optuna's figures of the sweep's study (or why not), redrawn when its trial counts
    change."""
    try:
        return sweep_plots.sweep_study_figures(url, sweep_id)
    except (ConfigError, SweepError) as exc:
        message = "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
        return {"error": f"The study cannot be read: {message}"}


STUDY_TITLES = {
    "importances": "Which knobs matter",
    "parallel": "Parallel coordinates",
    "slice": "Slices",
}


def study_panel(sweep_id: str, url: str) -> None:
    """After the sweep: Optuna's parameter importances, parallel coordinates and slices."""
    st.subheader("Optuna's view of the study")
    counts = state_counts(sweep_trials(runs_dir(), sweep_id, tails=shared_tails()))
    figures = study_figures(url, sweep_id, tuple(counts.items()))
    if "error" in figures:
        st.warning(figures["error"])
        return
    for tab, name in zip(st.tabs(list(STUDY_TITLES.values())), STUDY_TITLES, strict=True):
        with tab:
            figure = figures[name]
            if isinstance(figure, str):
                st.info(figure)
            else:
                st.plotly_chart(figure, key=f"sweep_study_{name}")


def main() -> None:
    st.title("Sweeps")
    st.caption(
        "Run configurations chosen by Optuna (a grid, a random sample or TPE) times several "
        "seeds in parallel, on this machine or a Ray cluster, optionally pruning hopeless runs. "
        "Every trial is an ordinary run: the Runs and Trust region pages show it too."
    )
    define_sweep()
    show_flash()
    for broken, reason in unreadable_sweeps(runs_dir()).items():
        st.warning(f"Sweep **{broken}** is not listed: {reason}")
    warn_not_runs()
    sweeps = list_sweeps(runs_dir())
    if not sweeps:
        st.info("No sweep yet: define one above and launch it.")
        return
    ids = [info.sweep_id for info in sweeps]
    if st.session_state.get("sweep_pick") not in ids:
        st.session_state["sweep_pick"] = ids[0]
    labels = {
        info.sweep_id: f"{info.name or info.sweep_id} · {info.spec.base.env_id} · "
        f"{plural(info.spec.n_trials, 'trial')} · {info.spec.search}"
        for info in sweeps
    }
    sweep_id = st.selectbox("Sweep", ids, key="sweep_pick", format_func=labels.get)
    state = sweep_state(runs_dir(), sweep_id)
    stop, resume, _ = st.columns([1, 1, 4])
    stop.button(
        "Stop sweep",
        key="sweep_stop",
        on_click=on_stop,
        args=(sweep_id,),
        disabled=state != "running",
        icon=":material/stop:",
    )
    resume.button(
        "Resume sweep",
        key="sweep_resume",
        on_click=on_resume,
        args=(sweep_id,),
        disabled=state == "running" or state == "finished",
        icon=":material/replay:",
    )
    info = next(i for i in sweeps if i.sweep_id == sweep_id)
    st.caption(
        f"Optuna study `{sweep_id}` in `{info.shown_study_url}`: open it with "
        f"`optuna-dashboard {info.shown_study_url}`."
    )
    for trial_run in sweep_runs(runs_dir(), sweep_id).values():
        show_problems(trial_run, name_the_run=True)
    running = state == "running"
    # polled always (slowly when idle): a sweep launched a moment ago, or from the command line,
    # may not have reached "running" yet when this page was drawn
    st.fragment(trials_panel, run_every=1.0 if running else 3.0, key="sweep_live")(sweep_id, state)
    results_panel(sweep_id)
    if not running:
        study_panel(sweep_id, info.study_url)


main()
