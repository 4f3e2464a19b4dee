"""Command line: `python -m trpo train | eval | list | sweep`.

Every config knob is an option of `train` (generated from TRPOConfig's fields, with their help).
Bad options or bad values print one clear message and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from trpo.config import ConfigError, TRPOConfig, knob_schema
from trpo.envs import EnvError
from trpo.knobs import Knob
from trpo.presets import PRESETS, preset
from trpo.store import DEFAULT_RUNS_DIR, RunStore, RunStoreError, load_metrics
from trpo.training_errors import TrainingError

# Short, familiar option names for the knobs people type most.
OPTION_NAMES = {"env_id": "--env", "max_backtracks": "--max-backtracks"}
EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as 'error: ...' with exit code 2."""


def _option(name: str) -> str:
    return OPTION_NAMES.get(name, "--" + name.replace("_", "-"))


def _parser_of(knob: Knob) -> Any:
    """The knob's own parser as an argparse type (its message on a bad value)."""

    def parse(text: str) -> Any:
        try:
            return knob.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = knob.kind  # argparse names the type in its messages
    return parse


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _option_help(knob: Knob, default: Any) -> str:
    """The knob's described help with its default, %-escaped for argparse."""
    return f"{knob.describe()} [default: {_shown(default)}]".replace("%", "%%")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per knob, typed, checked and documented by its schema (trpo.knobs)."""
    group = parser.add_argument_group("TRPO knobs (defaults: the preset if given, else these)")
    defaults = TRPOConfig()  # every knob at its default
    for name, knob in knob_schema().items():
        help_text = _option_help(knob, getattr(defaults, name))
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help_text}
        if knob.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif knob.kind == "choice":
            kwargs["choices"] = knob.choices
        else:
            kwargs["type"] = _parser_of(knob)
        group.add_argument(_option(name), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trpo", description="Trust Region Policy Optimization workbench."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a policy (or resume a run)")
    train.add_argument(
        "--preset",
        metavar="ENV_ID",
        help=f"start from rl-zoo's hyperparameters for one of: {', '.join(sorted(PRESETS))}",
    )
    train.add_argument(
        "--runs-dir",
        default=os.environ.get("TRPO_RUNS_DIR", DEFAULT_RUNS_DIR),
        help="where run folders go [$TRPO_RUNS_DIR, else ./runs]",
    )
    train.add_argument("--name", help="a display name for the run (metadata only)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its checkpoint")
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar or per-iteration lines"
    )
    _add_config_options(train)

    evaluate = commands.add_parser("eval", help="evaluate a run's policy deterministically")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=10, help="episodes to run [10]")
    evaluate.add_argument("--seed", type=int, default=10_000, help="seed of the first episode")
    evaluate.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="cut an episode after this many steps [the env's time limit, else 10,000]",
    )
    evaluate.add_argument("--json", action="store_true", help="print a JSON object")

    listing = commands.add_parser("list", help="list the runs in a runs directory")
    listing.add_argument("--runs-dir", default=os.environ.get("TRPO_RUNS_DIR", DEFAULT_RUNS_DIR))

    _add_sweep_parser(commands)
    return parser


def config_from_args(args: argparse.Namespace) -> TRPOConfig:
    """Preset (if any), then every option given on the command line; validated."""
    overrides = {
        f.name: getattr(args, f.name)
        for f in fields(TRPOConfig)
        if getattr(args, f.name, None) is not None
    }
    if args.preset:
        return preset(args.preset, **overrides)
    return TRPOConfig(**overrides)


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trpo.session import TrainingSession, use_torch_threads

    if args.resume:
        given = [f.name for f in fields(TRPOConfig) if getattr(args, f.name) is not None]
        if args.preset or set(given) - {"total_steps"}:
            raise CliError("--resume takes only --total-steps (the run keeps its own config)")
        session = TrainingSession.resume(args.resume, total_steps=args.total_steps)
        session.run_folder.clear_stop_request()  # an explicit resume overrides an old request
        if session.trainer.env_steps >= session.config.total_steps:
            done = session.trainer.env_steps
            session.trainer.close()
            raise CliError(
                f"this run has already trained its {done:,} steps; to continue it, pass "
                f"--total-steps with more than {done:,}"
            )
    else:
        config = config_from_args(args)
        session = TrainingSession.new(config, RunStore(args.runs_dir), name=args.name)
    config = session.config
    use_torch_threads(config)  # this process is the CLI's: its threads are the run's
    print(f"run folder: {session.run_folder.path}", flush=True)
    bar = tqdm(
        total=max(config.planned_steps, session.trainer.env_steps),
        initial=session.trainer.env_steps,
        unit="step",
        unit_scale=True,
        disable=args.quiet,
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def show(record: Any) -> None:
        bar.update(record.env_steps - bar.n)
        ret = "n/a" if record.return_mean is None else f"{record.return_mean:.1f}"
        bar.set_postfix_str(f"return {ret}, it {record.iteration}")
        if not args.quiet:
            bar.write(record.summary())

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        bar.write(
            "stopping after the current iteration, with a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    main_thread = threading.current_thread() is threading.main_thread()
    handled = (signal.SIGINT, signal.SIGTERM) if main_thread else ()
    previous = {number: signal.signal(number, on_signal) for number in handled}
    try:
        state = session.run(stop, on_record=show)
    except KeyboardInterrupt:
        bar.close()
        print(f"aborted; run folder: {session.run_folder.path}", file=sys.stderr)
        return 130
    except Exception:
        bar.close()
        error = session.run_folder.status().get("error") or "unknown error"
        print(f"error: run failed: {error}", file=sys.stderr)
        print(f"run folder: {session.run_folder.path}", file=sys.stderr)
        return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    bar.close()
    print(f"{state}: {session.trainer.iteration} iterations, {session.trainer.env_steps:,} steps")
    print(f"run folder: {session.run_folder.path}")
    if state == "stopped":
        print(f"resume with: python -m trpo train --resume {session.run_folder.path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from trpo.evaluate import evaluate

    if args.episodes < 1:
        raise CliError(f"--episodes must be at least 1, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise CliError(f"--max-steps must be at least 1, got {args.max_steps}")
    result = evaluate(
        args.run_dir, episodes=args.episodes, seed=args.seed, max_steps=args.max_steps
    )
    cut = sum(result.cut)
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(args.run_dir),
                    "episodes": len(result.returns),
                    "mean_return": result.mean_return,
                    "std_return": result.std_return,
                    "returns": result.returns,
                    "lengths": result.lengths,
                    "cut": result.cut,
                    "max_steps": result.max_steps,
                }
            )
        )
    else:
        print(
            f"{len(result.returns)} episodes: mean return {result.mean_return:.2f} "
            f"+/- {result.std_return:.2f} (min {min(result.returns):.2f}, "
            f"max {max(result.returns):.2f})"
        )
        if cut:
            print(
                f"{cut} of {len(result.returns)} episodes cut at the step cap of "
                f"{result.max_steps:,} steps (--max-steps)"
            )
    return 0


def _list(args: argparse.Namespace) -> int:
    runs = RunStore(args.runs_dir).runs()
    if not runs:
        print(f"no runs in {args.runs_dir}")
        return 0
    header = (
        f"{'run':<40} {'env':<16} {'state':<9} {'iter':>5} {'steps':>10} "
        f"{'last':>9} {'best':>9}  name"
    )
    print(header)
    for run in runs:
        try:
            config = run.config()
        except ConfigError as exc:
            print(f"{run.id:<40} (unreadable config: {exc})")
            continue
        frame = load_metrics(run.path)
        returns = frame["return_mean"].dropna()
        last = f"{returns.iloc[-1]:.1f}" if len(returns) else "-"
        best = f"{returns.max():.1f}" if len(returns) else "-"
        iteration = int(frame["iteration"].iloc[-1]) if len(frame) else 0
        steps = int(frame["env_steps"].iloc[-1]) if len(frame) else 0
        print(
            f"{run.id:<40} {config.env_id:<16} {run.status().get('state', '?'):<9} "
            f"{iteration:>5} {steps:>10,} {last:>9} {best:>9}  {run.meta().get('name', '')}"
        )
    return 0


# --- sweep ---------------------------------------------------------------------------------

SWEEP_EPILOG = """\
Each knob option takes one value (used by every trial), a comma-separated list of values to
sweep (every combination is a configuration), or, for numeric knobs with --samples, a range
LOW:HIGH (uniform) or LOW:HIGH:log (log-uniform). Booleans: true,false. --hidden-sizes takes
alternatives separated by '/': 64,64/128,128. Every configuration runs once per seed.

