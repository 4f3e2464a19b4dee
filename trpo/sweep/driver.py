"""Running a sweep: the driver (this process's bookkeeping of one launch: the study it asks for
trials, run folders, stop requests, pruning, progress events, outcomes), `run_sweep` (blocks
until the sweep ends or is stopped). The
trials themselves run on a backend (trpo.sweep.backend), which takes its jobs from the driver
(`next_job`), lets it follow them (`poll`) and calls it as they start and end. The background
launch (`start_sweep`, `SweepHandle`) is trpo.sweep.launch."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trpo.config import ConfigError
from trpo.ids import utc_now
from trpo.metrics_log import parse_lines
from trpo.store import METRICS, PRUNED, Run, RunStore
from trpo.sweep.backend import WorkerInit, check_backend, check_launch, get_backend
from trpo.sweep.job import Job
from trpo.sweep.search import Study, final_return_of
from trpo.sweep.spec import SweepError, SweepSpec, Trial, is_int
from trpo.sweep.storage import (
    STOP_FILE,
    SweepInfo,
    create_sweep,
    driver_lock,
    load_sweep,
    record_launch,
    sweep_runs,
)

log = logging.getLogger("trpo.sweep")

MAX_WORKERS = 256
TRIAL_STATES = ("pending", "running", "finished", "pruned", "stopped", "failed", "interrupted")
DONE_STATES = ("finished", "pruned")  # a trial in one of these is not run again

OnProgress = Callable[["TrialEvent"], None]


@dataclass(frozen=True)
class TrialEvent:
    """Passed to on_progress: a trial started ('started') or ended ('ended')."""

    kind: str
    trial: Trial
    run_dir: str
    state: str  # running / finished / pruned / stopped / failed
    error: str | None
    done: int  # trials ended so far, finished trials skipped by a resume included
    total: int


@dataclass(frozen=True)
class TrialOutcome:
    trial_id: str
    run_dir: str | None
    state: str  # finished / pruned / stopped / failed / pending (never started)
    error: str | None = None
    skipped: bool = False  # finished (or pruned) before this launch (resume)


@dataclass
class SweepResult:
    """What one launch of a sweep did."""

    sweep_id: str
    sweep_dir: Path
    backend: str
    workers: int
    outcomes: dict[str, TrialOutcome]  # the trials skipped, then those of this launch
    stopped: bool
    wall_time_s: float
    pending: int = 0  # trials not chosen yet (the sweep was stopped before their turn)

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(o.state for o in self.outcomes.values())
        if self.pending:
            counts["pending"] += self.pending
        return dict(counts)

    @property
    def all_finished(self) -> bool:
        """Every trial of the sweep ended finished or pruned."""
        return not self.pending and all(o.state in DONE_STATES for o in self.outcomes.values())


class Driver:
    """The bookkeeping both backends share: the study, run folders, stop requests, pruning,
    events, outcomes. Every call comes from the thread that runs the sweep."""

    def __init__(
        self,
        runs_dir: Path,
        info: SweepInfo,
        stop_event: threading.Event | None,
        on_progress: OnProgress | None,
        study: Study,
    ) -> None:
        self.store = RunStore(runs_dir)
        self.info = info
        self.study = study
        self.stop_event = stop_event
        self.on_progress = on_progress
        self.total = info.spec.n_trials
        self.done = 0
        self.outcomes: dict[str, TrialOutcome] = {}
        self.stopping = False
        self.queue: deque[Job] = deque()  # resumable trials, and trials of a broken pool
        self.jobs: list[Job] = []  # every job of this launch
        self.known: dict[str, Run] = {}  # trial id -> its run in the store

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

    # --- which trials run -----------------------------------------------------------------
    def prepare(self) -> None:
        """Match the study with the run store (a resume): trials whose runs finished or were
        pruned are done; the other trials held by an earlier launch of this machine (their runs
        stopped, failed or were interrupted, or never created) are queued to continue."""
        from optuna.trial import TrialState

        self.known = sweep_runs(self.store.root, self.info.sweep_id)
        for frozen in self.study.trials():
            trial_id = frozen.user_attrs.get("trial")
            run = self.known.get(trial_id) if isinstance(trial_id, str) else None
            if frozen.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
                if run is not None and run.state() in DONE_STATES:
                    self._skipped(trial_id, run)  # type: ignore[arg-type]
                continue
            if frozen.state != TrialState.RUNNING:
                continue  # WAITING: a queued seed, asked for in its turn
            if trial_id is None:  # being asked by another driver, or abandoned as it was
                continue  # (left alone: the grid sampler hands its point out again)
            host = frozen.user_attrs.get("host")
            if run is None and host not in (None, self.study.host):
                continue  # another machine's trial (a shared database)
            study_trial, trial = self.study.resume(frozen)
            if run is not None and self._settled(study_trial, trial, run):
                continue
            steps = frozen.intermediate_values
            self.queue.append(
                Job(trial, run, study_trial=study_trial, reported=max(steps, default=0))
            )

    def next_job(self) -> Job | None:
        """The next trial to run: a queued one, else the study's next (None: no more)."""
        while not self.queue:
            asked = self.study.ask()
            if asked is None:
                return None
            study_trial, trial = asked
            trial = self._legacy_id(study_trial, trial)
            run = self.known.get(trial.trial_id)  # a run made before the study knew it
            if run is not None and self._settled(study_trial, trial, run):
                continue
            self.queue.append(Job(trial, run, study_trial=study_trial))
        job = self.queue.popleft()
        self.jobs.append(job)
        return job

    def requeue(self, jobs: list[Job]) -> None:
        """Run these again, before anything else (a pool broke under them)."""
        for job in jobs:
            with contextlib.suppress(ValueError):
                self.jobs.remove(job)
        self.queue.extendleft(reversed(jobs))

    def remaining(self) -> int:
        """Trials this launch may still start."""
        return len(self.queue) + self.study.unasked()

    def _legacy_id(self, study_trial: Any, trial: Trial) -> Trial:
        """The id a sweep made before Optuna stored for this trial (sweep.json), if any."""
        key = (json.dumps(trial.knobs, sort_keys=True), trial.seed)
        stored = self.info.legacy_ids.get(key)
        if not stored or stored == trial.trial_id or stored in self.study.used_ids:
            return trial
        self.study.used_ids.add(stored)
        self._safely(study_trial.set_user_attr, "trial", stored)
        return Trial(stored, trial.config, trial.knobs, trial.number)

    def _settled(self, study_trial: Any, trial: Trial, run: Run) -> bool:
        """A trial whose run is already done (finished, or pruned): told to the study (a
        crash may have come between the two), counted as skipped."""
        state = run.state()
        if state not in DONE_STATES:
            return False
        self._tell(study_trial, run, state, None)
        self._skipped(trial.trial_id, run)
        return True

    def _skipped(self, trial_id: str, run: Run) -> None:
        self.outcomes[trial_id] = TrialOutcome(trial_id, str(run.path), run.state(), skipped=True)
        self.done += 1

    # --- following the trials ---------------------------------------------------------------
    def poll(self, jobs: Iterable[Job]) -> None:
        """Report the new iterations of running trials to the study; a trial the pruner
        judges hopeless is asked to stop (it ends 'pruned' after its current iteration)."""
        for job in jobs:
            if job.run is None or job.study_trial is None:
                continue
            if self._report(job) and not job.prune and self._prune(job):
                job.prune = True
                with contextlib.suppress(OSError):
                    job.run.request_stop(reason=PRUNED)

    def _report(self, job: Job) -> bool:
        """Report the log's records past job.reported (those with a mean return): True if any."""
        assert job.run is not None
        path = job.run.path / METRICS
        try:
            size = path.stat().st_size
            if size < job.offset:  # rewritten (a resume cut it back to its checkpoint)
                job.offset = 0
            if size == job.offset:
                return False
            with open(path, "rb") as handle:
                handle.seek(job.offset)
                data = handle.read(size - job.offset)
        except OSError:
            return False
        rows, _, end = parse_lines(data)
        job.offset += end
        new = False
        for row in rows:
            step, value = row.get("iteration"), row.get("return_mean")
            if not (is_int(step) and step > job.reported and isinstance(value, (int, float))):
                continue
            if self._safely(self.study.report, job.study_trial, step, float(value)):
                job.reported = step
                new = True
        return new

    def _prune(self, job: Job) -> bool:
        return bool(self._safely(self.study.should_prune, job.study_trial))

    def _tell(self, study_trial: Any, run: Run, state: str, error: str | None) -> None:
        """The run's end, told to the study: finished (its final return) or pruned end the
        Optuna trial; any other state leaves it running (resumable), with the reason."""
        if study_trial is None:
            return
        if state == "finished":
            self._safely(self.study.tell_finished, study_trial, final_return_of(run.rows()))
        elif state == PRUNED:
            self._safely(self.study.tell_pruned, study_trial)
        else:
            self._safely(self.study.note, study_trial, run_state=state, error=error)

    def _safely(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call to the study that must not end the sweep if the database fails: logged, and
        the next resume brings the study up to date from the run store."""
        try:
            return call(*args, **kwargs)
        except Exception:
            log.warning("the study could not be updated", exc_info=True)
            return None

    # --- starting and ending --------------------------------------------------------------
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
                "optuna_trial": trial.number,
            }
            name = f"{self.info.name or self.info.sweep_id} {trial.label()}"
            job.run = self.store.create(trial.config, name=name, tags=tags, launcher="sweep")
            self.known[trial.trial_id] = job.run
            if job.study_trial is not None:
                self._safely(self.study.note, job.study_trial, run_id=job.run.id)
        else:
            job.run.set_status("running", iteration=job.run.status().get("iteration"))
        self._emit("started", job, "running", None)
        return job.run

    def finish(self, job: Job, state: str, error: str | None) -> None:
        run = job.run
        if run is not None and job.study_trial is not None:
            self._report(job)  # the last iterations
            if job.prune:
                if state == "stopped":  # it stopped before it read why: the pruner's stop
                    run.set_status(PRUNED, iteration=run.status().get("iteration"))
                    state = PRUNED
                with contextlib.suppress(OSError):
                    run.clear_stop_request()
            self._tell(job.study_trial, run, state, error)
        self.done += 1
        run_dir = str(run.path) if run is not None else None
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

    with driver_lock(info.path, backend, workers):
        with contextlib.suppress(FileNotFoundError):
            (info.path / STOP_FILE).unlink()
        study = Study(spec, info.sweep_id, info.path)  # ConfigError if its storage fails
        launch = {"started": utc_now(), "backend": backend, "workers": workers, "pid": os.getpid()}
        record_launch(info.path, launch)
        driver = Driver(runs_dir, info, stop_event, on_progress, study)
        used = 0
        try:
            driver.prepare()
            if driver.remaining():
                used = get_backend(backend).run(driver, workers, ray_address, worker_init)
        finally:
            for job in [*driver.jobs, *driver.queue]:  # not ended (stopped before their turn)
                if job.trial.trial_id not in driver.outcomes:
                    run_dir = str(job.run.path) if job.run is not None else None
                    state = job.run.state() if job.run is not None else "pending"
                    driver.outcomes[job.trial.trial_id] = TrialOutcome(
                        job.trial.trial_id, run_dir, state
                    )
            pending = driver._safely(study.unasked) or 0
            study.close()
            result = SweepResult(
                info.sweep_id,
                info.path,
                backend,
                used,
                dict(driver.outcomes),
                driver.stopping,
                time.monotonic() - started,
                pending,
            )
            launch.update(
                ended=utc_now(), workers=used, outcome=result.counts, stopped=result.stopped
            )
            with contextlib.suppress(SweepError):
                record_launch(info.path, launch)
    return result
