"""Command line: `python -m trpo train | eval | list | sweep | export`.

Every config knob is an option of `train` (generated from TRPOConfig's fields, with their help).
Bad options or bad values print one clear message and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from trpo.cli_export import add_export_parser, run_export_command
from trpo.cli_options import (
    EXIT_USAGE,
    CliError,
    add_config_options,
    add_preset_and_runs_dir,
    run_folder,
)
from trpo.cli_sweep import add_sweep_parser, run_sweep_command
from trpo.config import ConfigError, TRPOConfig
from trpo.envs import EnvError
from trpo.presets import preset
from trpo.store import DEFAULT_RUNS_DIR, RunStore, RunStoreError, load_metrics
from trpo.training_errors import TrainingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trpo", description="Trust Region Policy Optimization workbench."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a policy (or resume a run)")
    add_preset_and_runs_dir(train)
    train.add_argument("--name", help="a display name for the run (metadata only)")
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue this run (a folder, or a run id in --runs-dir) from its checkpoint",
    )
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar or per-iteration lines"
    )
    add_config_options(train)

    evaluate = commands.add_parser("eval", help="evaluate a run's policy deterministically")
    evaluate.add_argument("run_dir", metavar="RUN", help="a run folder, or a run id in --runs-dir")
    evaluate.add_argument(
        "--runs-dir",
        default=os.environ.get("TRPO_RUNS_DIR", DEFAULT_RUNS_DIR),
        help="where a run id is looked up [$TRPO_RUNS_DIR, else ./runs]",
    )
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

    add_sweep_parser(commands)
    add_export_parser(commands)
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
        session = TrainingSession.resume(
            run_folder(args.resume, args.runs_dir), total_steps=args.total_steps
        )
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
        session = TrainingSession.new(
            config, RunStore(args.runs_dir), name=args.name, launcher="CLI"
        )
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
    run_dir = run_folder(args.run_dir, args.runs_dir)
    result = evaluate(
        run_dir,
        episodes=args.episodes,
        seed=args.seed,
        max_steps=args.max_steps,
    )
    cut = sum(result.cut)
    if args.json:
        print(
            json.dumps(
                {
                    "run_dir": str(run_dir),
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
    from trpo.analysis import shown_name  # with pandas: only when listing, never when training

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
            f"{iteration:>5} {steps:>10,} {last:>9} {best:>9}  {shown_name(run.meta())}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "train": _train,
        "eval": _eval,
        "list": _list,
        "sweep": run_sweep_command,
        "export": run_export_command,
    }
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
