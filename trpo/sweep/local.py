"""The local backend: a process pool on this machine, one torch thread per worker.

Pool workers are spawned without re-running the caller's main script (a Streamlit page, or a
script without a main guard), so anything they need must be importable: pass `worker_init` as a
function of a module. A worker that dies breaks the pool: its trial fails and the others are
run again in a fresh pool.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.spawn
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from trpo.ids import utc_now
from trpo.store import PRUNED, Run
from trpo.sweep.trial import STOP_POLL_S, train_trial

if TYPE_CHECKING:
    from trpo.sweep.backend import JobSource, WorkerInit
    from trpo.sweep.job import Job

MAX_ATTEMPTS = 3  # a trial that no pool worker could start this often fails


class LocalBackend:
    """Trials in a pool of worker processes on this machine (see trpo.sweep.backend.Backend)."""

    def run(
        self,
        driver: JobSource,
        workers: int | None,
        address: str | None,
        worker_init: WorkerInit | None,
    ) -> int:
        """workers: default the core count, never more than the trials left; address is not
        used."""
        used = max(1, min(workers or os.cpu_count() or 1, driver.remaining()))
        _run_local(driver, used, worker_init)
        return used


_CURRENT_RUN: str | None = None  # in a pool worker: the run folder being trained


class _WorkerProcess(multiprocessing.context.SpawnProcess):
    """A spawned pool worker that does not re-run the parent's __main__ (see below)."""


class _WorkerContext(multiprocessing.context.SpawnContext):
    Process = _WorkerProcess


# A spawned child normally re-executes the parent's main script (as __mp_main__) so that
# functions defined there can be unpickled. Our workers only need trpo, and re-running the
# main script can be harmful: in a Streamlit server, sys.modules["__main__"] is the page script
# that ran last, and each worker would run that page (launching sweeps of its own). So for
# _WorkerProcess children only, the preparation data leaves the main module out; every other
# process of the program is spawned exactly as before. The hook is installed by the first pool
# this process starts, not when this module is imported.
_HOOK_LOCK = threading.Lock()


def _install_spawn_hook() -> None:
    """Wrap multiprocessing.spawn.get_preparation_data, once per process (see above)."""
    with _HOOK_LOCK:
        original = multiprocessing.spawn.get_preparation_data
        if getattr(original, "_trpo_sweep", False):
            return

        def preparation_data(name: str) -> dict[str, Any]:
            data = original(name)
            if str(name).startswith(_WorkerProcess.__name__ + "-"):
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
            return data

        preparation_data._trpo_sweep = True  # type: ignore[attr-defined]
        multiprocessing.spawn.get_preparation_data = preparation_data


def _on_sigterm(signum: int, frame: Any) -> None:
    """A pool worker told to end (the pool terminates all workers when one dies): leave the
    trial 'stopped' so that it is resumed, then exit at once."""
    if _CURRENT_RUN is not None:
        with contextlib.suppress(Exception):
            Run(_CURRENT_RUN).set_status("stopped", error="the worker process was terminated")
    os._exit(143)


