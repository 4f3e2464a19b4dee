"""Running a sweep: the driver (this process's bookkeeping of one launch: run folders, stop
requests, progress events, outcomes), `run_sweep` (blocks until the sweep ends or is stopped)
and `start_sweep` (the same in a background thread). The trials themselves run on a backend
(trpo.sweep.backend), which calls the driver as they start and end."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trpo.config import ConfigError
from trpo.ids import utc_now
from trpo.store import Run, RunStore
from trpo.sweep.backend import WorkerInit, check_backend, check_launch, get_backend
from trpo.sweep.spec import SweepError, SweepSpec, Trial, is_int
from trpo.sweep.storage import (
    STOP_FILE,
    SweepInfo,
    create_sweep,
    driver_alive,
    driver_lock,
    load_sweep,
    record_launch,
    sweep_runs,
)

log = logging.getLogger("trpo.sweep")

MAX_WORKERS = 256
TRIAL_STATES = ("pending", "running", "finished", "stopped", "failed", "interrupted")

OnProgress = Callable[["TrialEvent"], None]


@dataclass(frozen=True)
class TrialEvent:
    """Passed to on_progress: a trial started ('started') or ended ('ended')."""

    kind: str
    trial: Trial
    run_dir: str
    state: str  # running / finished / stopped / failed
    error: str | None
    done: int  # trials ended so far, finished trials skipped by a resume included
    total: int


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: str
    run_dir: str | None
    state: str  # finished / stopped / failed / pending (never started)
    error: str | None = None
    skipped: bool = False  # finished before this launch (resume)


@dataclass
class SweepResult:
    """What one launch of a sweep did."""

    sweep_id: str
    sweep_dir: Path
    backend: str
    workers: int
    outcomes: dict[str, TrialOutcome]
    stopped: bool
    wall_time_s: float

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.state for o in self.outcomes.values()))

    @property
    def all_finished(self) -> bool:
        return all(o.state == "finished" for o in self.outcomes.values())


@dataclass
class Job:
    """One trial of this launch: its run (None until it first starts) and how often no pool
    worker could start it."""

    trial: Trial
    run: Run | None
    attempts: int = 0


class Driver:
    """The bookkeeping both backends share: run folders, stop requests, events, outcomes."""

    def __init__(
        self,
        runs_dir: Path,
        info: SweepInfo,
        stop_event: threading.Event | None,
        on_progress: OnProgress | None,
        total: int,
    ) -> None:
        self.store = RunStore(runs_dir)
        self.info = info
        self.stop_event = stop_event
        self.on_progress = on_progress
        self.total = total
        self.done = 0
        self.outcomes: dict[str, TrialOutcome] = {}
        self.stopping = False

    @property
    def stop_path(self) -> Path:
        return self.info.path / STOP_FILE

    def stop_requested(self) -> bool:
        """True once a stop was asked (event or STOP file); the STOP file is then written so
        that the workers see it."""
        if not self.stopping:
            if self.stop_event is not None and self.stop_event.is_set():
                with contextlib.suppress(OSError):
                    self.stop_path.write_text(utc_now() + "\n")
                self.stopping = True
            elif self.stop_path.exists():
                self.stopping = True
        return self.stopping

    def start(self, job: Job) -> Run:
        """The trial's run folder (created on first start), marked running by this process."""
        trial = job.trial
        if job.run is None:
            tags = {
                "sweep": self.info.sweep_id,
                "trial": trial.trial_id,
                "config_id": trial.config_id,
                "seed": trial.seed,
                "knobs": trial.knobs,
            }
            name = f"{self.info.name or self.info.sweep_id} {trial.label()}"
            job.run = self.store.create(trial.config, name=name, tags=tags)
        else:
            job.run.set_status("running", iteration=job.run.status().get("iteration"))
        self._emit("started", job, "running", None)
        return job.run

    def finish(self, job: Job, state: str, error: str | None) -> None:
        self.done += 1
        run_dir = str(job.run.path) if job.run is not None else None
        self.outcomes[job.trial.trial_id] = TrialOutcome(job.trial.trial_id, run_dir, state, error)
        self._emit("ended", job, state, error)

    def _emit(self, kind: str, job: Job, state: str, error: str | None) -> None:
        if self.on_progress is None:
            return
        run_dir = str(job.run.path) if job.run is not None else ""
        event = TrialEvent(kind, job.trial, run_dir, state, error, self.done, self.total)
        try:
            self.on_progress(event)
        except Exception:
            log.exception("on_progress raised (ignored)")