examples:
  python -m trpo sweep --env CartPole-v1 --delta 0.005,0.01,0.02 --alpha 0.5,0.8 --seeds 0,1,2
  python -m trpo sweep --preset CartPole-v1 --delta 0.001:0.05:log --max-backtracks 5:20 \\
      --samples 8 --seeds 0,1 --workers 2
  python -m trpo sweep --resume SWEEP_ID          # run the trials that did not finish
"""


def _add_sweep_parser(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a hyperparameter sweep (grid or random search) over several seeds",
        description="Run every configuration of a grid (or a random sample of it) with every "
        "seed, in parallel; each trial is an ordinary run in the runs directory, tagged with "
        "the sweep id.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--seeds", metavar="S[,S...]", help="seeds of every configuration [0]")
    sweep.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="random search: draw N configurations instead of running the whole grid",
    )
    sweep.add_argument(
        "--sample-seed", type=int, metavar="S", help="seed of the random search's draws [0]"
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
    sweep.add_argument(
        "--preset",
        metavar="ENV_ID",
        help=f"start from rl-zoo's hyperparameters for one of: {', '.join(sorted(PRESETS))}",
    )
    sweep.add_argument(
        "--runs-dir",
        default=os.environ.get("TRPO_RUNS_DIR", DEFAULT_RUNS_DIR),
        help="where run folders go [$TRPO_RUNS_DIR, else ./runs]",
    )
    sweep.add_argument("--name", help="a display name for the sweep")
    sweep.add_argument(
        "--resume", metavar="SWEEP_ID", help="continue a sweep: run its unfinished trials"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar or trial lines")
    group = sweep.add_argument_group(
        "TRPO knobs: V (every trial), V1,V2,... (swept) or LOW:HIGH[:log] (with --samples)"
    )
    defaults = TRPOConfig()  # every knob at its default
    for name, knob in knob_schema().items():
        if name == "seed":
            continue
        help_text = _option_help(knob, getattr(defaults, name))
        group.add_argument(_option(name), dest=name, default=None, metavar="V", help=help_text)


def knob_value(name: str, text: str) -> Any:
    """One value of a knob from the command line, by the knob's own parser (trpo.knobs)."""
    try:
        return knob_schema()[name].parse(text)
    except ValueError as exc:
        raise CliError(f"{_option(name)}: {exc}") from None


