"""`python -m trpo export RUN --format onnx|tensorboard|html --out PATH`: take a run away
(trpo.export); a bad run, format or --out is one clear message and exit code 2."""

from __future__ import annotations

import argparse
import os
from typing import Any

from trpo.cli_options import CliError, run_folder
from trpo.store import DEFAULT_RUNS_DIR

EXPORT_EPILOG = """\
formats:
  onnx         the deterministic policy, observation normaliser included, for ONNX Runtime:
               input "obs" [batch, obs_dim], output "action" (what env.step takes)
  tensorboard  every scalar of every record as event files in OUT/<run id>/
               (open with: tensorboard --logdir OUT)
  html         one self-contained report (summary, charts, config) that opens offline

examples:
  python -m trpo export runs/RUN_ID --format onnx --out policy.onnx
  python -m trpo export RUN_ID --format tensorboard --out tb
  python -m trpo export RUN_ID --format html --out report.html
"""


def add_export_parser(commands: Any) -> None:
    from trpo.export import FORMATS

    export = commands.add_parser(
        "export",
        help="export a run: its policy as ONNX, its records for TensorBoard, an HTML report",
        description="Take a run away: the policy as an ONNX model, the records as TensorBoard "
        "event files, or the whole run as one HTML file.",
        epilog=EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("run_dir", metavar="RUN", help="a run folder, or a run id in --runs-dir")
    export.add_argument(
        "--format", required=True, choices=list(FORMATS), help="what to write (see below)"
    )
    export.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="; ".join(f"{fmt}: {target}" for fmt, target in FORMATS.items()),
    )
    export.add_argument(
        "--runs-dir",
        default=os.environ.get("TRPO_RUNS_DIR", DEFAULT_RUNS_DIR),
        help="where a run id is looked up [$TRPO_RUNS_DIR, else ./runs]",
    )


def run_export_command(args: argparse.Namespace) -> int:
    from trpo.export import ExportError, export_run

    run_dir = run_folder(args.run_dir, args.runs_dir)
    if not os.path.isdir(run_dir):
        raise CliError(f"no run folder {run_dir} (nor a run of that id in {args.runs_dir})")
    try:
        written = export_run(run_dir, args.format, args.out)
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {written}")
    if args.format == "tensorboard":
        print(f"open it with: tensorboard --logdir {written.parent}")
    return 0
