"""Command line: `python -m trpo train | eval | list`.

Every config knob is an option of `train` (generated from TRPOConfig's fields, with their help).
Bad options or bad values print one clear message and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from dataclasses import MISSING, fields
from typing import Any

from trpo.config import PRESETS, ConfigError, TRPOConfig, preset
from trpo.envs import EnvError
from trpo.store import DEFAULT_RUNS_DIR, RunStore, RunStoreError, load_metrics

# Short, familiar option names for the knobs people type most.
OPTION_NAMES = {"env_id": "--env", "max_backtracks": "--max-backtracks"}
EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as 'error: ...' with exit code 2."""


def _option(name: str) -> str:
    return OPTION_NAMES.get(name, "--" + name.replace("_", "-"))


def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 64,64, got {text!r}"
        ) from exc


def _finite_float(text: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TRPO knobs (defaults: the preset if given, else these)")
    for f in fields(TRPOConfig):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata.get('help', '')} [default: {default}]".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif isinstance(default, int):
            kwargs["type"] = int
        elif isinstance(default, float):
            kwargs["type"] = _finite_float
        elif isinstance(default, tuple):
            kwargs["type"] = _hidden_sizes
        if f.name == "max_backtracks":
            kwargs["help"] = "K: " + kwargs["help"]
        group.add_argument(_option(f.name), **kwargs)


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
    train.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR, help="where run folders go")
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
    evaluate.add_argument("--json", action="store_true", help="print a JSON object")

    listing = commands.add_parser("list", help="list the runs in a runs directory")
    listing.add_argument("--runs-dir", default=DEFAULT_RUNS_DIR)
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

    from trpo.session import TrainingSession

    if args.resume:
        given = [f.name for f in fields(TRPOConfig) if getattr(args, f.name) is not None]
        if args.preset or set(given) - {"total_steps"}:
            raise CliError("--resume takes only --total-steps (the run keeps its own config)")
        session = TrainingSession.resume(args.resume, total_steps=args.total_steps)
    else:
        config = config_from_args(args)
        session = TrainingSession.new(config, RunStore(args.runs_dir), name=args.name)
    config = session.config
    print(f"run folder: {session.run_folder.path}", flush=True)
    bar = tqdm(
        total=config.total_steps,
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
    try:
        state = session.run(stop, on_record=show)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted; run folder: {session.run_folder.path}", file=sys.stderr)
        return 130
    except Exception as exc:
        bar.close()
        print(f"error: run failed at {exc}", file=sys.stderr)
        print(f"run folder: {session.run_folder.path}", file=sys.stderr)
        return 1
    bar.close()
    print(f"{state}: {session.trainer.iteration} iterations, {session.trainer.env_steps:,} steps")
    print(f"run folder: {session.run_folder.path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from trpo.evaluate import evaluate

    if args.episodes < 1:
        raise CliError(f"--episodes must be at least 1, got {args.episodes}")
    result = evaluate(args.run_dir, episodes=args.episodes, seed=args.seed)
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
                }
            )
        )
    else:
        print(
            f"{len(result.returns)} episodes: mean return {result.mean_return:.2f} "
            f"+/- {result.std_return:.2f} (min {min(result.returns):.2f}, "
            f"max {max(result.returns):.2f})"
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": _train, "eval": _eval, "list": _list}
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
