"""The Ray backend of sweeps: each trial is one Ray task; its run folder travels as bytes.

Why Ray tasks and not Ray Tune: a trial here is already a complete, self-checkpointing training
session writing an ordinary run folder; all we need from Ray is "run this function on some CPU
of the cluster". Tasks do exactly that and reuse their worker processes (torch is imported
once per worker), while Tune starts a process per trial (about 4.5 s of imports each: 21-22 s
against 13-16 s for four 5-second jobs on this machine, see /work/shared/notes/ray.md) and keeps
its own experiment folders beside our run store.

How a trial travels (no shared filesystem needed): the driver creates the trial's run folder
in the local run store, as the local backend does, and sends that folder's files to the task
(config, meta, status, metrics and checkpoint: a resumed trial continues from its checkpoint).
The task trains in a temporary folder on whichever node it lands on and returns the folder's
files, which the driver writes into the local folder. While it trains, the task sends each
iteration's record to a small actor (the channel); the driver drains it twice a second into the
local metrics file, so progress shows live (and the driver reports it to the study, as for local
trials); the files returned at the end replace those lines. The channel also carries the stop
request to the tasks, and the pruner's requests to stop one trial (the task turns it into the
run's own stop request with the reason 'pruned', so the trial ends 'pruned').
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray
from ray.exceptions import RayError

from trpo.ids import process_alive

# Nothing heavy at module level: the channel actor's process should not pay for torch (Ray
# sends the actor's class by value: that process imports neither this module nor the trpo.sweep
# package, which loads torch). The trial tasks import what they need.
if TYPE_CHECKING:
    from trpo.record import IterationRecord
    from trpo.sweep.backend import JobSource, WorkerInit
    from trpo.sweep.job import Job

POLL_S = 0.5
TRIAL_DIR_PREFIX = "trpo-trial-"  # + worker pid: a folder whose worker died can be removed
OBJECT_STORE_BYTES = 200 * 2**20
# Quiet, CI-friendly Ray: set (unless already set) just before this module starts or joins Ray;
# Ray's own processes inherit them.
QUIET_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AIR_NEW_OUTPUT": "0"}


@ray.remote(num_cpus=0)
class _Channel:
    """Records going up from the tasks, the stop request going down."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.nodes: list[tuple[str, str]] = []
        self.stopped = False
        self.pruned: set[str] = set()

    def push(self, trial_id: str, record: dict[str, Any]) -> None:
        self.records.append((trial_id, record))

    def started_on(self, trial_id: str, node_id: str) -> None:
        self.nodes.append((trial_id, node_id))

    def drain(self) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
        """(records, (trial, Ray node) starts) that arrived since the last drain."""
        out, self.records = self.records, []
        nodes, self.nodes = self.nodes, []
        return out, nodes

    def stop(self) -> None:
        self.stopped = True

    def is_stopped(self) -> bool:
        return self.stopped

    def prune(self, trial_id: str) -> None:
        self.pruned.add(trial_id)

    def status(self, trial_id: str) -> tuple[bool, bool]:
        """(the sweep is stopping, this trial is pruned)"""
        return self.stopped, trial_id in self.pruned


