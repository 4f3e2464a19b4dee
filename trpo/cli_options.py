"""Command-line options shared by `train` and `sweep`: one option per TRPOConfig knob, typed,
checked and documented by the knob's schema (trpo.knobs), and the user-error type."""

from __future__ import annotations

import argparse
import os
from typing import Any

from trpo.config import TRPOConfig, knob_schema
from trpo.knobs import Knob
from trpo.presets import PRESETS
from trpo.store import DEFAULT_RUNS_DIR

# Short, familiar option names for the knobs people type most.
OPTION_NAMES = {"env_id": "--env", "max_backtracks": "--max-backtracks"}
EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as 'error: ...' with exit code 2."""


def option_name(name: str) -> str:
    return OPTION_NAMES.get(name, "--" + name.replace("_", "-"))


def parser_of(knob: Knob) -> Any:
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


def option_help(knob: Knob, default: Any) -> str:
    """The knob's described help with its default, %-escaped for argparse."""
    return f"{knob.describe()} [default: {_shown(default)}]".replace("%", "%%")


def run_folder(text: str, runs_dir: str) -> str:
    """A run given as a folder path, or as a run id (what `list` prints) inside runs_dir."""
    if not os.path.isdir(text) and os.path.isfile(os.path.join(runs_dir, text, "config.json")):
        return os.path.join(runs_dir, text)
    return text


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per knob, typed, checked and documented by its schema (trpo.knobs)."""
    group = parser.add_argument_group("TRPO knobs (defaults: the preset if given, else these)")
    defaults = TRPOConfig()  # every knob at its default
    for name, knob in knob_schema().items():
        help_text = option_help(knob, getattr(defaults, name))
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help_text}
        if knob.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif knob.kind == "choice":
            kwargs["choices"] = knob.choices
        else:
            kwargs["type"] = parser_of(knob)
        group.add_argument(option_name(name), **kwargs)


def add_preset_and_runs_dir(parser: argparse.ArgumentParser) -> None:
    """--preset (rl-zoo's values for an env) and --runs-dir ($TRPO_RUNS_DIR, else ./runs)."""
    parser.add_argument(
        "--preset",
        metavar="ENV_ID",
        help=f"start from rl-zoo's hyperparameters for one of: {', '.join(sorted(PRESETS))}",
    )
    parser.add_argument(
        "--runs-dir",
        default=os.environ.get("TRPO_RUNS_DIR", DEFAULT_RUNS_DIR),
        help="where run folders go [$TRPO_RUNS_DIR, else ./runs]",
    )
