"""A trainer in its own process: `python -m trpo.trainer_process RUN_DIR [--total-steps N]`.

The dashboard's registry (`trpo.background`) starts one of these per run, so training never
shares an interpreter lock with the web server. The process trains the existing run folder
from its checkpoint (from scratch when it has none) and writes everything through the run
store, so pages follow it exactly as they follow a CLI run.

Stopping: `Run.request_stop()` from any process, or SIGTERM / SIGINT; either way the run stops
after its current iteration with a checkpoint. The process runs in its own session, detached
from the server: when the server exits or is killed, the trainer goes on to the end of its
budget and marks the run finished (a new server finds it and can stop it). If the process dies
without writing a final state (SIGKILL, out of memory) the run's status still names its pid,
so the store reads it as 'interrupted', and the registry that started it marks it failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from trpo.store import TRAINER_LOG, Run

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def command(run_dir: str | os.PathLike[str], total_steps: int | None = None) -> list[str]:
    """The command line of a trainer process for run_dir."""
    cmd = [sys.executable, "-m", "trpo.trainer_process", str(Path(run_dir).resolve())]
    if total_steps is not None:
        cmd += ["--total-steps", str(total_steps)]
    return cmd


def spawn(run: Run, total_steps: int | None = None) -> subprocess.Popen[bytes]:
    """Start a detached trainer process for run (its output appended to trainer.log) and mark
    the run running under the new pid. Raises OSError if the process cannot be started."""
    env = dict(os.environ)
    # the child imports this very trpo package, wherever the server found it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    with open(run.path / TRAINER_LOG, "ab") as log:
        process = subprocess.Popen(
            command(run.path, total_steps),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C or the end of the server does not reach it
        )
    run.set_status("running", pid=process.pid, iteration=_iteration(run))
    return process


def _iteration(run: Run) -> int:
    status = run.status()
    value = status.get("iteration", 0)
    return value if isinstance(value, int) else 0


def log_tail(run: Run, lines: int = 1) -> str:
    """The last non-empty lines of the run's trainer.log ('' if none)."""
    try:
        text = (run.path / TRAINER_LOG).read_text(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trpo.trainer_process")
    parser.add_argument("run_dir")
    parser.add_argument("--total-steps", type=int, default=None)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {n: signal.signal(n, on_signal) for n in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _train(args.run_dir, args.total_steps, stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _train(run_dir: str, total_steps: int | None, stop: threading.Event) -> int:
    from trpo.session import TrainingSession, use_torch_threads

    run = Run(run_dir)
    try:
        session = TrainingSession.resume(run_dir, total_steps=total_steps)
    except Exception as exc:  # the run cannot start: say why in its status
        with contextlib.suppress(OSError):
            run.set_status("failed", error=f"could not start: {exc}", iteration=_iteration(run))
        print(f"error: could not start {run_dir}: {exc}", file=sys.stderr)
        return 1
    use_torch_threads(session.config)
    try:
        state = session.run(stop)
    except Exception as exc:  # the session has marked the run failed
        print(f"error: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{state}: {session.trainer.iteration} iterations, {session.trainer.env_steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
