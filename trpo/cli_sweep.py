"""`python -m trpo sweep`: its options (a value, a list or a range per knob), the spec they
make, and the command that runs or resumes a sweep with a progress line."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from dataclasses import fields
from typing import Any

from trpo.cli_options import CliError, add_preset_and_runs_dir, option_help, option_name
from trpo.config import TRPOConfig, knob_schema
from trpo.presets import preset
from trpo.store import DEFAULT_RUNS_DIR, load_metrics

# --- sweep ---------------------------------------------------------------------------------

SWEEP_EPILOG = """\
Each knob option takes one value (used by every trial), a comma-separated list of values to
sweep, or, for numeric knobs with --search random or tpe, a range LOW:HIGH (uniform) or
LOW:HIGH:log (log-uniform). Booleans: true,false. --hidden-sizes takes alternatives separated by
'/': 64,64/128,128. Every configuration runs once per seed, each run an Optuna trial of the
sweep's study (SQLite in the sweep's folder unless --storage names another database).

examples:
  python -m trpo sweep --env CartPole-v1 --delta 0.005,0.01,0.02 --alpha 0.5,0.8 --seeds 0,1,2
  python -m trpo sweep --preset CartPole-v1 --delta 0.001:0.05:log --max-backtracks 5:20 \\
      --search tpe --trials 16 --pruner median --seeds 0,1 --workers 2
  python -m trpo sweep --resume SWEEP_ID          # run the trials that did not finish
  optuna-dashboard sqlite:///runs/sweeps/SWEEP_ID/study.db
"""


def add_sweep_parser(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a hyperparameter sweep (grid, random or TPE search) over several seeds",
        description="Run configurations chosen by Optuna (every combination of a grid, a "
        "random sample, or TPE's picks) with every seed, in parallel; each trial is an ordinary "
        "run in the runs directory, tagged with the sweep id, and an Optuna trial of the "
        "sweep's study.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--seeds", metavar="S[,S...]", help="seeds of every configuration [0]")
    sweep.add_argument(
        "--search",
        metavar="KIND",
        help="how configurations are chosen: grid (every combination), random or tpe "
        "(Optuna's samplers; ranges need one of these two) [grid]",
    )
    sweep.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="configurations to run, each with every seed [the whole grid; needed with ranges]",
    )
    sweep.add_argument(
        "--sample-seed", type=int, metavar="S", help="seed of the search's sampler [0]"
    )
    sweep.add_argument(
        "--pruner",
        metavar="KIND",
        help="stop hopeless trials early, judging each run's mean return iteration by "
        "iteration: none, median or hyperband (Optuna's pruners) [none]",
    )
    sweep.add_argument(
        "--pruner-startup",
        type=int,
        metavar="N",
        help="median pruner: runs that finish before it prunes any [5]",
    )
    sweep.add_argument(
        "--pruner-warmup",
        type=int,
        metavar="N",
        help="iterations every run gets before it can be pruned (hyperband: its minimum "
        "resource; 0 lets Optuna choose) [0]",
    )
    sweep.add_argument(
        "--storage",
        metavar="URL",
        help="the study's database, any URL Optuna takes, e.g. postgresql://user@host/db to "
        "share a sweep between machines [sqlite:///<sweep folder>/study.db]",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        metavar="W",
        help="trials at once [local: the core count; ray: the cluster's CPUs]",
    )
    sweep.add_argument(
        "--backend", choices=("local", "ray"), default="local", help="where trials run [local]"
    )
    sweep.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="a running Ray cluster (e.g. auto or HOST:6379); default: start a local one",
    )
    add_preset_and_runs_dir(sweep)
    sweep.add_argument("--name", help="a display name for the sweep")
    sweep.add_argument(
        "--resume", metavar="SWEEP_ID", help="continue a sweep: run its unfinished trials"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar or trial lines")
    group = sweep.add_argument_group(
        "TRPO knobs: V (every trial), V1,V2,... (swept) or LOW:HIGH[:log] (random or tpe search)"
    )
    defaults = TRPOConfig()  # every knob at its default
    for name, knob in knob_schema().items():
        if name == "seed":
            continue
        help_text = option_help(knob, getattr(defaults, name))
        group.add_argument(option_name(name), dest=name, default=None, metavar="V", help=help_text)


def knob_value(name: str, text: str) -> Any:
    """One value of a knob from the command line, by the knob's own parser (trpo.knobs)."""
    try:
        return knob_schema()[name].parse(text)
    except ValueError as exc:
        raise CliError(f"{option_name(name)}: {exc}") from None


