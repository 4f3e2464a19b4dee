"""One trial in a worker process (a pool worker or a Ray worker): train its run folder until it
is done or a stop is asked. Both backends run this; it knows nothing of the driver."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from trpo.record import IterationRecord
from trpo.store import open_run

log = logging.getLogger("trpo.sweep")

STOP_POLL_S = 0.25  # how often a trial looks for a stop request


def train_trial(
    run_dir: str,
    should_stop: Callable[[], bool],
    on_record: Callable[[IterationRecord], None] | None = None,
    poll_s: float = STOP_POLL_S,
) -> tuple[str, str | None]:
    """Train one trial's run folder (resume from its checkpoint, or from scratch) until done or
    should_stop() says so (polled by a watcher thread). Returns (state, error); an exception
    is returned as ('failed', message) and the run is marked failed."""
    from trpo.session import TrainingSession, use_torch_threads

    run = open_run(run_dir)
    run.set_status("running", iteration=run.status().get("iteration"))  # claimed by this pid
    stop, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(poll_s):
            try:
                if should_stop():
                    stop.set()
                    return
            except Exception:  # a stop check that fails (e.g. a lost Ray actor): keep going
                log.debug("stop check failed", exc_info=True)

    watcher = threading.Thread(target=watch, name="trpo-sweep-stop", daemon=True)
    watcher.start()
    try:
        try:
            session = TrainingSession.resume(run_dir)
        except Exception as exc:
            error = f"could not start: {type(exc).__name__}: {exc}"
            run.set_status("failed", error=error, iteration=0)
            return "failed", error
        use_torch_threads(session.config)  # a worker process: the trial's thread count
        try:
            return session.run(stop, on_record), None
        except Exception as exc:
            return "failed", str(run.status().get("error") or f"{type(exc).__name__}: {exc}")
    finally:
        done.set()
