"""Where a sweep's trials run: the one interface every backend implements, and the backends by
name. "local" is a process pool on this machine (trpo.sweep.local); "ray" runs each trial as a
Ray task on a local or remote Ray cluster (trpo.sweep.ray_backend). A backend's module is
imported only when that backend is asked for, so importing trpo.sweep imports neither."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from trpo.config import ConfigError
from trpo.envs import EnvError, check_env_id
from trpo.sweep.spec import SweepError, SweepSpec

if TYPE_CHECKING:
    from trpo.store import Run
    from trpo.sweep.job import Job

WorkerInit = Callable[[], None]

# name -> (module, class); imported on first use
_REGISTRY: dict[str, tuple[str, str]] = {
    "local": ("trpo.sweep.local", "LocalBackend"),
    "ray": ("trpo.sweep.ray_backend", "RayBackend"),
}
# name -> (what the backend needs beyond this library, how to install it)
_NEEDS = {"ray": ("Ray", "pip install 'ray[default]'")}
BACKENDS = tuple(_REGISTRY)


class JobSource(Protocol):
    """What a backend needs of the sweep's driver (trpo.sweep.driver.Driver implements it)."""

    stopping: bool  # a stop was asked: take no new job

    @property
    def stop_path(self) -> Path:
        """The sweep's stop-request file (its existence asks every trial to stop)."""
        ...

    def stop_requested(self) -> bool: ...
    def remaining(self) -> int: ...
    def next_job(self) -> Job | None: ...
    def start(self, job: Job) -> Run: ...
    def poll(self, jobs: Iterable[Job]) -> None: ...
    def finish(self, job: Job, state: str, error: str | None) -> None: ...
    def requeue(self, jobs: list[Job]) -> None: ...


class Backend(Protocol):
    """Runs trials for a driver (a JobSource)."""

    def run(
        self,
        driver: JobSource,
        workers: int | None,
        address: str | None,
        worker_init: WorkerInit | None,
    ) -> int:
        """Run the driver's jobs until driver.next_job() has no more and every one has ended,
        or driver.stop_requested(): take a job when a worker is free (so that the search
        chooses with the latest results), driver.start(job) before it starts, driver.poll(jobs
        in flight) every fraction of a second (pruning: a job with job.prune set must stop),
        driver.finish(job, state, error) when it ends, driver.requeue(jobs) for jobs to run
        again. workers: trials at once (None: the backend's default); address: where to run
        them (Ray only); worker_init: run in every worker before it trains. Returns the number
        of trials run at once."""
        ...


def get_backend(name: str) -> Backend:
    """The backend called name (ConfigError if there is none; SweepError if what it needs,
    e.g. Ray, is not installed)."""
    check_backend(name)
    module_name, class_name = _REGISTRY[name]
    try:
        module = import_module(module_name)
    except ImportError as exc:
        if name not in _NEEDS:
            raise
        what, install = _NEEDS[name]
        raise SweepError(
            f"the {name} backend needs {what} ({exc}); install it with: {install}"
        ) from exc
    backend: Backend = getattr(module, class_name)()
    return backend


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError([f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}"])


def check_launch(spec: SweepSpec, backend: str) -> None:
    """Before anything is created: a known backend (Ray importable) and registered env ids."""
    get_backend(backend)
    problems = []
    env_ids = spec.grid.get("env_id", [spec.base.env_id])  # a text knob: never a range
    for env_id in sorted(set(env_ids) if isinstance(env_ids, list) else ()):
        try:
            check_env_id(env_id)
        except EnvError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