def knob_values(name: str, text: str) -> Any:
    """The values of knob `name` written as on the command line: 'V1,V2,...' -> a list
    (hidden_sizes: alternatives separated by '/'), 'LOW:HIGH[:log]' -> a KnobRange for random
    search. CliError names the option and the bad value."""
    from trpo.sweep import KNOBS, KnobRange

    default = KNOBS[name]
    option = option_name(name)
    if not text.strip():
        raise CliError(f"{option}: no value given")
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and ":" in text:
        parts = [p.strip() for p in text.split(":")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].lower() != "log"):
            raise CliError(f"{option}: a range is LOW:HIGH or LOW:HIGH:log, got {text!r}")
        low, high = (knob_value(name, p) for p in parts[:2])
        return KnobRange(low, high, log=len(parts) == 3)
    pieces = text.split("/") if isinstance(default, tuple) else text.split(",")
    if any(not p.strip() for p in pieces):
        raise CliError(f"{option}: an empty value in {text!r}")
    return [knob_value(name, p) for p in pieces]


def _seed_list(text: str | None) -> list[int]:
    if text is None:
        return [0]
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CliError(f"--seeds: expected whole numbers such as 0,1,2, got {text!r}") from None


def _search_options(args: argparse.Namespace, ranges: list[str]) -> dict[str, Any]:
    """The spec's search settings from the options, each checked with a message that names
    the option."""
    from trpo.sweep.spec import PRUNERS, SEARCHES

    search = (args.search or "grid").strip().lower()
    if search not in SEARCHES:
        raise CliError(f"--search must be one of {', '.join(SEARCHES)}, got {args.search!r}")
    pruner = (args.pruner or "none").strip().lower()
    if pruner not in PRUNERS:
        raise CliError(f"--pruner must be one of {', '.join(PRUNERS)}, got {args.pruner!r}")
    if search == "grid" and ranges:
        options = ", ".join(option_name(k) for k in ranges)
        raise CliError(
            f"{options}: a range (LOW:HIGH) is searched by --search random or tpe; grid "
            "search takes lists of values"
        )
    if args.trials is not None and args.trials < 1:
        raise CliError(f"--trials must be at least 1, got {args.trials}")
    if ranges and args.trials is None:
        raise CliError(f"--search {search} over a range needs --trials N (configurations)")
    for option, value in (
        ("--sample-seed", args.sample_seed),
        ("--pruner-startup", args.pruner_startup),
        ("--pruner-warmup", args.pruner_warmup),
    ):
        if value is not None and value < 0:
            raise CliError(f"{option} must be 0 or more, got {value}")
    if pruner == "none" and (args.pruner_startup is not None or args.pruner_warmup is not None):
        raise CliError("--pruner-startup and --pruner-warmup need --pruner median or hyperband")
    if args.pruner_startup is not None and pruner != "median":
        raise CliError("--pruner-startup is a setting of --pruner median")
    options: dict[str, Any] = {"search": search, "trials": args.trials, "pruner": pruner}
    if args.sample_seed is not None:
        options["sample_seed"] = args.sample_seed
    if args.pruner_startup is not None:
        options["pruner_startup"] = args.pruner_startup
    if args.pruner_warmup is not None:
        options["pruner_warmup"] = args.pruner_warmup
    if args.storage is not None:
        options["storage"] = _storage(args.storage)
    return options


def _storage(url: str) -> str:
    """--storage, checked: a URL Optuna can open (CliError naming the option otherwise)."""
    from trpo.config import ConfigError
    from trpo.sweep.search import check_storage

    url = url.strip()
    if "://" not in url:
        raise CliError(
            f"--storage: a database URL such as sqlite:///path/study.db or "
            f"postgresql://user@host/db, got {url!r}"
        )
    try:
        check_storage(url)
    except ConfigError as exc:
        raise CliError(f"--storage: {'; '.join(exc.problems)}") from None
    return url


def sweep_spec_from_args(args: argparse.Namespace) -> Any:
    """The SweepSpec of `sweep` options: one value sets the knob for every trial, several (or
    a range) sweep it; validated (ConfigError / CliError)."""
    from trpo.sweep import KnobRange, SweepSpec

    fixed: dict[str, Any] = {}
    grid: dict[str, Any] = {}
    for f in fields(TRPOConfig):
        text = getattr(args, f.name, None)
        if f.name == "seed" or text is None:
            continue
        values = knob_values(f.name, text)
        if isinstance(values, list) and len(values) == 1:
            fixed[f.name] = values[0]
        else:
            grid[f.name] = values
    ranges = [k for k, v in grid.items() if isinstance(v, KnobRange)]
    search = _search_options(args, ranges)
    base = preset(args.preset, **fixed) if args.preset else TRPOConfig(**fixed)
    return SweepSpec(
        base=base, grid=grid, seeds=_seed_list(args.seeds), name=args.name or "", **search
    )