def knob_values(name: str, text: str) -> Any:
    """The values of knob `name` written as on the command line: 'V1,V2,...' -> a list
    (hidden_sizes: alternatives separated by '/'), 'LOW:HIGH[:log]' -> a KnobRange for random
    search. CliError names the option and the bad value."""
    from trpo.sweep import KNOBS, KnobRange

    default = KNOBS[name]
    option = _option(name)
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


def sweep_spec_from_args(args: argparse.Namespace) -> Any:
    """The SweepSpec of `sweep` options: one value sets the knob for every trial, several (or
    a range) sweep it; validated (ConfigError / CliError)."""
    from trpo.sweep import SweepSpec

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
    base = preset(args.preset, **fixed) if args.preset else TRPOConfig(**fixed)
    return SweepSpec(
        base=base,
        grid=grid,
        seeds=_seed_list(args.seeds),
        samples=args.samples,
        sample_seed=0 if args.sample_seed is None else args.sample_seed,
        name=args.name or "",
    )


def _sweep(args: argparse.Namespace) -> int:
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
    if args.ray_address and args.backend != "ray":
        raise CliError("--ray-address needs --backend ray")
    try:
        if args.resume:
            given = [f.name for f in fields(TRPOConfig) if getattr(args, f.name, None) is not None]
            extra = [args.preset, args.seeds, args.samples, args.sample_seed, args.name]
            if given or any(v is not None for v in extra):
                raise CliError(
                    "--resume takes only --workers, --backend, --ray-address and --runs-dir "
                    "(the sweep keeps its own spec)"
                )
            sweep_id = args.resume
            load_sweep(args.runs_dir, sweep_id)
        else:
            sweep_id = create_sweep(sweep_spec_from_args(args), args.runs_dir, args.backend)
        info = load_sweep(args.runs_dir, sweep_id)
    except SweepError as exc:
        raise CliError(str(exc)) from exc

    spec = info.spec
    all_trials = info.trials
    n_configs = len({t.config_id for t in all_trials})
    print(
        f"sweep {sweep_id}: {len(all_trials)} trials ({n_configs} configurations x "
        f"{len(spec.seeds)} seeds), backend {args.backend}, workers {args.workers or 'auto'}",
        flush=True,
    )
    print(f"sweep folder: {info.path}", flush=True)
    bar = tqdm(
        total=len(all_trials),
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
    print()
    print(format_results(sweep_results(args.runs_dir, sweep_id), spec.knob_names))
    print()
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    print(f"sweep {sweep_id}: {counts} ({result.wall_time_s:.1f} s)")
    print(f"sweep folder: {info.path}")
    if not result.all_finished:
        resume = f"python -m trpo sweep --resume {sweep_id}"
        if args.runs_dir != DEFAULT_RUNS_DIR:
            resume += f" --runs-dir {args.runs_dir}"
        print(f"resume with: {resume}")
    if result.stopped:
        return 130
    return 0 if result.all_finished else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": _train, "eval": _eval, "list": _list, "sweep": _sweep}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print("error: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, EnvError, RunStoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TrainingError as exc:  # e.g. the env failed during the normalisation warm-up
        print(f"error: {exc}", file=sys.stderr)
        return 1