def _watch_parent(parent: int) -> None:
    """An idle worker whose driver died (killed) would wait for work forever: end it. A
    worker in a trial stops the trial first (its stop check sees the parent gone)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent and _CURRENT_RUN is None:
            os._exit(0)


def _pool_init(worker_init: WorkerInit | None) -> None:
    # Ctrl-C reaches the whole process group: only the driver reacts (it stops the trials).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(
        target=_watch_parent, args=(os.getppid(),), name="trpo-sweep-parent", daemon=True
    ).start()
    import torch

    torch.set_num_threads(1)
    if worker_init is not None:
        worker_init()


def _pool_trial(run_dir: str, stop_path: str) -> tuple[str, str | None]:
    global _CURRENT_RUN
    _CURRENT_RUN = run_dir
    parent = os.getppid()

    def should_stop() -> bool:  # a stop request, or the driver is gone (killed)
        return os.path.exists(stop_path) or os.getppid() != parent

    try:
        outcome = train_trial(run_dir, should_stop)
    finally:
        _CURRENT_RUN = None
    if os.getppid() != parent:  # nobody will collect the outcome
        os._exit(0)
    return outcome


def _run_local(driver: JobSource, workers: int, worker_init: WorkerInit | None) -> None:
    """At most `workers` trials in flight, each taken from the driver when a worker is free,
    so a trial's folder is created when it starts. A worker that dies breaks the whole pool:
    its trial fails, the trials of the other workers (terminated by the pool) are resumed in a
    fresh pool."""
    _install_spawn_hook()
    context = _WorkerContext()
    in_flight: dict[Future[tuple[str, str | None]], Job] = {}
    pool: ProcessPoolExecutor | None = None
    try:
        while True:
            lost: list[Job] = []  # trials caught in a broken pool
            if not driver.stop_requested():
                while len(in_flight) < workers:
                    job = driver.next_job()
                    if job is None:
                        break
                    if pool is None:
                        pool = ProcessPoolExecutor(
                            workers, context, initializer=_pool_init, initargs=(worker_init,)
                        )
                    run = driver.start(job)
                    try:
                        future = pool.submit(_pool_trial, str(run.path), str(driver.stop_path))
                    except BrokenProcessPool:  # a worker died since the last wait
                        lost.append(job)
                        break
                    in_flight[future] = job
            if not in_flight and not lost:
                break
            if in_flight:
                done, _ = wait(list(in_flight), timeout=STOP_POLL_S, return_when=FIRST_COMPLETED)
                driver.poll(in_flight.values())
            else:
                done = set()
            for future in done:
                job = in_flight.pop(future)
                try:
                    state, error = future.result()
                except BrokenProcessPool:
                    lost.append(job)
                    continue
                except Exception as exc:  # e.g. a result that could not be sent back
                    state, error = "failed", f"{type(exc).__name__}: {exc}"
                    with contextlib.suppress(OSError):
                        job.run.set_status("failed", error=error)  # type: ignore[union-attr]
                driver.finish(job, state, error)
            if lost:
                assert pool is not None
                pool.shutdown(wait=True)  # the pool has terminated and joined every worker
                pool = None
                lost.extend(in_flight.values())
                in_flight.clear()
                _sort_lost(driver, lost)
    finally:
        if pool is not None:
            if in_flight:  # leaving early (an exception): stop the trials, keep them resumable
                with contextlib.suppress(OSError):
                    driver.stop_path.write_text(utc_now() + "\n")
            pool.shutdown(wait=True, cancel_futures=True)


def _sort_lost(driver: JobSource, lost: list[Job]) -> None:
    """After the pool broke: which trial's worker died (failed), which were only caught in
    the breakage (run again)."""
    requeue = []
    for job in lost:
        run = job.run
        assert run is not None
        status = run.status()
        state = status.get("state")
        if state in ("finished", PRUNED, "failed"):
            driver.finish(job, state, status.get("error"))
            continue
        # terminated by the pool while training ('stopped' by _on_sigterm), or never started
        # (still marked running by this process): not this trial's fault
        unstarted = state == "running" and status.get("pid") == os.getpid()
        innocent = state == "stopped" or unstarted
        if unstarted:
            job.attempts += 1  # bounded: a worker that cannot even start fails its trials
        if innocent and driver.stop_requested():
            run.set_status("stopped", iteration=status.get("iteration"))
            driver.finish(job, "stopped", None)
        elif innocent and job.attempts < MAX_ATTEMPTS:
            requeue.append(job)
        else:
            error = (
                "the worker process died while training this trial"
                if not innocent
                else f"no worker process could start this trial ({job.attempts} attempts)"
            )
            with contextlib.suppress(OSError):
                run.set_status("failed", error=error, iteration=status.get("iteration"))
            driver.finish(job, "failed", error)
    driver.requeue(requeue)
