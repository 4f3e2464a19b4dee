"""A sweep launched in a background thread of this process (`start_sweep`, its `SweepHandle`),
e.g. from a Streamlit server: the checks and the sweep folder come first, in the caller's thread,
then trpo.sweep.driver.run_sweep runs in a daemon thread."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from trpo.config import ConfigError
from trpo.sweep.backend import WorkerInit, check_backend, check_launch
from trpo.sweep.driver import OnProgress, SweepResult, run_sweep
from trpo.sweep.spec import SweepError, SweepSpec
from trpo.sweep.storage import create_sweep, driver_alive, load_sweep

log = logging.getLogger("trpo.sweep")


@dataclass
class SweepHandle:
    """A sweep running in a background thread of this process."""

    sweep_id: str
    runs_dir: Path
    thread: threading.Thread
    stop_event: threading.Event
    result: SweepResult | None = None
    error: str | None = None

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 0.0) -> bool:
        """Ask every trial to stop; wait up to timeout seconds. True if the sweep has ended."""
        self.stop_event.set()
        if timeout > 0:
            self.thread.join(timeout)
        return not self.alive


def start_sweep(
    spec: SweepSpec | None,
    runs_dir: str | os.PathLike[str],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    resume_sweep_id: str | None = None,
    on_progress: OnProgress | None = None,
    worker_init: WorkerInit | None = None,
) -> SweepHandle:
    """run_sweep in a daemon thread. The spec, env ids and backend are checked and the sweep
    folder is created before this returns (ConfigError / SweepError here, not in the thread),
    so handle.sweep_id can be shown at once; progress is then read from the store."""
    check_backend(backend)
    if worker_init is not None:
        worker_init()
    if resume_sweep_id is None:
        if spec is None:
            raise ConfigError(["give a sweep spec, or resume_sweep_id to continue a stored sweep"])
        resume_sweep_id = create_sweep(spec, runs_dir, backend)
    else:
        info = load_sweep(runs_dir, resume_sweep_id)
        check_launch(info.spec, backend)
        if driver_alive(info.path):
            raise SweepError(f"sweep {resume_sweep_id} is already running")
    stop = threading.Event()
    handle = SweepHandle(resume_sweep_id, Path(runs_dir), threading.Thread(), stop)

    def target() -> None:
        try:
            handle.result = run_sweep(
                None,
                runs_dir,
                workers=workers,
                backend=backend,
                ray_address=ray_address,
                stop_event=stop,
                on_progress=on_progress,
                resume_sweep_id=handle.sweep_id,
                worker_init=worker_init,
            )
        except BaseException as exc:
            handle.error = f"{type(exc).__name__}: {exc}"
            log.exception("sweep %s failed", handle.sweep_id)

    handle.thread = threading.Thread(
        target=target, name=f"trpo-sweep-{resume_sweep_id}", daemon=True
    )
    handle.thread.start()
    return handle