def run_sweep_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trpo.sweep import (
        SweepError,
        TrialEvent,
        create_sweep,
        final_return,
        format_results,
        load_sweep,
        run_sweep,
        sweep_results,
    )

    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, got {args.workers}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what happens
    if args.ray_address and args.backend != "ray":
        raise CliError("--ray-address needs --backend ray")
    try:
        if args.resume:
            given = [f.name for f in fields(TRPOConfig) if getattr(args, f.name, None) is not None]
            extra = [
                args.preset,
                args.seeds,
                args.search,
                args.trials,
                args.sample_seed,
                args.pruner,
                args.pruner_startup,
                args.pruner_warmup,
                args.storage,
                args.name,
            ]
            if given or any(v is not None for v in extra):
                raise CliError(
                    "--resume takes only --workers, --backend, --ray-address and --runs-dir "
                    "(the sweep keeps its own spec, search and study)"
                )
            sweep_id = args.resume
            load_sweep(args.runs_dir, sweep_id)
        else:
            sweep_id = create_sweep(sweep_spec_from_args(args), args.runs_dir, args.backend)
        info = load_sweep(args.runs_dir, sweep_id)
    except SweepError as exc:
        raise CliError(str(exc)) from exc

    spec = info.spec
    pruner = "" if spec.pruner == "none" else f", {spec.pruner} pruner"
    print(
        f"sweep {sweep_id}: {spec.n_trials} trials ({spec.n_configs} configurations x "
        f"{len(spec.seeds)} seeds), {spec.search} search{pruner}, backend {args.backend}, "
        f"workers {args.workers or 'auto'}",
        flush=True,
    )
    print(f"sweep folder: {info.path}", flush=True)
    print(f"study: {info.shown_study_url} (study name {sweep_id})", flush=True)
    bar = tqdm(
        total=spec.n_trials,
        unit="trial",
        disable=args.quiet,
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def progress(event: TrialEvent) -> None:
        if event.kind != "ended":
            return
        bar.update(event.done - bar.n)
        if args.quiet:
            return
        line = f"[{event.done}/{event.total}] {event.state:<8} {event.trial.trial_id}  "
        line += event.trial.label()
        if event.run_dir:
            with contextlib.suppress(Exception):
                value = final_return(load_metrics(event.run_dir))
                line += "" if value != value else f"  final return {value:.1f}"
        if event.error:
            line += f"  ({event.error})"
        bar.write(line, file=sys.stdout)

    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        bar.write(
            "stopping: each trial stops after its current iteration (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = run_sweep(
            None,
            args.runs_dir,
            workers=args.workers,
            backend=args.backend,
            ray_address=args.ray_address,
            stop_event=stop,
            on_progress=progress,
            resume_sweep_id=sweep_id,
        )
    except KeyboardInterrupt:
        bar.close()
        print(f"aborted; resume with: python -m trpo sweep --resume {sweep_id}", file=sys.stderr)
        return 130
    except SweepError as exc:
        raise CliError(str(exc)) from exc
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.close()
    skipped = sum(1 for o in result.outcomes.values() if o.skipped)
    if skipped:
        print(f"{skipped} trials had finished before and were not run again")
    pruned = sum(1 for o in result.outcomes.values() if o.state == "pruned" and not o.skipped)
    if pruned:
        print(f"{pruned} trials were pruned (stopped early by the {spec.pruner} pruner)")
    print()
    print(format_results(sweep_results(args.runs_dir, sweep_id), spec.knob_names))
    print()
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    print(f"sweep {sweep_id}: {counts} ({result.wall_time_s:.1f} s)")
    print(f"sweep folder: {info.path}")
    print(f"study: optuna-dashboard {info.shown_study_url}")
    if not result.all_finished:
        resume = f"python -m trpo sweep --resume {sweep_id}"
        if args.runs_dir != DEFAULT_RUNS_DIR:
            resume += f" --runs-dir {args.runs_dir}"
        print(f"resume with: {resume}")
    if result.stopped:
        return 130
    return 0 if result.all_finished else 1