@ray.remote(num_cpus=1, max_retries=0)
def _trial_task(
    trial_id: str, files: dict[str, bytes], channel: Any, worker_init: WorkerInit | None
) -> dict[str, Any]:
    """Train one trial on a Ray worker, in a temporary run folder; return its files."""
    from trpo.store import PRUNED, Run
    from trpo.sweep.trial import train_trial

    node_id = ray.get_runtime_context().get_node_id()
    channel.started_on.remote(trial_id, node_id)
    if worker_init is not None:
        worker_init()
    _remove_stale_trial_dirs()
    tmp = tempfile.mkdtemp(prefix=f"{TRIAL_DIR_PREFIX}{os.getpid()}-")
    try:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        Run(run_dir).unpack(files)

        def on_record(record: IterationRecord) -> None:
            channel.push.remote(trial_id, record.to_dict())

        def should_stop() -> bool:
            stopped, pruned = ray.get(channel.status.remote(trial_id), timeout=10)
            run = Run(run_dir)
            if pruned and not run.stop_requested():
                run.request_stop(reason=PRUNED)  # the session stops and ends 'pruned'
            return bool(stopped)

        state, error = train_trial(str(run_dir), should_stop, on_record, poll_s=POLL_S)
        return {"state": state, "error": error, "files": Run(run_dir).pack(), "node": node_id}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Ray connected by connect() is shared by every sweep of this process (e.g. several sweeps in
# one Streamlit server) and shut down when the last of them calls disconnect().
_LOCK = threading.Lock()
_users = 0
_owned_temp_dir: str | None = None
_owned = False


def _remove_stale_trial_dirs() -> None:
    """Temporary trial folders left by Ray workers that died (their pid is in the name)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TRIAL_DIR_PREFIX}*-*"):
        pid = path.name[len(TRIAL_DIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        if not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def connect(address: str | None = None, workers: int | None = None) -> bool:
    """Make sure this process is connected to Ray: use the Ray it is already connected to,
    else connect to address, else start a local instance with `workers` CPUs (default: the
    core count) and quiet settings. Returns True if the caller must call disconnect()."""
    global _users, _owned, _owned_temp_dir
    with _LOCK:
        if ray.is_initialized():
            if _owned:  # ours, in use by another sweep: share it
                _users += 1
                return True
            return False  # the application's own Ray: leave it alone
        for name, value in QUIET_ENV.items():
            os.environ.setdefault(name, value)
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
        temp_dir = None
        if address:
            ray.init(address=address, **quiet)
        else:
            temp_dir = tempfile.mkdtemp(prefix="trpo-ray-", dir="/tmp")  # short socket paths
            try:
                ray.init(
                    num_cpus=workers or os.cpu_count() or 1,
                    include_dashboard=False,
                    object_store_memory=OBJECT_STORE_BYTES,
                    _temp_dir=temp_dir,
                    **quiet,
                )
            except BaseException:
                shutil.rmtree(temp_dir, ignore_errors=True)
                raise
        _owned, _owned_temp_dir, _users = True, temp_dir, 1
        return True


def disconnect() -> None:
    """Undo one connect() that returned True: the last user shuts down (or disconnects from)
    the Ray that connect() started (or joined) and removes its temp dir."""
    global _users, _owned, _owned_temp_dir
    with _LOCK:
        _users -= 1
        if _users > 0 or not _owned:
            return
        temp_dir, _owned, _owned_temp_dir = _owned_temp_dir, False, None
        try:
            ray.shutdown()
        finally:
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)


class RayBackend:
    """Trials as Ray tasks on a local or remote Ray cluster (see trpo.sweep.backend.Backend)."""

    def run(
        self,
        driver: JobSource,
        workers: int | None,
        address: str | None,
        worker_init: WorkerInit | None,
    ) -> int:
        return run_ray(driver, workers, address, worker_init)


def run_ray(
    driver: JobSource,
    workers: int | None,
    address: str | None,
    worker_init: WorkerInit | None,
) -> int:
    """Run the driver's jobs as Ray tasks, at most `workers` at once (default: the cluster's
    CPUs); return that number. A Ray instance started here is shut down at the end (after the
    last sweep of this process that uses it)."""
    must_disconnect = connect(address, workers)
    try:
        capacity = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        _run(driver, capacity, worker_init)
        return capacity
    finally:
        if must_disconnect:
            disconnect()


def _run(driver: JobSource, capacity: int, worker_init: WorkerInit | None) -> None:
    channel = _Channel.remote()  # type: ignore[attr-defined]
    refs: dict[Any, Job] = {}
    stop_sent = False
    draining: list[Any] = []  # the outstanding drain call: never block on the channel
    try:
        while True:
            if driver.stop_requested() and not stop_sent:
                channel.stop.remote()
                stop_sent = True
            if not driver.stopping:
                while len(refs) < capacity:
                    job = driver.next_job()
                    if job is None:
                        break
                    run = driver.start(job)
                    ref = _trial_task.remote(  # type: ignore[call-arg]
                        job.trial.trial_id, run.pack(), channel, worker_init
                    )
                    refs[ref] = job
            if not refs:
                break
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
            draining = _append_live(channel, draining, refs)
            driver.poll(refs.values())
            for job in refs.values():
                if job.prune and not job.prune_sent:
                    channel.prune.remote(job.trial.trial_id)
                    job.prune_sent = True
            for ref in ready:
                _finish(driver, refs.pop(ref), ref)
    finally:
        if refs:  # leaving early (an exception): stop the tasks, keep what they return
            channel.stop.remote()
            with contextlib.suppress(Exception):
                ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=30)
                for ref in ready:
                    _finish(driver, refs.pop(ref), ref)
            for ref in refs:
                ray.cancel(ref, force=True)
        with contextlib.suppress(Exception):
            ray.kill(channel)


def _append_live(channel: Any, draining: list[Any], refs: dict[Any, Job]) -> list[Any]:
    """Append the records that arrived for trials still in flight to their local runs, and tag
    each run with the Ray node its task started on (`ray_node_id` in meta.json's tags). The
    drain call is only collected once it is done (the actor may still be starting)."""
    from trpo.record import IterationRecord

    if not draining:
        return [channel.drain.remote()]
    done, _ = ray.wait(draining, timeout=0)
    if not done:
        return draining
    try:
        records, nodes = ray.get(done[0])
    except RayError:
        records, nodes = [], []
    live = {job.trial.trial_id: job for job in refs.values()}
    for trial_id, node_id in nodes:
        job = live.get(trial_id)
        if job is not None and job.run is not None:
            with contextlib.suppress(OSError):
                job.run.add_tags(ray_node_id=node_id)
    for trial_id, data in records:
        job = live.get(trial_id)
        if job is not None and job.run is not None:
            with contextlib.suppress(Exception):
                job.run.append(IterationRecord.from_dict(data))
    return [channel.drain.remote()]


def _finish(driver: JobSource, job: Job, ref: Any) -> None:
    assert job.run is not None
    try:
        result = ray.get(ref)
    except RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"the Ray task failed: {type(exc).__name__}: {first}"[:500]
        with contextlib.suppress(OSError):
            job.run.set_status("failed", error=error, iteration=job.run.status().get("iteration"))
        driver.finish(job, "failed", error)
        return
    job.run.unpack(result["files"], keep_meta=True)
    job.run.add_tags(ray_node_id=result["node"])  # also when the live drain missed the start
    driver.finish(job, result["state"], result["error"])