def run_sweep(
    spec: SweepSpec | None,
    runs_dir: str | os.PathLike[str],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    stop_event: threading.Event | None = None,
    on_progress: OnProgress | None = None,
    resume_sweep_id: str | None = None,
    worker_init: WorkerInit | None = None,
) -> SweepResult:
    """Run a sweep to the end (or until stopped) and return what happened; blocks, callable
    from any thread.

    spec: a new sweep (its folder is created), or None with resume_sweep_id to continue a
    stored one: finished trials are skipped, stopped/failed/interrupted ones continue from
    their checkpoints, never-started ones start. workers: parallel trials (default: the core
    count; for Ray, the cluster's CPUs). stop_event: set it to stop every trial after its
    current iteration (stop_sweep does the same from anywhere). worker_init: a picklable,
    importable function run in every worker (and here) before training, e.g. to register
    extra Gymnasium envs. Bad specs, values or env ids raise ConfigError before anything runs.
    """
    started = time.monotonic()
    check_backend(backend)
    if workers is not None and (not is_int(workers) or not 1 <= workers <= MAX_WORKERS):
        raise ConfigError(
            [f"workers must be a whole number from 1 to {MAX_WORKERS}, got {workers!r}"]
        )
    if ray_address is not None and backend != "ray":
        raise ConfigError(["ray_address is only used with backend 'ray'"])
    if worker_init is not None:
        worker_init()
    runs_dir = Path(runs_dir)
    if resume_sweep_id is not None:
        info = load_sweep(runs_dir, resume_sweep_id)
        if spec is not None and spec.to_dict() != info.spec.to_dict():
            raise ConfigError([f"the spec differs from the one stored for {resume_sweep_id}"])
        spec = info.spec
        check_launch(spec, backend)
    elif spec is None:
        raise ConfigError(["give a sweep spec, or resume_sweep_id to continue a stored sweep"])
    else:
        info = load_sweep(runs_dir, create_sweep(spec, runs_dir, backend))

    all_trials = info.trials
    with driver_lock(info.path, backend, workers):
        with contextlib.suppress(FileNotFoundError):
            (info.path / STOP_FILE).unlink()
        launch = {"started": utc_now(), "backend": backend, "workers": workers, "pid": os.getpid()}
        record_launch(info.path, launch)
        driver = Driver(runs_dir, info, stop_event, on_progress, len(all_trials))
        existing = sweep_runs(runs_dir, info.sweep_id)
        jobs: list[Job] = []
        for trial in all_trials:
            run = existing.get(trial.trial_id)
            if run is not None and run.state() == "finished":
                driver.outcomes[trial.trial_id] = TrialOutcome(
                    trial.trial_id, str(run.path), "finished", skipped=True
                )
                driver.done += 1
            else:
                jobs.append(Job(trial, run))
        used = 0
        try:
            if jobs:
                used = get_backend(backend).run(driver, jobs, workers, ray_address, worker_init)
        finally:
            for job in jobs:  # never started (stopped before their turn)
                if job.trial.trial_id not in driver.outcomes:
                    run_dir = str(job.run.path) if job.run is not None else None
                    state = job.run.state() if job.run is not None else "pending"
                    driver.outcomes[job.trial.trial_id] = TrialOutcome(
                        job.trial.trial_id, run_dir, state
                    )
            result = SweepResult(
                info.sweep_id,
                info.path,
                backend,
                used,
                {t.trial_id: driver.outcomes[t.trial_id] for t in all_trials},
                driver.stopping,
                time.monotonic() - started,
            )
            launch.update(
                ended=utc_now(), workers=used, outcome=result.counts, stopped=result.stopped
            )
            with contextlib.suppress(SweepError):
                record_launch(info.path, launch)
    return result


# --- background launch -----------------------------------------------------------------------


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
